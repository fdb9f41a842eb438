/**
 * What each part of a ringkv node's GET answer costs `Deno.serve` itself, with no ringkv code:
 * a bare server answering 100 B in each way below, one fresh process per way and round,
 * `wrk -t1 -c32 -d3s` (sending `Authorization`, as the proxy does), CPU µs per request from
 * /proc. The rounds interleave the ways; it prints each way's median and every round.
 *
 *     deno run -A tasks/bench/serve_floor.ts [ROUNDS]   # default 3; Linux, needs wrk
 *
 * `serve_floor.ts node` serves the node GET's contract without ringkv code: the bench's 100,000
 * keys in a Map, `Authorization` checked, the 431 pass, the 2 headers (`Content-Type`, `ETag`);
 * `cpu_rig.ts floor` drives it as it drives a node.
 *
 * Deno 2.9 reads a served request's headers from the server lazily, but once a handler reads
 * `req.headers` at all, Deno copies the whole list before it answers and completes the answer
 * through a promise (ext/http/00_serve.ts, `requestHeadersExposed`); iterating the headers builds
 * a sorted, combined copy (ext/fetch/20_headers.js). The Hono Map node reads no header and sends
 * only `Content-Type`, Deno's static fast path.
 *
 * @module
 */
import { cpuNow } from "./cpu_time.ts";
import { benchKey, benchValue } from "./load.ts";

const BODY = "v".repeat(100);
const VERSION = "0190aabbccdd-0001-n1";

/** The node GET's four answer headers before branch ng (docs/performance.md). */
function nodeHeaders(): Record<string, string> {
  return {
    "content-type": "text/plain",
    etag: `"${VERSION}"`,
    "x-ringkv-version": VERSION,
    "x-ringkv-node": "n1",
  };
}

/** The node GET's two answer headers now, as kv_routes.ts sends them. */
function nodeHeadersNow(): Record<string, string> {
  return { "content-type": "text/plain", etag: `"${VERSION}"` };
}

/** Bytes of the header block, as shared/guard.ts counts them (one pass). */
function headerBytes(headers: Headers): number {
  let total = 0;
  headers.forEach((value, name) => {
    total += name.length + value.length + 4;
  });
  return total;
}

/** Each way of answering, by name; a read's result goes into the answer so it is not dropped. */
export const WAYS: Record<string, (req: Request) => Response> = {
  "Content-Type only (the Hono Map node's)": () =>
    new Response(BODY, { headers: { "content-type": "text/plain" } }),
  "Content-Type only + read Authorization": (req) =>
    new Response(BODY + (req.headers.get("authorization") === null ? "" : " "), {
      headers: { "content-type": "text/plain" },
    }),
  "the node's 4 headers": () => new Response(BODY, { headers: nodeHeaders() }),
  "4 headers + read Authorization": (req) =>
    new Response(BODY + (req.headers.get("authorization") === null ? "" : " "), {
      headers: nodeHeaders(),
    }),
  "4 headers + read Authorization + 431 pass": (req) =>
    new Response(
      BODY + (req.headers.get("authorization") === null ? "" : " ") +
        (headerBytes(req.headers) > 16384 ? "!" : ""),
      { headers: nodeHeaders() },
    ),
  "2 headers (now) + read Authorization + 431 pass": (req) =>
    new Response(
      BODY + (req.headers.get("authorization") === null ? "" : " ") +
        (headerBytes(req.headers) > 16384 ? "!" : ""),
      { headers: nodeHeadersNow() },
    ),
};

/**
 * The contract node: `GET /kv/{key}` of the bench's keys (`k` + 6 digits, 100 B), as above,
 * for a client that sends `Authorization: Bearer <secret>`.
 */
