/**
 * The cluster map's transitions, as pure functions: a new cluster, starting to add or
 * remove a node, switching to the next ring (cleanup), and the stable end. Each step
 * bumps the epoch by one, so two proxies taking the same step produce the same epoch.
 *
 * ```
 * e   {nodes: R, rebalancing: null}
 * e+1 {nodes: R, rebalancing: {phase: "copying", next: N, prev: R}}   writes go to both
 * e+2 {nodes: N, rebalancing: {phase: "cleanup", next: N, prev: R}}   old owners drop
 * e+3 {nodes: N, rebalancing: null}
 * ```
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { initialMap, planAdd, toCleanup, toStable } from "./map_transitions.ts";
 * const map = initialMap([{ id: "n1", url: "http://a", weight: 1 }], 1, 8);
 * const adding = planAdd(map, { id: "n2", url: "http://b", weight: 1 }, 0, 0);
 * const done = toStable(toCleanup(adding, 0));
 * assert(done.epoch === 4 && done.nodes.length === 2);
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import { parseNodeUrl } from "../../shared/node_url.ts";
import type { ClusterMap, NodeInfo, Rebalancing } from "../../shared/wire.ts";

/**
 * A rebalancing with the members of the ring it started from. `prev` is an addition
 * to `Rebalancing` (shared/wire.ts): in the cleanup phase `nodes` is already the next
 * ring, and a removed node's URL and weight are needed to drop its ranges.
 */
export type Plan = Rebalancing & {
  prev?: NodeInfo[];
  /** A removal for good of a dead node: its ranges are copied from the surviving replicas. */
  force?: boolean;
};

/** Copies of each key a new cluster gets by default (as etcd, Consul and Riak users expect). */
export const DEFAULT_REPLICAS = 3;

/** The replica count of a new cluster of `nodeCount` nodes: 3, or as many as there are nodes. */
export function defaultReplicas(nodeCount: number): number {
  return Math.max(1, Math.min(DEFAULT_REPLICAS, nodeCount));
}

/** The first map of a new cluster (epoch 1). */
export function initialMap(nodes: NodeInfo[], replicas: number, vnodes: number): ClusterMap {
  return { epoch: 1, replicas, vnodes, nodes, rebalancing: null };
}

function refuseWhileRebalancing(map: ClusterMap, action: string): void {
  const rb = map.rebalancing;
  if (rb !== null) {
    throw new RingkvError(
      "conflict",
      `Cannot ${action}: node ${rb.nodeId} is being ${
        rb.kind === "add" ? "added" : "removed"
      } (phase ${rb.phase}); wait until GET /cluster shows no rebalancing (if its ` +
        `rebalancing.error says a node does not answer, remove that node for good with ` +
        `DELETE /cluster/nodes/{id}?force=true: the change then goes on, or ends, without it)`,
    );
  }
}

/** Starts adding `node`: epoch + 1, phase copying; 409 on duplicates or a running rebalancing. */
export function planAdd(
  map: ClusterMap,
  node: NodeInfo,
  now: number,
  totalKeys: number,
): ClusterMap {
  refuseWhileRebalancing(map, `add node ${node.url}`);
  for (const n of map.nodes) {
    if (n.id === node.id) {
      throw new RingkvError(
        "conflict",
        `Cannot add node ${node.url}: a node with id ${node.id} is already in the ring (${n.url})`,
      );
    }
    if (n.url === node.url) {
      throw new RingkvError(
        "conflict",
        `Cannot add node ${node.url}: a node with this URL is already in the ring (id ${n.id})`,
      );
    }
  }
  return start(map, "add", node.id, [...map.nodes, node], now, totalKeys);
}

/**
 * What a remove of the unknown `id` may have meant, for its 404: the node whose URL it is
 * (`kv remove http://127.0.0.1:7004`), or whose id it is in another case (`N1`); else "".
 */
