/**
 * The methods a path answers, from an app's route table: what a 405 lists in its `Allow`
 * header (RFC 9110 section 15.5.6 requires it) when a known path is called with another
 * method. Pure: routes and a path in, methods out.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { allowedMethods } from "./allowed_methods.ts";
 * const routes = [{ method: "GET", path: "/health" }, { method: "DELETE", path: "/n/:id" }];
 * assertEquals(allowedMethods(routes, "/health"), ["GET", "HEAD"]);
 * assertEquals(allowedMethods(routes, "/n/a"), ["DELETE"]);
 * assertEquals(allowedMethods(routes, "/nope"), []);
 * ```
 */

const ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];
const patterns = new Map<string, RegExp>();

/** A Hono route path (`/a/:id`, `/kv/*`) as an anchored regular expression. */
function patternOf(path: string): RegExp {
  let re = patterns.get(path);
  if (re === undefined) {
    const body = path.split("/").map((part) =>
      part === "*"
        ? ".*"
        : part.startsWith(":")
        ? "[^/]+"
        : part.replace(/[.+?^${}()|[\]\\]/g, "\\$&")
    ).join("/");
    re = new RegExp(`^${body}$`);
    patterns.set(path, re);
  }
  return re;
}

/** Methods of the routes matching `path` (HEAD wherever GET is); middleware (ALL) aside. */
export function allowedMethods(
  routes: readonly { method: string; path: string }[],
  path: string,
): string[] {
  const found = new Set<string>();
  for (const route of routes) {
    if (route.method === "ALL" || !patternOf(route.path).test(path)) continue;
    found.add(route.method);
    if (route.method === "GET") found.add("HEAD");
  }
  return ORDER.filter((m) => found.has(m));
}
