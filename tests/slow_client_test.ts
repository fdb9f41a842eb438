/**
 * Slow clients against a real proxy: many connections trickling a body a byte at a time
 * are answered 408 once the body deadline passes (their requests and buffers are freed;
 * Deno.serve keeps the socket itself open, see docs/security.md), while many others
 * trickle headers (which Deno.serve never times out), and normal requests keep being
 * served throughout.
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

/**
 * A connection that sends `head`, then one byte every 100 ms until the server answers or
 * closes; resolves with the answer's status line, or "still open" when stopped first.
 */
async function trickle(port: number, head: string, stop: AbortSignal): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  let answer = "";
  const reading = (async () => {
    const buf = new Uint8Array(4096);
    for (;;) {
      const n = await conn.read(buf).catch(() => null);
      if (n === null) return;
      answer += new TextDecoder().decode(buf.subarray(0, n));
    }
  })();
  let closed = false;
  let weClosed = false;
  reading.then(() => (closed = !weClosed));
  try {
    await conn.write(encoder.encode(head));
    // Bounded: at most 600 bytes (a minute), the stop signal, or the server closing.
    const answered = () => closed || answer.includes("\r\n\r\n");
    for (let i = 0; i < 600 && !answered() && !stop.aborted; i++) {
      await new Promise((r) => setTimeout(r, 100));
      if (!closed) await conn.write(encoder.encode("a")).catch(() => {});
    }
  } finally {
    if (!closed) {
      weClosed = true;
      conn.close();
    }
    await reading;
  }
  return answer.includes("\r\n") ? answer.split("\r\n")[0]! : closed ? "closed" : "still open";
}

Deno.test("body tricklers get 408; header tricklers do not stop normal requests", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-slow-" });
  const running: ServerProcess[] = [];
  const stopHeaders = new AbortController();
  const stopBodies = new AbortController();
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

    const headerTricklers = Array.from(
      { length: TRICKLERS },
      () => trickle(proxy.port, "GET /kv/a HTTP/1.1\r\nHost: x\r\nX-Slow: ", stopHeaders.signal),
    );
    const bodyTricklers = Array.from({ length: TRICKLERS }, (_, i) =>
      trickle(
        proxy.port,
        `PUT /kv/slow/${i} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n`,
        stopBodies.signal,
      ));
    // Normal requests while both kinds trickle.
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
    // Every body trickler is answered well before the 60 s bound.
    const deadline = setTimeout(() => stopBodies.abort(), 15_000);
    const answers = await Promise.all(bodyTricklers);
    clearTimeout(deadline);
    assertEquals(new Set(answers), new Set(["HTTP/1.1 408 Request Timeout"]));

    const listing = await fetch(`${proxy.url}/kv?prefix=slow/`, {
      signal: AbortSignal.timeout(5000),
    });
    assertEquals((await listing.json()).keys, []);
    stopHeaders.abort();
    assertEquals(new Set(await Promise.all(headerTricklers)), new Set(["still open"]));
  } finally {
    stopHeaders.abort();
    stopBodies.abort();
    for (const p of running.toReversed()) await p.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
