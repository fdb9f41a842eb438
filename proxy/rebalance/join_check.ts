/**
 * Whether a node may join: only an empty one that is no member of a cluster, like Redis
 * Cluster's "Node is not empty" and etcd's cluster-id check. A live node of another cluster
 * that shares the secret would otherwise bring that cluster's keys into this one (its
 * values, newer by the clock, replacing acknowledged ones) and take this cluster's map back
 * to the other cluster's proxies.
 *
 * @module
 * @example
 * ```ts
 * import { assertThrows } from "@std/assert";
 * import { refuseUnjoinable } from "./join_check.ts";
 * const url = "http://10.0.0.4:7001";
 * const ours = { epoch: 1, replicas: 1, vnodes: 8, nodes: [], rebalancing: null };
 * refuseUnjoinable(url, { id: "n4", keys: 0 }, null, ours); // a fresh node: fine
 * assertThrows(() => refuseUnjoinable(url, { id: "n4", keys: 3 }, null, ours));
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import type { ClusterMap } from "../../shared/wire.ts";
import { sameNode } from "../cluster/map_lineage.ts";
import type { NodeHealth } from "../nodes/node_admin.ts";
import { allNodes } from "../cluster/map_transitions.ts";

const EMPTY_DIR =
  "start it on a new, empty --data directory (or wipe its directory) and add it again";

/**
 * Throws 409 `conflict` when the node at `url` holds keys, a map that counts it as a member
 * (not leaving), or the map of another cluster; `nodeMap` is its stored map (null: none),
 * `ours` this cluster's. A node this cluster removed has dropped its keys and holds the map
 * of its own removal, so it may join again. True when the node is the joining node of an add
 * of this cluster that was cancelled while it was down: it holds only copies of this
 * cluster's keys, which the caller drops before the add.
 */
export function refuseUnjoinable(
  url: string,
  health: Pick<NodeHealth, "id" | "keys"> & Partial<Pick<NodeHealth, "tombstones">>,
  nodeMap: ClusterMap | null,
  ours: ClusterMap,
): boolean {
  if (nodeMap !== null && cancelledJoin(health.id, nodeMap, ours)) return true;
  const rb = nodeMap?.rebalancing;
  const leaving = rb?.kind === "remove" && rb.nodeId === health.id;
  const member = nodeMap !== null && !leaving &&
    allNodes(nodeMap).some((n) => n.id === health.id);
  if (member) {
    const ids = allNodes(nodeMap).map((n) => n.id).join(", ");
    // Ours, and no longer in it: removed with ?force=true while it did not answer, so it was
    // never drained (it holds its keys and still counts itself in): say so, not "a cluster".
    const whose = removedFromOurs(health.id, nodeMap, ours)
      ? "of this cluster from before it was removed while it did not answer (never drained)"
      : "of a cluster";
    throw new RingkvError(
      "conflict",
      `Cannot add node ${url}: it is a member ${whose} (its map: epoch ${nodeMap.epoch}, nodes ${ids}); ${EMPTY_DIR}`,
    );
  }
  if (nodeMap !== null && !ofThisCluster(nodeMap, ours, health.id)) {
    // Pushed our next map, it would answer with its newer one, which this proxy would adopt.
    const ids = allNodes(nodeMap).map((n) => n.id).join(", ");
    throw new RingkvError(
      "conflict",
      `Cannot add node ${url}: it was drained from another cluster (its map: epoch ${nodeMap.epoch}, nodes ${ids}; this cluster's: epoch ${ours.epoch}); ${EMPTY_DIR}`,
    );
  }
  const tombstones = health.tombstones ?? 0;
  if (health.keys > 0 || tombstones > 0) {
    // A deletion counts: newer than this cluster's value of its key, the add's copy keeps it.
    const held = tombstones === 0
      ? `${health.keys} key(s)`
      : `${health.keys} key(s) and ${tombstones} deleted key(s)`;
    throw new RingkvError(
      "conflict",
      `Cannot add node ${url}: it holds ${held}, which would mix into this cluster; ${EMPTY_DIR}`,
    );
  }
  return false;
}

/**
 * Whether node `id` holds only leftovers of ours: `nodeMap` is an earlier map of ours in which
 * it was being added, and it no longer is; or a map of ours that does not count it at all (a
 * cancel's map, pushed to it before a proxy that died could drop its keys: review).
 */
function cancelledJoin(id: string, nodeMap: ClusterMap, ours: ClusterMap): boolean {
  if (!removedFromOurs(id, nodeMap, ours)) return false;
  const rb = nodeMap.rebalancing;
  const wasJoining = rb?.kind === "add" && rb.nodeId === id && nodeMap.epoch < ours.epoch;
  return wasJoining || !allNodes(nodeMap).some((n) => n.id === id);
}

/** Whether node `id`'s map `nodeMap` is one of this cluster's, and `ours` no longer counts it. */
function removedFromOurs(id: string, nodeMap: ClusterMap, ours: ClusterMap): boolean {
  return !allNodes(ours).some((n) => n.id === id) && ofThisCluster(nodeMap, ours, id);
}

/**
 * Whether a drained node's map is one of this cluster's: no newer than ours, and naming one
 * of our nodes besides the node ({@link sameNode}: by incarnation where both record one, so
 * peers restarted at other URLs still count). A false "no" costs a wipe of the drained node;
 * a false "yes" would mix two clusters.
 */
function ofThisCluster(nodeMap: ClusterMap, ours: ClusterMap, id: string): boolean {
  if (nodeMap.epoch > ours.epoch) return false;
  const mine = allNodes(ours);
  return allNodes(nodeMap).some((n) => n.id !== id && mine.some((o) => sameNode(n, o)));
}
