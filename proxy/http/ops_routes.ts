/**
 * The proxy's operability routes: `GET /metrics` (Prometheus text), `GET /stats` (the
 * nodes' sizes, for the web page), `GET /ring/owners?key=` (which nodes own a key), all
 * behind the admin token; the web page at `GET /` and `GET /openapi.json` are public
 * (every data call the page makes needs the token).
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { createOpsRoutes } from "./ops_routes.ts";
 * assert(typeof createOpsRoutes === "function");
 * ```
 */
import { Hono } from "hono";
import { errorResponse, RingkvError } from "../../shared/errors.ts";
import { checkKey } from "../../shared/keys.ts";
import { gauge, type Metric, PROM_CONTENT_TYPE, render } from "../../shared/prom.ts";
import { hashKey, type Ring } from "../../shared/ring.ts";
import type { ClusterState } from "../cluster/map_view.ts";
import { allNodes } from "../cluster/map_transitions.ts";
import type { ProxyMetrics } from "./proxy_metrics.ts";
import { type NodeStats, type NodeStatsDeps, readNodeStats } from "../nodes/node_stats.ts";
import { OPENAPI } from "./openapi.ts";
import type { Rebalancer } from "../rebalance/rebalancer.ts";
import { UI_PAGE } from "./ui_page.ts";
import { strictQueryParam } from "./listing_route.ts";
import { requireAdminToken } from "./admin_routes.ts";
import { fastWriteMetrics, type FastWriteSource } from "../replication/fast_write_metrics.ts";
import type { SweepReport } from "../replication/anti_entropy.ts";

/** What the operability routes need. */
export interface OpsDeps extends NodeStatsDeps {
  state: ClusterState;
  rebalancer: Rebalancer;
  metrics: ProxyMetrics;
  adminToken?: string;
  maxKeyBytes: number;
  /** When the process started (ms since the epoch), for process gauges. */
  startedAt?: number;
  /** Process memory, read at scrape time (main.ts passes `Deno.memoryUsage`). */
  memory?: () => { rss: number; heapUsed: number };
  /** The replicated data path: its fast-write counters and the nodes' clock offsets, at scrape time. */
  replication?: {
    replicated: FastWriteSource;
    clockOffsetMs?(id: string): number | undefined;
    antiEntropy?: { last: SweepReport | null };
  };
}

/** The per-node gauges of `/metrics`: `node_up` for every member, the rest for those that answered. */
export function nodeGauges(stats: readonly NodeStats[], ring: Ring): Metric[] {
  const shares = ring.shares();
  const per = (field: keyof NodeStats) =>
    stats.map((s) => ({ labels: { node: s.id }, value: Number(s[field]) }));
  // A node that did not answer has no sample: a 0 would read as an empty node (review).
  const answered = stats.filter((s) => s.up);
  const perUp = (field: keyof NodeStats) =>
    answered.map((s) => ({ labels: { node: s.id }, value: Number(s[field]) }));
  return [
    gauge("ringkv_proxy_node_up", "1 when the node answered its /metrics, else 0.", per("up")),
    gauge(
      "ringkv_proxy_node_writable",
      "1 when the node takes writes, 0 when a disk failure made it read-only or it is down.",
      per("writable"),
    ),
    gauge(
      "ringkv_proxy_node_fsync_wait_seconds",
      "How long each node's oldest write waiting on its log, acceptor.json, cluster.json or map_vote.json has waited (a stall when seconds).",
      perUp("fsyncWaitSeconds"),
    ),
    gauge("ringkv_proxy_node_keys", "Live keys on each node.", perUp("keys")),
    gauge(
      "ringkv_proxy_node_value_bytes",
      "Bytes of live values on each node.",
      perUp("valueBytes"),
    ),
    gauge("ringkv_proxy_node_wal_bytes", "Bytes of each node's log.", perUp("walBytes")),
    gauge(
      "ringkv_proxy_node_snapshot_bytes",
      "Bytes of each node's snapshot.",
      perUp("snapshotBytes"),
    ),
    gauge(
      "ringkv_proxy_node_open_promises",
      "CASPaxos promises each node keeps one by one (ringkv_node_open_promises).",
      perUp("openPromises"),
    ),
    gauge(
      "ringkv_proxy_ring_share",
      "Share of the hash space each node owns in the serving ring (0-1).",
      [...shares].map(([node, value]) => ({ labels: { node }, value })),
    ),
  ];
}

function clusterGauges(deps: OpsDeps): Metric[] {
  const map = deps.state.current().map;
  const rb = map.rebalancing;
  const phases = ["copying", "cleanup"].map((phase) => ({
    labels: { phase },
    value: rb?.phase === phase ? 1 : 0,
  }));
  return [
    gauge("ringkv_proxy_cluster_epoch", "Epoch of the cluster map.", [{ value: map.epoch }]),
    gauge("ringkv_proxy_cluster_nodes", "Nodes in the serving ring.", [{
      value: map.nodes.length,
    }]),
    gauge("ringkv_proxy_rebalancing", "1 while a rebalancing is in this phase.", phases),
    gauge("ringkv_proxy_rebalancing_moved_keys", "Keys copied by the running rebalancing.", [{
      value: rb === null ? 0 : deps.rebalancer.movedKeys(),
    }]),
    gauge(
      "ringkv_proxy_rebalancing_total_keys",
      "Copies in the cluster when the running rebalancing started.",
      [{
        value: rb?.totalKeys ?? 0,
      }],
    ),
  ];
}

