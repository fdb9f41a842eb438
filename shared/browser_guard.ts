/**
 * What a web page of another site must not make a browser do to the proxy.
 *
 * Cross-site writes: a page anywhere can send a "simple" `POST` (text/plain, no preflight) to
 * http://127.0.0.1:8080/kv, and `POST /kv` takes any Content-Type; with no client token it
 * would write and delete keys (etcd's CVE-2018-1098). Browsers send `Origin` with every
 * request other than GET and HEAD; a write whose `Origin` is not the proxy's own is refused.
 * Clients that are not browsers send no `Origin`.
 *
 * DNS rebinding: which `Host` headers a server answers. A web page on a name the
 * attacker controls, re-pointed at 127.0.0.1, is same-origin with a local server and could read
 * and write every key of a cluster without a client token (etcd's CVE-2018-1099; geth's
 * `--http.vhosts`, Jupyter's local-only check do the same). Such a request carries the
 * attacker's name in `Host`, a name in public DNS. An IP address or a name of one label
 * (`localhost`, a machine's or a container's name) cannot come from rebinding, so it always
 * passes; other names pass when they are `*.localhost` or in the allowed list.
 * Pure; shared/guard.ts applies both.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { crossSiteOrigin, hostPolicy } from "./browser_guard.ts";
 * const local = hostPolicy(["kv.internal"]);
 * assert(local("127.0.0.1:8080") && local("localhost:8080") && local("kv.internal"));
 * assert(!local("rebind.attacker.example:8080"));
 * assert(hostPolicy("*")("anything.example"));
 * assert(crossSiteOrigin("http://evil.example", "127.0.0.1:8080"));
 * assert(!crossSiteOrigin("http://127.0.0.1:8080", "127.0.0.1:8080"));
 * ```
 */

import { ConfigError } from "./config.ts";

/** A policy: whether a request with this `Host` header value (host[:port]) is answered. */
export type HostAllowed = (host: string) => boolean;

/**
 * The policy of `allowed`: `"*"` takes every host; a list takes IP addresses, names of one
 * label, `*.localhost` and the names listed (a name starting with `.` takes its subdomains too).
 */
export function hostPolicy(allowed: "*" | readonly string[]): HostAllowed {
  if (allowed === "*") return () => true;
  const exact = new Set<string>();
  const suffixes: string[] = [];
  for (const name of allowed) {
    const n = normalName(name);
    if (n.startsWith(".")) {
      suffixes.push(n);
      exact.add(n.slice(1));
    } else exact.add(n);
  }
  // shared/guard.ts's hostCheck remembers the last Host taken: this runs once per new one.
  return (host) => {
    const name = hostName(host);
    // A name of one label (a machine's or a container's) is no public DNS name either.
    return isIpLiteral(name) || !name.includes(".") || name.endsWith(".localhost") ||
      exact.has(name) || suffixes.some((s) => name.endsWith(s));
  };
}

/**
 * Whether a write sent with this `Origin` header comes from a page of another site than
 * `host` (the request's Host): "null" (a sandboxed or file: page) counts as another site.
 */
export function crossSiteOrigin(origin: string, host: string | null): boolean {
  if (host === null || !URL.canParse(origin)) return true;
  const from = new URL(origin);
  if (from.protocol !== "http:" && from.protocol !== "https:") return true;
  // The URL parser drops a default port from both sides alike.
  return !URL.canParse(`${from.protocol}//${host}/`) ||
    new URL(`${from.protocol}//${host}/`).host !== from.host;
}

/**
 * The names of `--allowed-hosts`: `*`, or a comma-separated list of host names (a leading `.`
 * for subdomains). A port, a scheme, a path or a `*` inside a list would never match a Host:
 * refused here rather than ignored.
 */
export function parseAllowedHosts(text: string): "*" | string[] {
  if (text.trim() === "*") return "*";
  const names = text.split(",").map((s) => s.trim()).filter((s) => s !== "");
  const bad = names.find((n) => !/^\.?[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)*\.?$/.test(n));
  if (names.length === 0 || bad !== undefined) {
    throw new ConfigError(
      `Cannot read --allowed-hosts ${JSON.stringify(text.slice(0, 200))}: give host names ` +
        `without port or scheme, comma-separated (such as kv.example.com,.internal), or *` +
        (bad === undefined ? "" : `; ${JSON.stringify(bad.slice(0, 100))} is not one`),
    );
  }
  return names;
}

/** A name as compared: lowercased, without a trailing dot. */
function normalName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, "");
}

/** The host of a `Host` header, without its port; an IPv6 address keeps its brackets. */
function hostName(host: string): string {
  const h = host.trim().toLowerCase();
  if (h.startsWith("[")) return h.slice(0, h.indexOf("]") + 1);
  const colon = h.lastIndexOf(":");
  return normalName(colon === -1 ? h : h.slice(0, colon));
}

function isIpLiteral(name: string): boolean {
  return (name.startsWith("[") && name.endsWith("]")) ||
    /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(name);
}
