/**
 * Slow clients against a real proxy: many connections trickling their head, or their body,
 * a byte at a time, and many that connect and send nothing. Body tricklers are cut off by
 * the handler's body deadline (408); head tricklers and silent connections are
 * not (Deno.serve has no head deadline, denoland/deno#3515; docs/security.md says what an
 * operator puts in front), so they stay open until the client goes. Normal requests keep
 * being served throughout, and nothing a slow client sent is stored.
 */
import { assertEquals } from "@std/assert";
import { join } from "@std/path";
import { type ServerProcess, spawnServer } from "./helpers/process.ts";

const NODE = new URL("../node/main.ts", import.meta.url);
const PROXY = new URL("../proxy/main.ts", import.meta.url);
const ENV = { RINGKV_CLUSTER_SECRET: "slow-secret" };
const BODY_TIMEOUT_MS = 1000;
const TRICKLERS = 100;
const encoder = new TextEncoder();

/** How a trickling connection ended. */
interface Trickled {
  /** The answer's status line, or "" when none came. */
  status: string;
  /** Whether the server closed the connection (before the test gave up). */
  closedByServer: boolean;
}

/**
 * A connection that sends `head`, then one byte every 100 ms (none when `silent`) until
 * an answer comes, the server closes it or `stop` aborts.
 */
async function trickle(
  port: number,
  head: string,
  stop: AbortSignal,
  silent = false,
): Promise<Trickled> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let answer = "";
  let closed = false;
  const reading = (async () => {
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) return;
      answer += new TextDecoder().decode(buf.subarray(0, n));
    }
  })().then(() => (closed = true));
  let weClosed = false;
  try {
    if (head !== "") await conn.write(encoder.encode(head));
    // Bounded: at most 600 rounds (a minute), the stop signal, an answer or the server closing.
    for (let i = 0; i < 600 && !closed && answer === "" && !stop.aborted; i++) {
      await new Promise((r) => setTimeout(r, 100));
      if (!closed && !silent) await conn.write(encoder.encode("a")).catch(() => {});
    }
  } finally {
    if (!closed) {
      weClosed = true;
      conn.close();
    }
    await reading;
  }
  return { status: answer.split("\r\n")[0]!, closedByServer: !weClosed };
}

Deno.test("body tricklers get 408, head tricklers and silent connections stay open, others are served", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-slow-" });
  const running: ServerProcess[] = [];
  const stop = new AbortController();
  try {
    const node = await spawnServer({
      script: NODE,
      args: ["--id", "n1", "--port", "0", "--data", join(dir, "n1")],
      env: ENV,
    });
    running.push(node);
    const proxy = await spawnServer({
      script: PROXY,
      args: [
        ...["--port", "0", "--data", join(dir, "proxy"), "--nodes", node.url],
        ...["--body-timeout-ms", String(BODY_TIMEOUT_MS)],
      ],
      env: ENV,
    });
    running.push(proxy);

    const headTricklers = Array.from(
      { length: TRICKLERS },
      () => trickle(proxy.port, "GET /kv/a HTTP/1.1\r\nHost: x\r\nX-Slow: ", stop.signal),
    );
    const bodyTricklers = Array.from({ length: TRICKLERS }, (_, i) =>
      trickle(
        proxy.port,
        `PUT /kv/slow/${i} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n`,
        stop.signal,
      ));
    const silent = Array.from(
      { length: TRICKLERS },
      () => trickle(proxy.port, "", stop.signal, true),
    );
    // Normal requests while all three kinds hold their connections.
    for (let i = 0; i < 20; i++) {
      const put = await fetch(`${proxy.url}/kv/normal/${i}`, {
        method: "PUT",
        body: `v${i}`,
        signal: AbortSignal.timeout(5000),
      });
      assertEquals(put.status, 201, await put.text());
      const got = await fetch(`${proxy.url}/kv/normal/${i}`, { signal: AbortSignal.timeout(5000) });
      assertEquals([got.status, await got.text()], [200, `v${i}`]);
    }
    // Every body trickler is cut off well before this bound (the body deadline is 1 s).
    const deadline = setTimeout(() => stop.abort(), 20_000);
    const bodies = await Promise.all(bodyTricklers);
    clearTimeout(deadline);
    // The 408 says `connection: close`, but hyper closes only once the client stops sending
    // the rest of the body (docs/security.md): the handler's work ends at the deadline.
    assertEquals(new Set(bodies.map((t) => t.status)), new Set(["HTTP/1.1 408 Request Timeout"]));
    // Head tricklers and silent connections were held all that time; the test ends them.
    stop.abort();
    const [heads, quiet] = await Promise.all([Promise.all(headTricklers), Promise.all(silent)]);
    const held = JSON.stringify({ status: "", closedByServer: false });
    assertEquals(new Set(heads.map((t) => JSON.stringify(t))), new Set([held]));
    assertEquals(new Set(quiet.map((t) => JSON.stringify(t))), new Set([held]));
    const health = await fetch(`${proxy.url}/health`, { signal: AbortSignal.timeout(5000) });
    assertEquals(health.status, 200);
    await health.body?.cancel();

    const listing = await fetch(`${proxy.url}/kv?prefix=slow/`, {
      signal: AbortSignal.timeout(5000),
    });
    assertEquals((await listing.json()).keys, []);
  } finally {
    stop.abort();
    for (const p of running.toReversed()) await p.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
