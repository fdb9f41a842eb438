/**
 * HEAD answers with the length GET would send. Hono serves HEAD with the GET route and drops
 * the body, and `Deno.serve` then says `content-length: 0`; RFC 9110 (9.3.2, 8.6) allows a HEAD
 * answer's Content-Length only when it is GET's. The /kv/{key} reads set it themselves; this
 * middleware sets it for every other finite answer (errors, listings, the page). An event
 * stream has no length: it is left without one.
 *
 * @module
 */
import type { Context, MiddlewareHandler, Next } from "hono";

/** Sets Content-Length on HEAD answers from the body the GET route built. */
export function headLength(): MiddlewareHandler {
  // Every other request passes straight on: no async frame of its own.
  return (c, next) => c.req.method === "HEAD" ? withLength(c, next) : next();
}

async function withLength(c: Context, next: Next): Promise<void> {
  await next();
  const res = c.res;
  if (res.body === null || res.headers.has("content-length")) return;
  if (res.headers.get("content-type")?.startsWith("text/event-stream")) return;
  const length = (await res.arrayBuffer()).byteLength;
  const headers = new Headers(res.headers);
  headers.set("content-length", String(length));
  c.res = new Response(null, { status: res.status, statusText: res.statusText, headers });
}
