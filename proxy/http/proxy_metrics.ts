/**
 * The proxy's own metrics, kept per app: client requests by route pattern (never the
 * key) and status with latency histograms, and every internal call to a node by route
 * and outcome, timeouts and errors apart. {@link instrumentFetch} wraps the injected
 * `fetch`, so every caller (dispatcher, node client, node admin) is counted alike.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { ProxyMetrics, routeLabel } from "./proxy_metrics.ts";
 * const metrics = new ProxyMetrics();
 * metrics.request("GET", routeLabel("/kv/users/42"), 200, 0.002);
 * assert(metrics.requests.get({ method: "GET", route: "/kv/{key}", status: "200" }) === 1);
 * ```
 */
import { Counter, Histogram, RequestSeries } from "../../shared/prom.ts";
import { nodeRouteLabel } from "../../shared/wire.ts";
import type { NodeFetch } from "../nodes/node_client.ts";
import type { ClusterMap } from "../../shared/wire.ts";
import { allNodes } from "../cluster/map_transitions.ts";
import type { TopologySource } from "../cluster/topology.ts";

const PROXY_ROUTES = new Set([
  "/",
  "/kv",
  "/health",
  "/metrics",
  "/cluster",
  "/cluster/nodes",
  "/ring",
  "/ring/owners",
  "/stats",
  "/openapi.json",
]);

/** The route label of a proxy path: its pattern, so keys and ids never become labels. */
export function routeLabel(path: string): string {
  if (path.startsWith("/kv/")) return "/kv/{key}";
  if (path.startsWith("/cluster/nodes/")) return "/cluster/nodes/{id}";
  return PROXY_ROUTES.has(path) ? path : "other";
}

const METHODS = new Set(["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"]);

interface HotRequest {
  count: { value: number };
  latency: { counts: number[]; sum: number; count: number };
}

/** The proxy's request and internal-call metrics. */
export class ProxyMetrics {
  /** Client requests answered. */
  readonly requests = new Counter(
    "ringkv_proxy_requests_total",
    "Client requests answered, by method, route pattern and status.",
    ["method", "route", "status"],
  );
  /** Client request latency. */
  readonly latency = new Histogram(
    "ringkv_proxy_request_duration_seconds",
    "Time to answer a client request, by method and route pattern.",
    ["method", "route"],
  );
  /** Internal calls by outcome: an HTTP status class, "timeout" or "error". */
  readonly nodeCalls = new Counter(
    "ringkv_proxy_node_calls_total",
    "Calls to nodes, by node, route and outcome (2xx, 4xx, 5xx, timeout, error).",
    ["node", "route", "outcome"],
  );
  /** Internal calls that failed: no answer in time, no connection, or a 5xx. */
  readonly nodeCallErrors = new Counter(
    "ringkv_proxy_node_call_errors_total",
    "Calls to nodes that failed, by node, route and kind (timeout, unreachable, 5xx).",
    ["node", "route", "kind"],
  );
  /**
   * The TTL reaper's deletes by outcome: `expired` (a tombstone written), `kept` (written again
   * or deleted meanwhile, often by another proxy's reaper), `failed` (no answer from a quorum or
   * the owner). Its failures are logged at debug only (proxies race each other): this says
   * whether a reaper keeps failing.
   */
  readonly ttlReaped = new Counter(
    "ringkv_proxy_ttl_reaper_deletes_total",
    "The TTL reaper's deletes of expired keys, by outcome (expired, kept, failed).",
    ["outcome"],
  );
  /**
   * Old tombstones the purge looked at, by outcome: `purged` (forgotten on every replica),
   * `kept` (a replica lacks that tombstone, holds a newer entry or did not answer: left for a
   * later sweep), `failed` (a purge call failed; some replicas may have forgotten it, the
   * others keep it until a later sweep).
   */
  readonly tombstonesPurged = new Counter(
    "ringkv_proxy_tombstone_purges_total",
    "Old tombstones the purge looked at, by outcome (purged, kept, failed).",
    ["outcome"],
  );
  /** Internal call latency (until the answer's headers). */
  readonly nodeLatency = new Histogram(
    "ringkv_proxy_node_call_duration_seconds",
    "Time until a node answers a call (headers), by node and route.",
    ["node", "route"],
  );

