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
 * await app.request("/");
 * assertEquals(routed(), 2);
 * ```
 */
import type { Hono } from "hono";

/** Wraps `app.router.match`; the returned function says how often it was called since. */
export function countRouting(app: Hono): () => number {
  const router = app.router;
  type Match = typeof router.match;
  let match: Match = router.match.bind(router);
  let calls = 0;
  const counted: Match = (...args) => {
    calls++;
    return match(...args);
  };
  // Hono's SmartRouter replaces its own `match` on its first call: count through the swap.
  Object.defineProperty(router, "match", {
    configurable: true,
    get: () => counted,
    set: (next: Match) => match = next,
  });
  return () => calls;
}
