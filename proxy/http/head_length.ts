/**
 * HEAD answers with the length GET would send. Hono serves HEAD with the GET route and drops
 * the body, and `Deno.serve` then says `content-length: 0`; RFC 9110 (9.3.2, 8.6) allows a HEAD
 * answer's Content-Length only when it is GET's. The /kv/{key} reads set it themselves; this
 * middleware sets it for every other finite answer (errors, listings, the page). An event
 * stream has no length: {@link streamHeads} gives its HEAD answer an empty stream for a body, so
 * that `Deno.serve` sends no Content-Length (it says `content-length: 0` only for a null body).
 *
 * @module
 */
import type { Context, Hono, MiddlewareHandler, Next } from "hono";

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

/**
 * Wraps the app's `fetch` so that a HEAD answer of an event stream goes out without a length:
 * Hono answers HEAD with the GET route's headers and a null body, after every middleware.
 */
export function streamHeads(fetch: Hono["fetch"]): Hono["fetch"] {
  return (req, env, exec) => {
    const res = fetch(req, env, exec);
    return req.method === "HEAD" ? Promise.resolve(res).then(unsized) : res;
  };
}

function unsized(res: Response): Response {
  if (res.body !== null || !res.headers.get("content-type")?.startsWith("text/event-stream")) {
    return res;
  }
  const empty = new ReadableStream({ start: (controller) => controller.close() });
  return new Response(empty, {
    status: res.status,
    statusText: res.statusText,
    headers: res.headers,
  });
}
