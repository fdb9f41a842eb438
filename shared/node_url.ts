/**
 * A node's URL as the proxy stores it: an http(s) origin (scheme, host, port) and nothing
 * else. Paths, queries, fragments and credentials are refused, not dropped: requests are
 * built as `origin + "/internal/..."`, so any of them would send calls somewhere else.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { parseNodeUrl } from "./node_url.ts";
 * assertEquals(parseNodeUrl("http://127.0.0.1:7001/"), { origin: "http://127.0.0.1:7001" });
 * assertEquals("problem" in parseNodeUrl("http://h:7001/kv"), true);
 * ```
 */

/** The origin of a node URL, or why `text` is not one (a phrase after "it"). */
export function parseNodeUrl(text: string): { origin: string } | { problem: string } {
  let url: URL;
  try {
    url = new URL(text);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    return { problem: `is not a URL${schemeHint(text)}` };
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    return { problem: `is not http(s)${schemeHint(text)}` };
  }
  const only = "; give only scheme://host:port";
  if (url.username !== "" || url.password !== "") {
    return { problem: `carries a user or password${only}` };
  }
  if (url.pathname !== "/" && url.pathname !== "") {
    return { problem: `has a path (${url.pathname.slice(0, 100)})${only}` };
  }
  // `http://h/?` and `http://h/#` have an empty search and hash, yet are not origins either.
  if (url.search !== "" || url.hash !== "" || /[?#]/.test(text)) {
    return { problem: `has a query or fragment${only}` };
  }
  return { origin: url.origin };
}

/** For `host:port` given without a scheme (`localhost:7001` reads as scheme `localhost:`). */
function schemeHint(text: string): string {
  if (text.includes("://")) return "";
  const withScheme = parseNodeUrl(`http://${text}`);
  return "origin" in withScheme ? `; give ${withScheme.origin} (or https://)` : "";
}

/** A host as a URL writes it: an IPv6 address in brackets. */
export function urlHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}
