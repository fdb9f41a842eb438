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
if (pid === undefined || port === undefined) {
  console.error("usage: trickle_cost.ts PROXY_PID PORT");
  Deno.exit(2);
}
const CONNECTIONS = 200;
const BYTES_EACH = 80;
const encoder = new TextEncoder();

async function rssMiB(): Promise<number> {
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  return Number(/VmRSS:\s+(\d+)/.exec(status)![1]) / 1024;
}

const before = await rssMiB();
const conns: Deno.Conn[] = [];
for (let i = 0; i < CONNECTIONS; i++) {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: +port });
  conns.push(conn);
  const head = `PUT /kv/t${i} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n`;
  await conn.write(encoder.encode(head));
}
for (let round = 0; round < BYTES_EACH; round++) {
  await Promise.all(conns.map((c) => c.write(encoder.encode("a")).catch(() => 0)));
  await new Promise((r) => setTimeout(r, 50));
}
const growth = (await rssMiB()) - before;
console.log(
  `RSS growth with ${CONNECTIONS} body tricklers after ${BYTES_EACH} bytes each: ` +
    `${growth.toFixed(0)} MiB`,
);
for (const conn of conns) {
  try {
    conn.close();
  } catch { /* closed by the proxy already */ }
}
