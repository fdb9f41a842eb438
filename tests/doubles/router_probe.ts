/**
 * Counts the requests a Hono app routes (calls of its router's `match`), so a test can tell a
 * request answered by an app's front (node_frame.ts, proxy_front.ts: no routing) from one that
 * went through Hono's routing and middleware, since both must answer alike.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Hono } from "hono";
 * import { countRouting } from "./router_probe.ts";
 * const app = new Hono().get("/", (c) => c.text("hi"));
 * const routed = countRouting(app);
 * await app.request("/");
 * assertEquals(routed(), 1);
 * ```
 */
import type { Hono } from "hono";

/** Wraps `app.router.match`; the returned function says how often it was called since. */
export function countRouting(app: Hono): () => number {
  const router = app.router;
  const match = router.match.bind(router);
  let calls = 0;
  router.match = (...args) => {
    calls++;
    return match(...args);
  };
  return () => calls;
}
