/**
 * A node answer whose body stalls, for tests of the proxy's calls to nodes.
 *
 * @module
 */

/** A 200 whose body never comes; it breaks off as fetch's does when the call's signal fires. */
export function stalledBody(req: Request): Response {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      req.signal.addEventListener("abort", () => controller.error(req.signal.reason));
    },
  });
  return new Response(body, { headers: { "content-type": "application/json" } });
}
