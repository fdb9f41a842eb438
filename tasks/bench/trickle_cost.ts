/**
 * What body tricklers cost a running proxy (docs/security.md): 200 connections each send a
 * PUT head declaring 100,000 bytes, then one byte per connection every 50 ms, 80 times;
 * prints the proxy's RSS growth. Linux only.
 *
 *     deno run -A tasks/bench/trickle_cost.ts PROXY_PID PORT
 *
 * @module
 */
const [pid, port] = Deno.args;
const rss = async () =>
  Number(/VmRSS:\s+(\d+)/.exec(await Deno.readTextFile(`/proc/${pid}/status`))![1]) / 1024;
const before = await rss();
const enc = new TextEncoder();
const conns: Deno.Conn[] = [];
for (let i = 0; i < 200; i++) {
  const c = await Deno.connect({ hostname: "127.0.0.1", port: +port! });
  conns.push(c);
  await c.write(enc.encode(`PUT /kv/t${i} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n`));
}
for (let round = 0; round < 80; round++) {
  await Promise.all(conns.map((c) => c.write(enc.encode("a")).catch(() => 0)));
  await new Promise((r) => setTimeout(r, 50));
}
console.log(
  "RSS growth with 200 body tricklers after 80 bytes each:",
  (await rss() - before).toFixed(0),
  "MiB",
);
for (const c of conns) {
  try {
    c.close();
  } catch {}
}