function processGauges(deps: OpsDeps): Metric[] {
  const out: Metric[] = [];
  if (deps.memory) {
    const { rss, heapUsed } = deps.memory();
    out.push(gauge("process_resident_memory_bytes", "Resident memory.", [{ value: rss }]));
    out.push(gauge("ringkv_proxy_heap_used_bytes", "JavaScript heap in use.", [{
      value: heapUsed,
    }]));
  }
  if (deps.startedAt !== undefined) {
    out.push(gauge("process_start_time_seconds", "Start time, seconds since the epoch.", [{
      value: Math.floor(deps.startedAt / 1000),
    }]));
  }
  return out;
}

/** Which nodes own `key` now (and in the next ring, while a range moves). */
async function owners(deps: OpsDeps, key: string) {
  const topo = deps.state.current();
  const point = await hashKey(key);
  const n = topo.map.replicas;
  const view = (ids: string[]) => ids.map((id) => ({ id, url: topo.nodeUrl(id) ?? null }));
  return {
    key,
    point,
    owners: view(topo.ring.ownersOf(point, n)),
    next: topo.nextRing ? view(topo.nextRing.ownersOf(point, n)) : null,
  };
}

/** Each node's clock offset from this proxy's, as its last health probe measured it. */
export function clockGauge(deps: Pick<OpsDeps, "replication">, nodes: readonly { id: string }[]) {
  const series = nodes.flatMap((n) => {
    const ms = deps.replication?.clockOffsetMs?.(n.id);
    return ms === undefined ? [] : [{ labels: { node: n.id }, value: ms / 1000 }];
  });
  return gauge(
    "ringkv_proxy_node_clock_offset_seconds",
    "Each node's wall clock minus this proxy's, as its last health probe measured it.",
    series,
  );
}

/**
 * What the last anti-entropy sweep compared: buckets that differed, buckets not compared (fewer
 * than two digests came back) and, per node, whether its digests failed. None before a sweep.
 */
export function antiEntropyGauges(last: SweepReport | null, nodes: readonly { id: string }[]) {
  if (last === null) return [];
  return [
    gauge("ringkv_proxy_anti_entropy_buckets", "Buckets the last anti-entropy sweep covered.", [{
      value: last.buckets,
    }]),
    gauge(
      "ringkv_proxy_anti_entropy_buckets_differing",
      "Buckets whose replicas' digests differed in the last anti-entropy sweep.",
      [{ value: last.differing }],
    ),
    gauge(
      "ringkv_proxy_anti_entropy_buckets_uncompared",
      "Buckets the last anti-entropy sweep could not compare (fewer than two digests answered).",
      [{ value: last.uncompared }],
    ),
    gauge(
      "ringkv_proxy_anti_entropy_digest_failed",
      "1 when the node's digest calls failed in the last anti-entropy sweep, else 0.",
      nodes.map((n) => ({
        labels: { node: n.id },
        value: last.digestFailed[n.id] === undefined ? 0 : 1,
      })),
    ),
  ];
}

/** The operability routes as a Hono app. */
export function createOpsRoutes(deps: OpsDeps): Hono {
  const app = new Hono();
  app.onError((err) => {
    if (!(err instanceof RingkvError)) throw err;
    return errorResponse(err, err.code === "method_not_allowed" ? { allow: "GET, HEAD" } : {});
  });
  const auth = requireAdminToken(deps.adminToken);
  for (const path of ["/metrics", "/stats", "/ring/owners"]) app.use(path, auth);
  app.get("/metrics", async () => {
    const topo = deps.state.current();
    const stats = await readNodeStats(deps, allNodes(topo.map));
    const m = deps.metrics;
    const text = render([
      m.requests,
      m.latency,
      m.nodeCalls,
      m.nodeCallErrors,
      m.nodeLatency,
      m.ttlReaped,
      m.tombstonesPurged,
      ...clusterGauges(deps),
      ...nodeGauges(stats, topo.ring),
      ...processGauges(deps),
      ...(deps.replication ? fastWriteMetrics(deps.replication.replicated) : []),
      clockGauge(deps, allNodes(topo.map)),
      ...antiEntropyGauges(deps.replication?.antiEntropy?.last ?? null, allNodes(topo.map)),
    ]);
    return new Response(text, { headers: { "content-type": PROM_CONTENT_TYPE } });
  });
  app.get("/stats", async (c) => {
    const nodes = await readNodeStats(deps, allNodes(deps.state.current().map));
    return c.json({ time: Date.now(), nodes });
  });
  app.get("/ring/owners", async (c) => {
    // Decoded as a key in /kv/{key} is: `%ff` is a 400, not the key "%ff" (QA).
    const raw = strictQueryParam(c.req.url, "key", "look up owners");
    if (raw === undefined) {
      throw new RingkvError("bad_request", "Cannot look up owners: pass ?key=<key>");
    }
    return c.json(await owners(deps, checkKey(raw, deps.maxKeyBytes)));
  });
  // Not in a frame of another site (clickjacking the admin page), nor sniffed as anything else.
  app.get("/", (c) =>
    c.html(UI_PAGE, 200, {
      "content-security-policy": "frame-ancestors 'none'",
      "x-frame-options": "DENY",
      "x-content-type-options": "nosniff",
    }));
  app.get("/openapi.json", (c) => c.json(OPENAPI));
  // 405 names the allowed methods in Allow (RFC 9110).
  const refuse = () =>
    errorResponse(
      new RingkvError("method_not_allowed", "Cannot use this method here: allowed are GET, HEAD"),
      { allow: "GET, HEAD" },
    );
  for (const path of ["/metrics", "/stats", "/ring/owners", "/", "/openapi.json"]) {
    app.all(path, refuse);
  }
  return app;
}
