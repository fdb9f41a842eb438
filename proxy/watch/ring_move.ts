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
 *   be told from a change. More than one ring switch since the cursor (or since the map a
 *   stream last read under): a key may keep no replica of the majority that held its last
 *   event, even when the ring is the one it was (n4 added, then removed). Both are refused
 *   (`compacted`).
 * - How many ring switches happened is told by the epochs, not the rings: the ring switches
 *   only at a rebalancing's cleanup step, and every step of every map change bumps the epoch
 *   by one (proxy/cluster/map_transitions.ts), so two switches are at least 3 epochs apart
 *   (cleanup, stable, copying, cleanup). From a map at epoch a the next switch comes at a + 1
 *   (a is copying), a + 2 (stable) or a + 3 (cleanup) at the earliest; a map at epoch b
 *   switched last at b (cleanup), b - 1 (stable) or b - 2 (copying) at the latest. Two fit
 *   in between when the latest minus the earliest is 3 or more: then the move is refused.
 *   Steps that change no ring (a node's new URL or incarnation) only add epochs, so the
 *   count errs towards refusing. A cursor of an older proxy does not say its phase: taken as
 *   copying (the earliest next switch).
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ringMove } from "./ring_move.ts";
 * const from = { epoch: 1, phase: "stable" as const, ring: ["a", "b", "c"] };
 * const to = { epoch: 4, phase: "stable" as const, ring: ["a", "b", "c", "d"] };
 * assertEquals(ringMove(from, to, 3), { kind: "moved" });
 * ```
 */
import type { ClusterMap } from "../../shared/wire.ts";

/** What a change of the counting ring means for a watch. */
export type RingMove =
  | { kind: "same" }
  | { kind: "moved" }
  | { kind: "refused"; reason: string };

/** Where a map stands: no rebalancing, or a rebalancing's phase. */
export type MapPhase = "stable" | "copying" | "cleanup";

/** A cluster map as a watch counts on it. */
export interface MapPoint {
  epoch: number;
  /** Undefined: not known (a cursor of an older proxy). */
  phase?: MapPhase;
  /** The ids of the ring the majorities are counted on. */
  ring: readonly string[];
}

/** The phase of `map`. */
export function phaseOf(map: ClusterMap): MapPhase {
  return map.rebalancing === null ? "stable" : map.rebalancing.phase;
}

/** Epochs from a map of this phase to the next ring switch, at the least. */
const TO_NEXT_SWITCH: Record<MapPhase, number> = { copying: 1, stable: 2, cleanup: 3 };
/** Epochs back from a map of this phase to its last ring switch, at the least. */
const SINCE_LAST_SWITCH: Record<MapPhase, number> = { cleanup: 0, stable: 1, copying: 2 };
/** Epochs between two ring switches, at the least (cleanup, stable, copying, cleanup). */
const BETWEEN_SWITCHES = 3;

/** How a watch counting on map `from` goes on under map `to` with `replicas` copies. */
export function ringMove(from: MapPoint, to: MapPoint, replicas: number): RingMove {
  const earliest = from.epoch + TO_NEXT_SWITCH[from.phase ?? "copying"];
  const latest = to.epoch - SINCE_LAST_SWITCH[to.phase ?? "cleanup"];
  if (latest - earliest >= BETWEEN_SWITCHES) {
    return {
      kind: "refused",
      reason: `more than one rebalancing may have moved keys since (epoch ${from.epoch}, ${
        from.phase ?? "phase unknown"
      }; now epoch ${to.epoch}, ${to.phase ?? "phase unknown"})`,
    };
  }
  const joined = to.ring.filter((id) => !from.ring.includes(id));
  const left = from.ring.filter((id) => !to.ring.includes(id));
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