export function meantNode(map: ClusterMap, id: string): string {
  const nodes = allNodes(map);
  const parsed = parseNodeUrl(id);
  const byUrl = "origin" in parsed ? nodes.find((n) => n.url === parsed.origin) : undefined;
  if (byUrl !== undefined) return `; it is the URL of node ${byUrl.id}: remove ${byUrl.id}`;
  const near = nodes.find((n) => n.id.toLowerCase() === id.toLowerCase());
  return near === undefined ? "" : `; did you mean ${near.id}? (ids are case-sensitive)`;
}

/**
 * Starts removing node `id`: epoch + 1, phase copying; 404 unknown, 409 last node, 409
 * when fewer nodes than replicas would be left unless `insist`. `force`: the node is gone
 * for good, nothing is read from it.
 */
export function planRemove(
  map: ClusterMap,
  id: string,
  now: number,
  totalKeys: number,
  force = false,
  insist = force,
): ClusterMap {
  // The node an add is bringing in is not in map.nodes yet: 409, it exists.
  const joining = map.rebalancing?.kind === "add" && map.rebalancing.nodeId === id;
  if (!joining && !map.nodes.some((n) => n.id === id)) {
    throw new RingkvError(
      "not_found",
      `Cannot remove node ${id}: no node has this id${meantNode(map, id)}`,
    );
  }
  refuseWhileRebalancing(map, `remove node ${id}`);
  if (map.nodes.length === 1) {
    throw new RingkvError("conflict", `Cannot remove node ${id}: it is the last node`);
  }
  const next = map.nodes.filter((n) => n.id !== id);
  if (!insist && next.length < map.replicas) {
    throw new RingkvError(
      "conflict",
      `Cannot remove node ${id}: ${next.length} node(s) would be left for ${map.replicas} replicas ` +
        `of each key, so every key would keep fewer copies than the cluster promises; add a ` +
        `node first, or insist with DELETE /cluster/nodes/${id}?force=true (kv remove --force)`,
    );
  }
  const started = start(map, "remove", id, next, now, totalKeys);
  if (force) (started.rebalancing as Plan).force = true;
  return started;
}

function start(
  map: ClusterMap,
  kind: "add" | "remove",
  nodeId: string,
  next: NodeInfo[],
  startedAt: number,
  totalKeys: number,
): ClusterMap {
  const plan: Plan = {
    kind,
    nodeId,
    phase: "copying",
    next,
    startedAt,
    movedKeys: 0,
    totalKeys,
    prev: map.nodes,
  };
  return { ...map, epoch: map.epoch + 1, rebalancing: plan };
}

/**
 * Cancels the add in `map` while its ranges are still copied (epoch + 1, the ring it started
 * from, stable). The old ring has served and taken every write meanwhile, so nothing is lost;
 * past the switch (cleanup) the node owns ranges, and the add must finish.
 */
export function cancelAdd(map: ClusterMap): ClusterMap {
  const rb = map.rebalancing;
  if (rb?.kind !== "add" || rb.phase !== "copying") {
    throw new Error("cancelAdd() needs an add copying");
  }
  return { ...map, epoch: map.epoch + 1, rebalancing: null };
}

/**
 * Cancels the drain in `map` while its ranges are still copied (epoch + 1, the ring it started
 * from, stable): as for {@link cancelAdd}, the old ring has decided every write meanwhile. The
 * copies its takers got are of ranges they do not own in that ring (the caller drops them).
 */
export function cancelRemove(map: ClusterMap): ClusterMap {
  const rb = map.rebalancing;
  if (rb?.kind !== "remove" || rb.phase !== "copying") {
    throw new Error("cancelRemove() needs a removal copying");
  }
  return { ...map, epoch: map.epoch + 1, rebalancing: null };
}

/**
 * The drain in `map`, still copying, becomes the removal for good of its node, which died
 * (epoch + 1, same rings): its ranges are then read from the surviving replicas only.
 */
