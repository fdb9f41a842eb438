/**
 * Whether a map a node holds is one of this cluster's. A proxy adopts a node's newer map, which
 * is how proxies converge; a node started on another cluster's data directory at one of this
 * cluster's URLs holds that cluster's map, often at a higher epoch, and adopting it would make
 * this proxy serve the other cluster (found by QA).
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { sameCluster } from "./map_lineage.ts";
 * const map = (epoch: number, url: string) => ({
 *   epoch, replicas: 1, vnodes: 8, rebalancing: null, nodes: [{ id: "n1", url, weight: 1 }],
 * });
 * assert(sameCluster(map(1, "http://a:1"), map(5, "http://a:1")));
 * assert(!sameCluster(map(1, "http://a:1"), map(5, "http://b:1")));
 * ```
 */
import type { ClusterMap, NodeInfo } from "../../shared/wire.ts";
import { allNodes } from "./map_transitions.ts";

/**
 * Whether `theirs` continues `ours`: it names every node of ours (id and URL; incarnations may
 * have been recorded since), or shares one node with ours ({@link sameNode}).
 */
export function sameCluster(ours: ClusterMap, theirs: ClusterMap): boolean {
  const mine = allNodes(ours);
  const other = allNodes(theirs);
  const at = (a: NodeInfo, b: NodeInfo) => a.id === b.id && a.url === b.url;
  if (mine.every((o) => other.some((n) => at(o, n)))) return true;
  return other.some((n) => mine.some((o) => sameNode(o, n)));
}

/**
 * Whether two maps' entries are one node: the same id and incarnation where both record one
 * (a node restarted on its directory at another URL is still itself), else the same id and URL.
 */
export function sameNode(a: NodeInfo, b: NodeInfo): boolean {
  if (a.id !== b.id) return false;
  if (a.incarnation !== undefined && b.incarnation !== undefined) {
    return a.incarnation === b.incarnation;
  }
  return a.url === b.url;
}

/** Why the map node `url` holds is not adopted, for `GET /cluster` and the log. */
export function foreignMapMessage(url: string, map: ClusterMap): string {
  const nodes = allNodes(map).map((n) => `${n.id} ${n.url}`).join(", ");
  return `Cannot use the cluster map of node ${url}: it is another cluster's (epoch ${map.epoch}: ${nodes}), not adopted; was the node started on another cluster's --data? Start it on its own data directory`;
}
