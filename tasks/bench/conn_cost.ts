/**
 * What stalled connections cost a running proxy (docs/security.md, "Timeouts and slow
 * clients"): opens N connections of one kind, reads the proxy's RSS growth from /proc,
 * times one PUT while they are open, waits, and counts how many the proxy left open.
 *
 *     deno run -A tasks/bench/conn_cost.ts PROXY_PID PORT KIND N [HEAD_BYTES] [WAIT_MS]
 *
 * KIND: `idle` (connect, send nothing), `head` (a head cut off after HEAD_BYTES of one
 * header), `body` (a 100,000-byte PUT cut off after 50,000 bytes). Linux only.
 *
 * @module
 */
const [pid, port, kind, count, headBytes = "10", waitMs = "11000"] = Deno.args;
if (pid === undefined || port === undefined || kind === undefined || count === undefined) {
  console.error("usage: conn_cost.ts PROXY_PID PORT idle|head|body N [HEAD_BYTES] [WAIT_MS]");
  Deno.exit(2);
}
const encoder = new TextEncoder();

async function rss(): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) * 1024;
}

function opening(i: number): string {
  if (kind === "head") return "GET /kv/a HTTP/1.1\r\nHost: x\r\nX-Slow: " + "h".repeat(+headBytes);
  if (kind === "body") {
    return `PUT /kv/s${i} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n` +
      "b".repeat(50_000);
  }
  return "";
}

/** Whether the server closed `conn` (a read ends, or fails, within 50 ms). */
async function closedByServer(conn: Deno.Conn): Promise<boolean> {
  const buf = new Uint8Array(4096);
  for (let i = 0; i < 100; i++) {
    const n = await Promise.race([
      conn.read(buf).catch(() => null),
      new Promise<"open">((r) => setTimeout(() => r("open"), 50)),
    ]);
    if (n === "open") return false;
    if (n === null) return true;
  }
  return false;
}

const before = await rss();
const conns: Deno.Conn[] = [];
for (let i = 0; i < +count; i++) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: +port });
  conns.push(conn);
  const text = opening(i);
  if (text !== "") await conn.write(encoder.encode(text));
}
await new Promise((r) => setTimeout(r, 500));
const after = await rss();
const perConn = (after - before) / conns.length / 1024;
console.log(
  `${kind} × ${count}: ${perConn.toFixed(1)} KB per connection, proxy RSS ${
    (after / 2 ** 20).toFixed(0)
  } MiB`,
);
const started = performance.now();
const res = await fetch(`http://127.0.0.1:${port}/kv/conn-cost-probe`, {
  method: "PUT",
  body: "x",
  signal: AbortSignal.timeout(10_000),
});
await res.body?.cancel();
console.log(
  `a PUT while they are open: ${res.status} in ${(performance.now() - started).toFixed(1)} ms`,
);
await new Promise((r) => setTimeout(r, +waitMs));
const closed = await Promise.all(conns.map(closedByServer));
console.log(`closed by the proxy after ${waitMs} ms: ${closed.filter(Boolean).length} of ${count}`);
for (const conn of conns) {
  try {
    conn.close();
  } catch { /* closed already */ }
}
