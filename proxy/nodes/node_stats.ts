/**
 * Each node's sizes and request count, read from its `GET /metrics` when the proxy's own
 * `/metrics` or `/stats` is asked: keys, tombstones, value bytes, log and snapshot bytes,
 * open CASPaxos promises and requests answered. A node that does not answer is reported down, not an error.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseNodeMetrics } from "./node_stats.ts";
 * const text = 'ringkv_node_keys{node="n1"} 3\nringkv_node_requests_total{route="/health"} 2\n';
 * assert(parseNodeMetrics(text).keys === 3);
 * ```
 */
import type { NodeInfo } from "../../shared/wire.ts";
import type { NodeFetch } from "./node_client.ts";

/** What one node reported. */
export interface NodeStats {
  id: string;
  url: string;
  up: boolean;
  keys: number;
  tombstones: number;
  valueBytes: number;
  walBytes: number;
  snapshotBytes: number;
  /** 1 when the node takes writes, 0 when its disk failed (or it did not answer). */
  writable: number;
  /** How long the node's oldest write on its log has waited (0: none, or no answer). */
  fsyncWaitSeconds: number;
  /** CASPaxos promises the node keeps one by one (node/paxos/promise_table.ts). */
  openPromises: number;
  /** Requests the node answered since it started (all routes). */
  requests: number;
  error?: string;
}

/** What {@link readNodeStats} needs. */
export interface NodeStatsDeps {
  fetch: NodeFetch;
  clusterSecret?: string;
  timeoutMs: number;
}

const GAUGES: Record<string, keyof NodeStats> = {
  ringkv_node_keys: "keys",
  ringkv_node_tombstones: "tombstones",
  ringkv_node_value_bytes: "valueBytes",
  ringkv_node_wal_bytes: "walBytes",
  ringkv_node_snapshot_bytes: "snapshotBytes",
  ringkv_node_writable: "writable",
  ringkv_node_fsync_wait_seconds: "fsyncWaitSeconds",
  ringkv_node_open_promises: "openPromises",
};

/** The sizes and request total in a node's metrics text (missing ones are 0). */
export function parseNodeMetrics(text: string): Omit<NodeStats, "id" | "url" | "up"> {
  const out = {
    keys: 0,
    tombstones: 0,
    valueBytes: 0,
    walBytes: 0,
    snapshotBytes: 0,
    writable: 0,
    fsyncWaitSeconds: 0,
    openPromises: 0,
    requests: 0,
  };
  for (const line of text.split("\n")) {
    if (line.startsWith("#") || line === "") continue;
    const name = line.slice(0, line.search(/[{ ]/));
    const value = Number(line.slice(line.lastIndexOf(" ") + 1));
    if (!Number.isFinite(value)) continue;
    if (name === "ringkv_node_requests_total") out.requests += value;
    const field = GAUGES[name] as keyof typeof out | undefined;
    if (field !== undefined) out[field] = value;
  }
  return out;
}

/** Reads every node's metrics at once. */
export function readNodeStats(
  deps: NodeStatsDeps,
  nodes: readonly NodeInfo[],
): Promise<NodeStats[]> {
  return Promise.all(nodes.map(async (n): Promise<NodeStats> => {
    const headers = new Headers();
    if (deps.clusterSecret) headers.set("authorization", `Bearer ${deps.clusterSecret}`);
    try {
      const signal = AbortSignal.timeout(deps.timeoutMs);
      const res = await deps.fetch(`${n.url}/metrics`, { headers, signal });
      const text = await res.text();
      if (!res.ok) throw new Error(`GET /metrics answered ${res.status}`);
      return { id: n.id, url: n.url, up: true, ...parseNodeMetrics(text) };
    } catch (err) {
      const error = err instanceof Error ? err.message : String(err);
      return { id: n.id, url: n.url, up: false, ...parseNodeMetrics(""), error };
    }
  }));
}
