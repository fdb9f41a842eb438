/**
 * The path of a request URL read off `Request.url` by index, without a `new URL()` (every
 * request goes through these: the guard, the proxy's front, its key parsing and its metrics).
 * Pure.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { pathOf, pathStart } from "./url_path.ts";
 * assertEquals(pathOf("http://h:1/kv/a%2Fb?x=1"), "/kv/a%2Fb");
 * assertEquals(pathStart("http://h:1/kv"), 10);
 * ```
 */

/** Index of the path's first `/` in `url` (-1 when it has none). */
export function pathStart(url: string): number {
  return url.indexOf("/", url.indexOf("://") + 3);
}

/** Path of a request URL, without the query, as sent (still percent-encoded). */
export function pathOf(url: string): string {
  const start = pathStart(url);
  if (start === -1) return "/";
  const query = url.indexOf("?", start);
  return url.slice(start, query === -1 ? undefined : query);
}
