/**
 * The removal for good of a dead node while a rebalancing runs (`DELETE
 * /cluster/nodes/{id}?force=true` mid-change): what to do with the running change so that
 * it never waits on a node that is gone. Pure but for the ring builds of the checks.
 *
 * - The node being drained: its drain becomes its removal for good (one map, same rings,
 *   `force`), which reads its ranges from the surviving replicas; past the switch the drain
 *   already goes on without it.
 * - Any other member: the running change ends first (cancelled while it copies, the old ring
 *   having decided every write; finished in cleanup, the next ring serving already), then the
 *   node is removed for good from the stable ring, with every check of a removal for good.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { initialMap, planRemove } from "../cluster/map_transitions.ts";
 * import { planMidChangeRemoval } from "./mid_change_removal.ts";
 * const ids = ["n1", "n2", "n3", "n4"];
 * const nodes = ids.map((id) => ({ id, url: `http://${id}.test`, weight: 1 }));
 * const draining = planRemove(initialMap(nodes, 3, 8), "n4", 0, 0);
 * // The node being drained still answers: its drain goes on as it is.
 * assertEquals(await planMidChangeRemoval(draining, "n4", new Set(ids), false), {
 *   kind: "unchanged",
 * });
 * // Dead: the drain becomes its removal for good (copied from the surviving replicas).
 * const step = await planMidChangeRemoval(draining, "n4", new Set(["n1", "n2", "n3"]), true);
 * assertEquals(step.kind, "force");
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import type { ClusterMap } from "../../shared/wire.ts";
import {
  cancelAdd,
  cancelRemove,
  type Plan,
  planRemove,
  toForcedRemoval,
  toStable,
} from "../cluster/map_transitions.ts";
import { refuseUnsafeForce } from "./removal_checks.ts";

/** What the force removal of a node does to the running change. */
export type MidChangeStep =
  /** Nothing to change: the running change already goes on without the node. */
  | { kind: "unchanged" }
  /** The drain of the node becomes its removal for good: propose `next`. */
  | { kind: "force"; next: ClusterMap }
  /**
   * End the running change with `end` (`cancel`: back to the ring it started from, while it
   * copies; `finish`: the stable next ring, in cleanup), then remove the node for good.
   */
  | { kind: "end-first"; how: "cancel" | "finish"; end: ClusterMap };

/**
 * What `DELETE /cluster/nodes/{id}?force=true` does while `map`'s rebalancing runs. `up`:
 * members that answer; `dead`: whether node `id` is gone (does not answer, or is back on a new
 * data directory). 409 when the node answers (the change goes on; remove it after) or when its
 * removal for good would be refused anyway (then the running change is left alone).
 */
export async function planMidChangeRemoval(
  map: ClusterMap,
  id: string,
  up: Set<string>,
  dead: boolean,
): Promise<MidChangeStep> {
  const rb = map.rebalancing as Plan | null;
  if (rb === null) throw new Error("planMidChangeRemoval() needs a rebalancing");
  if (rb.kind === "remove" && rb.nodeId === id) {
    // A live node is drained even when forced: reading from it is the safer copy.
    if (!dead || rb.force || rb.phase !== "copying") return { kind: "unchanged" };
    const next = toForcedRemoval(map);
    await refuseUnsafeForce(next, id, up);
    return { kind: "force", next };
  }
  if (!dead) {
    throw new RingkvError(
      "conflict",
      `Cannot remove node ${id}: node ${rb.nodeId} is being ${
        rb.kind === "add" ? "added" : "removed"
      } (phase ${rb.phase}), and node ${id} answers, so the change goes on; wait until ` +
        `GET /cluster shows no rebalancing, then remove it`,
    );
  }
  const how = rb.phase === "copying" ? "cancel" : "finish";
  const end = how === "finish"
    ? toStable(map)
    : rb.kind === "add"
    ? cancelAdd(map)
    : cancelRemove(map);
  // Checked before the change is ended, so that a removal refused leaves it running.
  const removal = planRemove(end, id, 0, 0, true, true);
  await refuseUnsafeForce(removal, id, up);
  return { kind: "end-first", how, end };
}
