/**
 * The contract between the proxy's data path (public routes, routing, batching) and
 * its cluster management (cluster map, rebalancer, admin routes).
 *
 * @module
 */
import type { Ring } from "../../shared/ring.ts";
import type { ClusterMap } from "../../shared/wire.ts";

/**
 * An immutable view of the cluster the data path routes by. A new one is built and
 * swapped in whole whenever the map changes; a request keeps the one it started with.
 *
 * Routing rules (n = map.replicas, 1 until replication lands):
 * - reads go to `ring.ownersOf(point, n)`;
 * - writes are decided (version, conditions) by the owners in `ring`; while
 *   `nextRing` is set (phase "copying"), each acknowledged write is also ingested,
 *   with the version the owner gave it, into the owners in `nextRing` that are not
 *   owners in `ring`, before the client gets its answer.
 * - every internal call carries `x-ringkv-epoch: map.epoch`.
 */
export interface Topology {
  readonly map: ClusterMap;
  readonly ring: Ring;
  readonly nextRing: Ring | null;
  /** The URL of a node in this map (current or next ring), or undefined. */
  nodeUrl(id: string): string | undefined;
  /** The incarnation the map records for a node (undefined: none recorded). */
  incarnationOf?(id: string): string | undefined;
}

/** Where the data path gets the current topology. */
export interface TopologySource {
  /** The topology to route a request that starts now. */
  current(): Topology;
  /**
   * A node said our epoch is stale: fetch the newer map (from `nodeUrl`'s
   * `GET /internal/cluster`), adopt it and resolve; the caller then retries.
   */
  refreshFrom(nodeUrl: string): Promise<void>;
}