export function contractNode(keys = 100_000, secret = "rig"): (req: Request) => Response {
  const map = new Map<string, string>();
  for (let i = 0; i < keys; i++) map.set(benchKey("k", i), benchValue(i, 100));
  const bearer = `Bearer ${secret}`;
  return (req) => {
    if (req.headers.get("authorization") !== bearer) {
      return new Response("unauthorized", { status: 401 });
    }
    if (headerBytes(req.headers) > 16384) return new Response("too large", { status: 431 });
    const url = req.url;
    const value = map.get(url.slice(url.indexOf("/kv/", url.indexOf("://") + 3) + 4));
    if (value === undefined) return new Response("not found", { status: 404 });
    return new Response(value, { headers: nodeHeadersNow() });
  };
}

/**
 * Serves way `name` on an OS-picked port and prints the URL; `node [KEYS [SECRET]]` serves
 * {@link contractNode} (the bench's `floor` target).
 */
function serve(args: readonly string[]): void {
  const name = args.join(" ");
  const way = args[0] === "node"
    ? contractNode(Number(args[1] ?? 100_000), args[2] ?? "rig")
    : WAYS[name];
  if (way === undefined) throw new Error(`Cannot serve way "${name}": no such way`);
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`),
  }, way);
  // Ends on SIGINT as a node does, so `--cpu-prof` (cpu_rig's NODE_PROF) writes its profile.
  Deno.addSignalListener("SIGINT", () => void server.shutdown());
}

/**
 * CPU µs per request of one fresh server answering in way `name`: `script serve <name>` must
 * print `listening on <url>` and end on SIGINT; `lua` is wrk's script.
 */
async function measureWay(script: URL, name: string, lua: string): Promise<number> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", script.pathname, "serve", name],
    stdout: "piped",
  }).spawn();
  try {
    const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let text = "";
    for (let i = 0; i < 100 && !/listening on (\S+)/.test(text); i++) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`Cannot measure "${name}": its server exited before listening`);
      text += value;
    }
    const url = /listening on (\S+)/.exec(text)![1]!;
    const wrk = (seconds: number) =>
      new Deno.Command("wrk", {
        args: ["-t1", "-c32", `-d${seconds}s`, "-s", lua, url],
        stdout: "piped",
      }).output();
    await wrk(1); // warm-up: the JIT, the connections
    const procs = [{ name, pid: child.pid }];
    const before = await cpuNow(procs);
    const out = new TextDecoder().decode((await wrk(3)).stdout);
    const after = await cpuNow(procs);
    const requests = Number(/(\d+) requests in/.exec(out)?.[1]);
    return (after[name]! - before[name]!) / requests * 1e6;
  } finally {
    child.kill("SIGINT");
    await child.status;
  }
}

/**
 * Measures each of `ways` served by `script` (see {@link measureWay}) in `rounds` interleaved
 * rounds under wrk's Lua `lua`, then prints each way's median µs per request and every round's.
 */
export async function compareWays(
  script: URL,
  ways: readonly string[],
  lua: string,
  rounds: number,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-floor-" });
  try {
    const file = `${dir}/wrk.lua`;
    await Deno.writeTextFile(file, lua);
    const got = new Map<string, number[]>(ways.map((n) => [n, []]));
    for (let round = 0; round < rounds; round++) {
      for (const name of ways) got.get(name)!.push(await measureWay(script, name, file));
    }
    const width = Math.max(...ways.map((n) => n.length)) + 1;
    for (const [name, us] of got) {
      const median = us.toSorted((a, b) => a - b)[Math.floor(us.length / 2)]!;
      const all = us.map((u) => u.toFixed(2)).join(", ");
      console.log(`${name.padEnd(width)} ${median.toFixed(2)} µs (${all})`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

if (import.meta.main) {
  if (Deno.args[0] === "serve") serve(Deno.args.slice(1));
  else {
    const lua = `wrk.headers["Authorization"] = "Bearer rig"\n`;
    await compareWays(new URL(import.meta.url), Object.keys(WAYS), lua, Number(Deno.args[0] ?? 3));
  }
}
