/**
 * What one proxy → node batch call costs in CPU through `fetch` and through
 * a raw HTTP/1.1 exchange over one kept-alive connection, against an in-process `Deno.serve`
 * answering a 10-result batch (client and server CPU together, `process.cpuUsage`).
 *
 *     deno run -A tasks/bench/fetch_cost.ts
 *
 * @module
 */
import process from "node:process";
const body = JSON.stringify({
  results: Array.from(
    { length: 10 },
    () => ({
      status: 200,
      value: "dmFsdWU=".repeat(17),
      version: "01a20e9657a0-0000-n2",
      contentType: "text/plain",
    }),
  ),
});
const srv = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  () => new Response(body, { headers: { "content-type": "application/json" } }),
);
const url = `http://127.0.0.1:${srv.addr.port}/internal/batch`;
const payload = JSON.stringify({
  ops: Array.from({ length: 10 }, (_, i) => ({ op: "get", key: `k00000${i}` })),
});
const N = 5000;
async function viaFetch() {
  for (let i = 0; i < N; i++) {
    const res = await fetch(url, {
      method: "POST",
      body: payload,
      headers: {
        "content-type": "application/json",
        authorization: "Bearer s",
        "x-ringkv-epoch": "3",
      },
      signal: AbortSignal.timeout(2000),
    });
    JSON.parse(await res.text());
  }
}
const enc = new TextEncoder();
const dec = new TextDecoder();
async function viaRaw() {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: srv.addr.port });
  const buf = new Uint8Array(65536);
  for (let i = 0; i < N; i++) {
    const head =
      `POST /internal/batch HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\nauthorization: Bearer s\r\nx-ringkv-epoch: 3\r\ncontent-length: ${payload.length}\r\n\r\n`;
    await conn.write(enc.encode(head + payload));
    let text = "";
    for (;;) {
      const n = await conn.read(buf);
      text += dec.decode(buf.subarray(0, n!));
      const e = text.indexOf("\r\n\r\n");
      if (e >= 0) {
        const m = /content-length: (\d+)/i.exec(text.slice(0, e));
        if (text.length >= e + 4 + Number(m![1])) {
          JSON.parse(text.slice(e + 4));
          break;
        }
      }
    }
  }
  conn.close();
}
for (
  const [name, f] of [["fetch", viaFetch], ["raw", viaRaw], ["fetch", viaFetch], [
    "raw",
    viaRaw,
  ]] as const
) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await f();
  const c = process.cpuUsage(c0);
  console.log(
    name,
    "wall",
    ((performance.now() - t0) / N * 1000).toFixed(1),
    "µs/call; CPU (client+server)",
    ((c.user + c.system) / N).toFixed(1),
    "µs/call",
  );
}
await srv.shutdown();
