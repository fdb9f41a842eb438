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
import { allNodes } from "../proxy/cluster/map_transitions.ts";

/** The proxy's directory under `--data`, where its cluster map is kept. */
export const proxyDir = (data: string) => join(data, "proxy");

/** The flags a plan is made from; `given`: those set on the command line or in RINGKV_*. */
export interface ClusterFlags {
  data: string;
  nodes: number;
  replicas: number;
  given: readonly ("nodes" | "replicas")[];
}

/**
 * The node ids to start (each in `<data>/<id>`), each one's port offset from `--node-port`, the
 * replica count, and what to tell the user.
 */
export interface ClusterPlan {
  ids: string[];
  /** `nK` is always at offset K - 1, whoever else starts: a node never takes another's port. */
  offsets: number[];
  replicas: number;
  notes: string[];
}

/**
 * Port offsets for `ids`: K - 1 for `nK`, as the task numbers its nodes; any other id after the
 * highest of those, in id order. Offsets by position shifted n3 onto the port n2 had, and a
 * proxy resuming the cleanup of n2's removal had n3 drop the ranges it had taken over (review).
 */
export function portOffsets(ids: readonly string[]): number[] {
  const numbered = ids.map((id) => /^n([1-9]\d{0,4})$/.exec(id)?.[1]);
  let next = Math.max(0, ...numbered.map((k) => k === undefined ? 0 : Number(k)));
  return numbered.map((k) => k === undefined ? next++ : Number(k) - 1);
}

/** A path that is no directory, or one this process may not read: left for the lock to name. */
export function unreadableDir(err: unknown): boolean {
  return err instanceof Deno.errors.NotADirectory || err instanceof Deno.errors.PermissionDenied;
}

/** The map the proxy under `data` would start from, or null when there is none to read. */
export async function storedMap(data: string): Promise<ClusterMap | null> {
  try {
    const map = await createFileMapStore(proxyDir(data)).load();
    // A hand-edited map with a node that is no object was a TypeError here (review).
    return map === null || wellFormed(map) ? map : null;
  } catch (err) {
    // Damaged or unreadable: the proxy names the problem when it starts.
    if (!(err instanceof MapFileError || unreadableDir(err))) throw err;
    return null;
  }
}

/** Whether every node the map names has a string id and URL (the proxy checks the rest). */
function wellFormed(map: ClusterMap): boolean {
  const rb = map.rebalancing as { next?: unknown; prev?: unknown } | null;
  const lists = [map.nodes, rb?.next ?? [], rb?.prev ?? []];
  return lists.every((list) =>
    Array.isArray(list) &&
    list.every((n) => typeof n?.id === "string" && typeof n?.url === "string")
  );
}

/** A node id this task can keep under `<data>/<id>`: one path segment. */
const PATH_SAFE_ID = /^(?!\.\.?$)[\w.-]+$/;

/** Every node the stored map names (a joining one, a leaving one), in id order (n2 before n10). */
function storedIds(map: ClusterMap): string[] {
  return allNodes(map).map((n) => n.id).sort((a, b) => a.localeCompare(b, "en", { numeric: true }));
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
    return { ids, offsets: portOffsets(ids), replicas: flags.replicas, notes: [] };
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
    // A node being added is only in the rebalancing's next ring (QA: "n5  is in the map").
    const url = allNodes(stored).find((n) => n.id === id)?.url ?? "";
    notes.push(
      `${id} ${url} is in the cluster map but has no directory in ${flags.data}: ` +
        "this task does not start it; start it where it was started",
    );
  }
  return { ids, offsets: portOffsets(ids), replicas: stored.replicas, notes };
}

/**
 * A usage error when the proxy's fixed `port` is one the nodes get (`nodePort` on, one each):
 * the proxy would find its own cluster's node there.
 */
export function checkProxyPort(port: number, nodePort: number, plan: ClusterPlan): void {
  if (port === 0 || nodePort === 0) return;
  const id = plan.ids[plan.offsets.indexOf(port - nodePort)];
  if (id === undefined) return;
  throw new ConfigError(
    `Cannot use --port ${port}: node ${id} gets that port (--node-port ${nodePort} gives the ` +
      `nodes ports ${nodePort} to ${
        nodePort + Math.max(...plan.offsets)
      }); give another --port or --node-port`,
  );
}