export function toForcedRemoval(map: ClusterMap): ClusterMap {
  const rb = map.rebalancing as Plan | null;
  if (rb?.kind !== "remove" || rb.phase !== "copying") {
    throw new Error("toForcedRemoval() needs a removal copying");
  }
  const plan: Plan = { ...rb, prev: previousNodes(map), force: true, movedKeys: 0 };
  return { ...map, epoch: map.epoch + 1, rebalancing: plan };
}

/** Every range is copied: the next ring serves (epoch + 1, phase cleanup). */
export function toCleanup(map: ClusterMap, movedKeys: number): ClusterMap {
  const rb = map.rebalancing;
  if (rb === null || rb.phase !== "copying") throw new Error("toCleanup() needs phase copying");
  const plan: Plan = { ...rb, prev: previousNodes(map), phase: "cleanup", movedKeys };
  return { ...map, epoch: map.epoch + 1, nodes: rb.next, rebalancing: plan };
}

/** Old owners have dropped their moved ranges: the rebalancing is over (epoch + 1). */
export function toStable(map: ClusterMap): ClusterMap {
  if (map.rebalancing?.phase !== "cleanup") throw new Error("toStable() needs phase cleanup");
  return { ...map, epoch: map.epoch + 1, rebalancing: null };
}

/**
 * The members of the ring the rebalancing started from. Maps without `prev` (written
 * by an older proxy) fall back to what can be worked out.
 */
export function previousNodes(map: ClusterMap): NodeInfo[] {
  const rb = map.rebalancing as Plan | null;
  if (rb === null || rb.phase === "copying") return map.nodes;
  if (rb.prev) return rb.prev;
  return rb.kind === "add" ? rb.next.filter((n) => n.id !== rb.nodeId) : rb.next;
}

/** Every node the map mentions (current, next and previous rings), once each. */
export function allNodes(map: ClusterMap): NodeInfo[] {
  const byId = new Map<string, NodeInfo>();
  const rb = map.rebalancing as Plan | null;
  for (const n of [...map.nodes, ...(rb?.next ?? []), ...(rb?.prev ?? [])]) {
    if (!byId.has(n.id)) byId.set(n.id, n);
  }
  return [...byId.values()];
}

/**
 * Nodes found at new URLs (same id): the map with those URLs, epoch + 1, or null when
 * no URL changed. Ring positions come from ids, so no key moves.
 */
export function withNodeUrls(map: ClusterMap, found: readonly NodeInfo[]): ClusterMap | null {
  const urls = new Map(found.map((n) => [n.id, n.url]));
  let changed = false;
  const update = (nodes: NodeInfo[]) =>
    nodes.map((n) => {
      const url = urls.get(n.id);
      if (url === undefined || url === n.url) return n;
      changed = true;
      return { ...n, url };
    });
  const nodes = update(map.nodes);
  const rb = map.rebalancing as Plan | null;
  const rebalancing = rb === null
    ? null
    : { ...rb, next: update(rb.next), ...(rb.prev ? { prev: update(rb.prev) } : {}) };
  return changed ? { ...map, epoch: map.epoch + 1, nodes, rebalancing } : null;
}

/** A node's entry in a new map: its id and, when it has one, its directory's incarnation. */
export function nodeInfo(
  health: { id: string; incarnation?: string },
  url: string,
  weight: number,
): NodeInfo {
  const { id, incarnation } = health;
  return incarnation === undefined ? { id, url, weight } : { id, url, weight, incarnation };
}

/**
 * Node `id` has caught up on data-directory `incarnation` (or the map had none for it):
 * the map recording it, epoch + 1, so the node votes again. Stable maps only.
 */
export function withIncarnation(map: ClusterMap, id: string, incarnation: string): ClusterMap {
  if (map.rebalancing !== null) throw new Error("withIncarnation() needs a stable map");
  if (!map.nodes.some((n) => n.id === id)) throw new Error(`withIncarnation(): no node ${id}`);
  const nodes = map.nodes.map((n) => n.id === id ? { ...n, incarnation } : n);
  return { ...map, epoch: map.epoch + 1, nodes };
}
