/**
 * What `deno task cluster` starts: on a new `--data`, the nodes and replicas of the flags; on
 * one that holds a cluster map, that cluster, as etcd ignores `--initial-cluster` and Redis
 * Cluster its creation options once a data directory exists. Flags that disagree with the
 * stored cluster are named as ignored, with how membership is changed instead.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { planCluster } from "./cluster_plan.ts";
 * const plan = planCluster({ data: "./data", nodes: 3, replicas: 3, given: [] }, null);
 * assertEquals(plan.ids, ["n1", "n2", "n3"]);
 * ```
 */
import { join } from "@std/path";
import { ConfigError } from "../shared/config.ts";
import type { ClusterMap } from "../shared/wire.ts";
import { createFileMapStore, MapFileError } from "../proxy/cluster/map_store.ts";

/** The proxy's directory under `--data`, where its cluster map is kept. */
export const proxyDir = (data: string) => join(data, "proxy");

/** The flags a plan is made from; `given`: those set on the command line or in RINGKV_*. */
export interface ClusterFlags {
  data: string;
  nodes: number;
  replicas: number;
  given: readonly ("nodes" | "replicas")[];
}

/** The node ids to start (each in `<data>/<id>`), the replica count, and what to tell the user. */
export interface ClusterPlan {
  ids: string[];
  replicas: number;
  notes: string[];
}

/** The map the proxy under `data` would start from, or null when there is none to read. */
export async function storedMap(data: string): Promise<ClusterMap | null> {
  try {
    return await createFileMapStore(proxyDir(data)).load();
  } catch (err) {
    // Damaged or unreadable: the proxy names the problem when it starts.
    const unreadable = err instanceof MapFileError || err instanceof Deno.errors.NotADirectory ||
      err instanceof Deno.errors.PermissionDenied;
    if (!unreadable) throw err;
    return null;
  }
}

/** A node id this task can keep under `<data>/<id>`: one path segment. */
const PATH_SAFE_ID = /^(?!\.\.?$)[\w.-]+$/;

/** The stored nodes, a rebalancing's new one included, in id order (n2 before n10). */
function storedIds(map: ClusterMap): string[] {
  const ids = new Set([...map.nodes, ...(map.rebalancing?.next ?? [])].map((n) => n.id));
  return [...ids].sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
}

/**
 * The plan for `flags` on a directory whose proxy holds `stored` (null: a new cluster).
 * `hasDir(id)`: whether `<data>/<id>` exists; a stored node without one was started elsewhere
 * and is left to whoever runs it (a new empty directory would lose its keys).
 */
export function planCluster(
  flags: ClusterFlags,
  stored: ClusterMap | null,
  hasDir: (id: string) => boolean = () => true,
): ClusterPlan {
  if (stored === null) {
    const ids = Array.from({ length: flags.nodes }, (_, i) => `n${i + 1}`);
    return { ids, replicas: flags.replicas, notes: [] };
  }
  const all = storedIds(stored);
  const ids = all.filter((id) => PATH_SAFE_ID.test(id) && hasDir(id));
  const notes: string[] = [];
  const where = `${flags.data} holds a cluster of ${all.length} node(s) (${all.join(", ")}) ` +
    `with ${stored.replicas} replica(s) of each key`;
  if (flags.given.includes("nodes") && flags.nodes !== all.length) {
    notes.push(
      `--nodes ${flags.nodes} is ignored: ${where}, started as stored. Add or remove nodes ` +
        "with deno task kv add URL / deno task kv remove ID, or give another --data for a " +
        "new cluster",
    );
  }
  if (flags.given.includes("replicas") && flags.replicas !== stored.replicas) {
    notes.push(
      `--replicas ${flags.replicas} is ignored: ${where}; a cluster keeps the replica count ` +
        "it started with (give another --data for a new cluster)",
    );
  }
  for (const id of all.filter((id) => !ids.includes(id))) {
    const url = stored.nodes.find((n) => n.id === id)?.url ?? "";
    notes.push(
      `${id} ${url} is in the cluster map but has no directory in ${flags.data}: ` +
        "this task does not start it; start it where it was started",
    );
  }
  return { ids, replicas: stored.replicas, notes };
}

/**
 * A usage error when the proxy's fixed `port` is one the nodes get (`nodePort` on, one each):
 * the proxy would find its own cluster's node there.
 */
export function checkProxyPort(port: number, nodePort: number, ids: readonly string[]): void {
  if (port === 0 || nodePort === 0) return;
  const id = ids[port - nodePort];
  if (id === undefined) return;
  throw new ConfigError(
    `Cannot use --port ${port}: node ${id} gets that port (--node-port ${nodePort} gives the ` +
      `nodes ports ${nodePort} to ${
        nodePort + ids.length - 1
      }); give another --port or --node-port`,
  );
}
