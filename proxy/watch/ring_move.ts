/**
 * Whether a watch can carry its state (positions, keys' last events) from the ring its
 * majorities were counted on to a later one (a node added or removed). Pure.
 *
 * Why a move of one node keeps the guarantee (docs/api.md "Watching changes"):
 * - A rebalancing changes each key's replica set by at most one node, so with n ≥ 2
 *   replicas every majority of the old set holds a replica of the new set. A version that
 *   went out was held by an old majority; so a key the watch forgets and meets again starts
 *   at or above it (a replica it keeps holds it), and the old versions that range copies
 *   and ingests log again on the new replica are at or below that: never sent twice (if
 *   that kept replica answers: docs/api.md says when it does not).
 * - Versions accepted before the switch are in the old replicas' logs before the heads a
 *   stream reads up to, with events held back, once it sees the switch (the switch is stored
 *   after the copy). A write acknowledged under the old map after its range was copied was
 *   also ingested, that exact version, into the new replica before its answer, so before that
 *   replica accepts anything under the new map (a node's epoch only grows). So a version x
 *   held by a new majority comes after every acknowledged older version in a log the stream
 *   read: the new replica's copy, or an old replica's accept (the old replicas of the new set
 *   are an old majority). Nothing acknowledged is lost; per key, versions go out in order.
 * - With one replica a moved key has no replica in common: a copy on the new owner cannot
 *   be told from a change. More than one node in or out since the cursor: a key may keep
 *   no replica of the majority that held its last event. Both are refused (`compacted`).
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ringMove } from "./ring_move.ts";
 * assertEquals(ringMove(["a", "b", "c"], ["a", "b", "c", "d"], 3), { kind: "moved" });
 * ```
 */

/** What a change of the counting ring means for a watch. */
export type RingMove =
  | { kind: "same" }
  | { kind: "moved" }
  | { kind: "refused"; reason: string };

/** How a watch counting on ring `from` goes on under ring `to` with `replicas` copies. */
export function ringMove(
  from: readonly string[],
  to: readonly string[],
  replicas: number,
): RingMove {
  const joined = to.filter((id) => !from.includes(id));
  const left = from.filter((id) => !to.includes(id));
  const changed = joined.length + left.length;
  if (changed === 0) return { kind: "same" };
  if (replicas < 2) {
    return {
      kind: "refused",
      reason:
        `the cluster map moved keys to other nodes (${describe(joined, left)}); with one replica` +
        " a moved key keeps no replica that logged its changes",
    };
  }
  if (changed > 1) {
    return {
      kind: "refused",
      reason: `the cluster map changed by more than one node since the cursor (${
        describe(joined, left)
      })`,
    };
  }
  return { kind: "moved" };
}

function describe(joined: readonly string[], left: readonly string[]): string {
  const parts = [];
  if (joined.length > 0) parts.push(`joined: ${joined.join(", ")}`);
  if (left.length > 0) parts.push(`left: ${left.join(", ")}`);
  return parts.join("; ");
}
