/**
 * Keys and copies told apart. A node counts the copies it holds; with `replicas` R each key
 * has R copies, so the sum over nodes is copies, not keys. The distinct keys are estimated
 * from the copies of the nodes that answer divided by the share of the hash space those
 * nodes hold a replica of (exact when every key has all its copies), so a node that is down
 * does not read as lost keys. Pure: rings in, numbers out.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { Ring } from "../../shared/ring.ts";
 * import { estimateKeys } from "./key_counts.ts";
 * const ring = Ring.fromPoints([{ point: 10, nodeId: "a" }, { point: 20, nodeId: "b" }]);
 * // 3 keys on both nodes (2 replicas): 6 copies, 3 keys; with b down, still 3.
 * assertEquals(estimateKeys(ring, 2, new Map([["a", 3], ["b", 3]])), 3);
 * assertEquals(estimateKeys(ring, 2, new Map([["a", 3], ["b", null]])), 3);
 * ```
 */
import { diffRings, type Ring, RING_SIZE } from "../../shared/ring.ts";

const sharesCache = new WeakMap<Ring, Map<number, Map<string, number>>>();

/** Each node's fraction of the hash space it holds one of the `replicas` copies of. */
export function replicaShares(ring: Ring, replicas: number): Map<string, number> {
  const byReplicas = sharesCache.get(ring) ?? new Map<number, Map<string, number>>();
  sharesCache.set(ring, byReplicas);
  const cached = byReplicas.get(replicas);
  if (cached !== undefined) return cached;
  const held = new Map(ring.nodeIds.map((id) => [id, 0]));
  const points = ring.points();
  for (let i = 0; i < points.length; i++) {
    // The arc (previous point, this point] has this point's owners; the first wraps around.
    const point = points[i]!.point;
    const arc = i === 0 ? point + RING_SIZE - points.at(-1)!.point : point - points[i - 1]!.point;
    for (const id of ring.ownersOf(point, replicas)) held.set(id, held.get(id)! + arc);
  }
  for (const [id, arc] of held) held.set(id, arc / RING_SIZE);
  byReplicas.set(replicas, held);
  return held;
}

/** The copies of the nodes that answered (null: did not answer). */
export function countCopies(copies: ReadonlyMap<string, number | null>): number {
  let sum = 0;
  for (const n of copies.values()) sum += n ?? 0;
  return sum;
}

/** Distinct keys estimated from the copies of the nodes that answered; null if none did. */
export function estimateKeys(
  ring: Ring,
  replicas: number,
  copies: ReadonlyMap<string, number | null>,
): number | null {
  const shares = replicaShares(ring, replicas);
  let share = 0;
  for (const [id, n] of copies) if (n !== null) share += shares.get(id) ?? 0;
  return share === 0 ? null : Math.round(countCopies(copies) / share);
}

/**
 * Distinct keys from the copies summed over all `nodeCount` nodes of a ring that keeps
 * `replicas` copies of each key (fewer when there are fewer nodes).
 */
export function keysOfCopies(copies: number, replicas: number, nodeCount: number): number {
  return Math.round(copies / Math.max(1, Math.min(replicas, nodeCount)));
}

/**
 * The fraction of the keys that get a new copy in a rebalancing from `before` to `after`,
 * weighted by how many new owners each range gets (1 per key for one node added or removed).
 */
export function movingShare(before: Ring, after: Ring, replicas: number): number {
  let moving = 0;
  for (const move of diffRings(before, after, replicas)) {
    const newOwners = move.to.filter((id) => !move.from.includes(id)).length;
    moving += (move.end - move.start) * newOwners;
  }
  return moving / RING_SIZE;
}
