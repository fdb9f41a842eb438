/**
 * The node's Prometheus metrics: request counts and latency by route and status (kept per
 * app, never per process), fsync latency (node/storage/timed_disk.ts feeds it), the engine's
 * sizes (keys, value bytes, log and snapshot bytes) and the CASPaxos acceptor's promises.
 *
 * @module
 */
import {
  Counter,
  gauge,
  Histogram,
  type Metric,
  render,
  RequestSeries,
} from "../../shared/prom.ts";
import type { EngineStats } from "../engine/engine.ts";
import type { WriteHealth } from "../engine/write_guard.ts";
import { nodeRouteLabel } from "../../shared/wire.ts";

/** The route label of a path: its pattern, so keys never become label values. */
export const routeLabel = nodeRouteLabel;

const KNOWN_METHODS = new Set(["GET", "HEAD", "PUT", "POST", "DELETE"]);

interface HotSeries {
  requests: { value: number };
  /** The latency series' labels; it is made on the first request timed. */
  labels: { method: string; route: string };
  latency?: { counts: number[]; sum: number; count: number };
}

/** Request counters, latency and fsync histograms of one node app (never per process). */
export class RequestCounters {
  readonly #requests = new Counter(
    "ringkv_node_requests_total",
    "Requests answered, by method, route and status.",
    ["method", "route", "status"],
  );
  /** Request latency by method and route. */
  readonly latency: Histogram = new Histogram(
    "ringkv_node_request_duration_seconds",
    "Time to answer a request, by method and route.",
    ["method", "route"],
  );
  /** fsync latency (`op`: sync of the log, write_atomic of a snapshot or map); fed by timedDisk. */
  readonly fsync: Histogram = new Histogram(
    "ringkv_node_fsync_duration_seconds",
    "Time of each fsync'd disk operation: sync (log append) or write_atomic (snapshot, map).",
    ["op"],
  );

  readonly #series = new RequestSeries<HotSeries>(KNOWN_METHODS, (method, route, status) => ({
    requests: this.#requests.seriesOf({ method, route, status: String(status) }),
    labels: { method, route },
  }));

  /** Counts one answered request (and its latency, when given). */
  count(method: string, route: string, status: number, seconds?: number): void {
    const hot = this.#series.of(method, route, status);
    hot.requests.value++;
    if (seconds === undefined) return;
    hot.latency ??= this.latency.seriesOf(hot.labels);
    this.latency.record(hot.latency, seconds);
  }

  /** The metrics in exposition order. */
  metrics(): Metric[] {
    return [this.#requests, this.latency, this.fsync];
  }
}

/** The whole `/metrics` text for a node. */
export function metricsText(
  id: string,
  stats: EngineStats,
  counters: RequestCounters,
  writes: WriteHealth,
  promises: { open: number; folded: number } = { open: 0, folded: 0 },
): string {
  const g = (name: string, help: string, value: number) =>
    gauge(`ringkv_node_${name}`, help, [{ labels: { node: id }, value }]);
  return render([
    g("keys", "Live keys stored.", stats.keys),
    g("tombstones", "Tombstones (deleted keys kept with their version).", stats.tombstones),
    g("value_bytes", "Bytes of live values.", stats.valueBytes),
    g("wal_bytes", "Bytes in the write-ahead log.", stats.walBytes),
    g("snapshot_bytes", "Bytes of the last snapshot.", stats.snapshotBytes),
    g("reserve_bytes", "Bytes held in snapshot.reserve for the next snapshot.", stats.reserveBytes),
    g(
      "writable",
      "1 when the node takes writes, 0 when a disk failure made it read-only (see /health).",
      writes.state === "writable" || writes.state === "stalled" ? 1 : 0,
    ),
    g(
      "fsync_wait_seconds",
      "How long the oldest write waiting on the log (append + fsync), acceptor.json, cluster.json or map_vote.json has waited; 0: none waits.",
      stats.diskWaitMs / 1000,
    ),
    g(
      "open_promises",
      "CASPaxos promises kept one by one: at most one per stored key, plus those on keys without an entry given in the last 1-2 minutes.",
      promises.open,
    ),
    foldedCounter(id, promises.folded),
    ...counters.metrics(),
  ]);
}

function foldedCounter(id: string, folded: number): Counter {
  const c = new Counter(
    "ringkv_node_promises_folded_total",
    "Promises on keys without an entry folded into the acceptor's absent-key floor after a minute.",
    ["node"],
  );
  c.inc({ node: id }, folded);
  return c;
}
