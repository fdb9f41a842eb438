/**
 * The bench's floor: a bare `Deno.serve` answering every request with the same 100-byte
 * body, no routing, no storage. Prints `bare server listening on <url>`.
 *
 * @module
 */
const BODY = new TextEncoder().encode("v".repeat(100));

if (import.meta.main) {
  Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(`bare server listening on http://127.0.0.1:${port}`),
  }, () => new Response(BODY, { headers: { "content-type": "text/plain" } }));
}
