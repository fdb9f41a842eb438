/**
 * The node's Prometheus metrics: request counts by route and status (kept per app, never
 * per process) and the engine's sizes.
 *
 * @module
 */
import type { EngineStats } from "./engine.ts";

const FIXED_ROUTES = new Set([
  "/health",
  "/metrics",
  "/export",
  "/import",
  "/internal/batch",
  "/internal/ingest",
  "/internal/scan",
  "/internal/drop",
  "/internal/keys",
  "/internal/cluster",
]);

/** The route label of a path: its pattern, so keys never become label values. */
export function routeLabel(path: string): string {
  if (path.startsWith("/kv/")) return "/kv/{key}";
  return FIXED_ROUTES.has(path) ? path : "other";
}

/** Request counters of one node app. */
export class RequestCounters {
  readonly #counts = new Map<string, number>();

  /** Counts one answered request. */
  count(method: string, route: string, status: number): void {
    const known = ["GET", "HEAD", "PUT", "POST", "DELETE"].includes(method) ? method : "other";
    const key = `${known} ${route} ${status}`;
    this.#counts.set(key, (this.#counts.get(key) ?? 0) + 1);
  }

  /** The counters as Prometheus sample lines. */
  lines(): string[] {
    return [...this.#counts].sort().map(([key, n]) => {
      const [method, route, status] = key.split(" ");
      return `ringkv_node_requests_total{method="${method}",route="${route}",status="${status}"} ${n}`;
    });
  }
}

/** The whole `/metrics` text for a node. */
export function metricsText(id: string, stats: EngineStats, counters: RequestCounters): string {
  const gauge = (name: string, help: string, value: number) => [
    `# HELP ringkv_node_${name} ${help}`,
    `# TYPE ringkv_node_${name} gauge`,
    `ringkv_node_${name}{node="${id}"} ${value}`,
  ];
  return [
    ...gauge("keys", "Live keys stored.", stats.keys),
    ...gauge("tombstones", "Tombstones (deleted keys kept with their version).", stats.tombstones),
    ...gauge("value_bytes", "Bytes of live values.", stats.valueBytes),
    ...gauge("wal_bytes", "Bytes in the write-ahead log.", stats.walBytes),
    ...gauge("snapshot_bytes", "Bytes of the last snapshot.", stats.snapshotBytes),
    "# HELP ringkv_node_requests_total Requests answered, by method, route and status.",
    "# TYPE ringkv_node_requests_total counter",
    ...counters.lines(),
    "",
  ].join("\n");
}