  readonly #requestSeries = new RequestSeries<HotRequest>(METHODS, (method, route, status) => ({
    count: this.requests.seriesOf({ method, route, status: String(status) }),
    latency: this.latency.seriesOf({ method, route }),
  }));
  /** Resolved series of 2xx internal calls by `node route`. */
  readonly #hotCalls = new Map<string, HotRequest>();
  /** The node id of a call's host (`host:port`); none until {@link nameNodesBy}. */
  #nodeOfHost: (host: string) => string | undefined = () => undefined;

  /**
   * Labels calls by the id of the member at their host, as the per-node gauges are, so the two
   * join; a host no member has (an add's candidate, a node's old address) is `other`, so URLs
   * tried once do not stay as series for good (review).
   */
  nameNodesBy(nodeOfHost: (host: string) => string | undefined): void {
    this.#nodeOfHost = nodeOfHost;
  }

  /** Counts one answered client request. */
  request(method: string, route: string, status: number, seconds: number): void {
    const hot = this.#requestSeries.of(method, route, status);
    hot.count.value++;
    this.latency.record(hot.latency, seconds);
  }

  /** Counts one internal call to `host`; `outcome` is the status, or the error it failed with. */
  nodeCall(host: string, route: string, outcome: number | unknown, seconds: number): void {
    const node = this.#nodeOfHost(host) ?? "other";
    if (typeof outcome === "number" && outcome < 300 && outcome >= 200) {
      const name = node + " " + route;
      let hot = this.#hotCalls.get(name);
      if (hot === undefined) {
        hot = {
          count: this.nodeCalls.seriesOf({ node, route, outcome: "2xx" }),
          latency: this.nodeLatency.seriesOf({ node, route }),
        };
        this.#hotCalls.set(name, hot);
      }
      hot.count.value++;
      this.nodeLatency.record(hot.latency, seconds);
      return;
    }
    if (typeof outcome === "number") {
      this.nodeCalls.inc({ node, route, outcome: `${Math.floor(outcome / 100)}xx` });
      this.nodeLatency.observe({ node, route }, seconds);
      if (outcome >= 500) this.nodeCallErrors.inc({ node, route, kind: "5xx" });
      return;
    }
    const timeout = outcome instanceof DOMException &&
      (outcome.name === "TimeoutError" || outcome.name === "AbortError");
    this.nodeCalls.inc({ node, route, outcome: timeout ? "timeout" : "error" });
    this.nodeCallErrors.inc({ node, route, kind: timeout ? "timeout" : "unreachable" });
  }
}

/** Wraps `fetch` so that every internal call is counted in `metrics` by node and route. */
export function instrumentFetch(
  fetch: NodeFetch,
  metrics: ProxyMetrics,
): NodeFetch {
  return (url, init) => counted(metrics, url, () => fetch(url, init));
}

/** Makes one call of `url` with `run`, counting its outcome and time. */
async function counted<T extends { status: number }>(
  metrics: ProxyMetrics,
  url: string,
  run: () => Promise<T>,
): Promise<T> {
  const { host, path } = hostAndPath(url);
  const route = nodeRouteLabel(path);
  const started = performance.now();
  try {
    const answer = await run();
    metrics.nodeCall(host, route, answer.status, (performance.now() - started) / 1000);
    return answer;
  } catch (err) {
    metrics.nodeCall(host, route, err, (performance.now() - started) / 1000);
    throw err;
  }
}

/** Host (with port, as `URL.host` gives it) and path of an absolute URL, without parsing it. */
function hostAndPath(url: string): { host: string; path: string } {
  const hostStart = url.indexOf("://") + 3;
  let pathStart = url.indexOf("/", hostStart);
  if (pathStart === -1) pathStart = url.length;
  let end = url.length;
  for (const mark of ["?", "#"]) {
    const at = url.indexOf(mark, pathStart);
    if (at !== -1 && at < end) end = at;
  }
  const host = url.slice(hostStart, pathStart);
  // URL.host drops a scheme's default port and userinfo; fall back to it for those rare cases.
  if (host.includes("@") || /:(80|443)$/.test(host) || /[A-Z]/.test(host)) {
    const parsed = new URL(url);
    return { host: parsed.host, path: parsed.pathname };
  }
  return { host, path: url.slice(pathStart, end) || "/" };
}

/**
 * The id of the member of the current map at a `host:port`, spelt as {@link hostAndPath} spells
 * a call's: worked out once per map, since a topology is swapped whole when the map changes.
 */
export function memberAtHost(source: TopologySource): (host: string) => string | undefined {
  let seen: ClusterMap | undefined;
  let ids = new Map<string, string>();
  return (host) => {
    const { map } = source.current();
    if (map !== seen) {
      seen = map;
      ids = new Map(allNodes(map).map((n) => [hostAndPath(n.url).host, n.id]));
    }
    return ids.get(host);
  };
}
