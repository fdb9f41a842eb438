/**
 * The proxy's own metrics, kept per app: client requests by route pattern (never the
 * key) and status with latency histograms, and every internal call to a node by route
 * and outcome, timeouts and errors apart. {@link instrumentFetch} wraps the injected
 * `fetch`, so every caller (dispatcher, node client, node admin) is counted alike.
 *
 * @module
 * @example
 * ```ts
 * import { ProxyMetrics, routeLabel } from "./metrics.ts";
 * const metrics = new ProxyMetrics();
 * metrics.request("GET", routeLabel("/kv/users/42"), 200, 0.002);
 * console.assert(metrics.requests.get({ method: "GET", route: "/kv/{key}", status: "200" }) === 1);
 * ```
 */
import { Counter, Histogram } from "../shared/prom.ts";

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

const NODE_ROUTES = new Set([
  "/health",
  "/metrics",
  "/internal/batch",
  "/internal/ingest",
  "/internal/scan",
  "/internal/drop",
  "/internal/keys",
  "/internal/cluster",
]);

/** The route label of an internal call's path. */
export function nodeRouteLabel(path: string): string {
  if (path.startsWith("/kv/")) return "/kv/{key}";
  return NODE_ROUTES.has(path) ? path : "other";
}

const METHODS = new Set(["GET", "HEAD", "PUT", "POST", "DELETE", "OPTIONS", "PATCH"]);

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
  /** Internal call latency (until the answer's headers). */
  readonly nodeLatency = new Histogram(
    "ringkv_proxy_node_call_duration_seconds",
    "Time until a node answers a call (headers), by node and route.",
    ["node", "route"],
  );

  /** Counts one answered client request. */
  request(method: string, route: string, status: number, seconds: number): void {
    const m = METHODS.has(method) ? method : "other";
    this.requests.inc({ method: m, route, status: String(status) });
    this.latency.observe({ method: m, route }, seconds);
  }

  /** Counts one internal call; `outcome` is the status, or the error it failed with. */
  nodeCall(node: string, route: string, outcome: number | unknown, seconds: number): void {
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
  fetch: (req: Request) => Promise<Response>,
  metrics: ProxyMetrics,
): (req: Request) => Promise<Response> {
  return async (req) => {
    const url = new URL(req.url);
    const route = nodeRouteLabel(url.pathname);
    const started = performance.now();
    try {
      const res = await fetch(req);
      metrics.nodeCall(url.host, route, res.status, (performance.now() - started) / 1000);
      return res;
    } catch (err) {
      metrics.nodeCall(url.host, route, err, (performance.now() - started) / 1000);
      throw err;
    }
  };
}
