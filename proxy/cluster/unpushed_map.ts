/**
 * A map accepted for the next epoch that no node routes by: its proposer (a proxy killed right
 * after the map was chosen) never pushed it. No poll of the nodes' maps shows it, yet the next
 * proposal, whatever it is, must finish it (Paxos), so it would start later by itself. The
 * proxy reads the members' votes (read only, nothing promised) and finishes such a map once
 * its proposer had time to push it ({@link UnpushedWatch}).
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { UnpushedWatch } from "./unpushed_map.ts";
 * let now = 1_700_000_000_000;
 * const watch = new UnpushedWatch(1000, () => now);
 * const ballot = "018bcfe56800-0000-p1"; // made at 1_700_000_000_000
 * assertEquals(watch.due(ballot), false);
 * now += 1000;
 * assertEquals(watch.due(ballot), true);
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import { parseVersion } from "../../shared/version.ts";
import type { AcceptedMap, ClusterMap } from "../../shared/wire.ts";
import type { NodeAdmin } from "../nodes/node_admin.ts";
import { sameCluster } from "./map_lineage.ts";
import { votersOf } from "./map_paxos.ts";

/**
 * How long an accepted map is left to its proposer, from its ballot (or from when this proxy
 * first saw it, if later: the proposer's clock may run ahead). A proposal's accepts take
 * milliseconds; finishing a map its proposer is still finishing costs a duel, never safety.
 */
export const UNPUSHED_GRACE_MS = 1000;

/**
 * The map accepted under the highest ballot for the epoch after `base`'s, among the members'
 * votes (those that answer; a node before the read-only route counts as having none).
 */
export async function acceptedNext(
  base: ClusterMap,
  admin: NodeAdmin,
): Promise<AcceptedMap | null> {
  const epoch = base.epoch + 1;
  const found = await Promise.all(
    votersOf(base, base).map(async (voter) => {
      const vote = await admin.acceptedMap(voter.url).catch((err) => {
        if (!(err instanceof RingkvError)) throw err;
        return null;
      });
      // Another node at a member's URL, or another cluster's map, is no vote of ours.
      const ours = vote !== null && (vote.id === undefined || vote.id === voter.id) &&
        vote.epoch === epoch && vote.accepted.map.epoch === epoch &&
        sameCluster(base, vote.accepted.map);
      return ours ? vote.accepted : null;
    }),
  );
  let best: AcceptedMap | null = null;
  for (const a of found) if (a !== null && (best === null || a.ballot > best.ballot)) best = a;
  return best;
}

/**
 * Tells when an accepted map's proposer has had its time to push it: the grace counts from the
 * ballot on the wall clock (the proposer's and this proxy's), or from when this proxy first saw
 * it on its monotonic clock, whichever is longer ago; a wall clock stepped back cannot make it
 * wait longer than the grace after first seen.
 */
export class UnpushedWatch {
  #seen: { ballot: string; at: number } | null = null;

  /** `now` (wall) and `monotonic` are injected so tests can drive the clocks. */
  constructor(
    private readonly graceMs = UNPUSHED_GRACE_MS,
    private readonly now: () => number = Date.now,
    private readonly monotonic: () => number = performance.now.bind(performance),
  ) {}

  /** Whether the map accepted under `ballot` (null: none) is due to be finished here. */
  due(ballot: string | null): boolean {
    if (ballot === null) {
      this.#seen = null;
      return false;
    }
    return this.waitFor(ballot) === 0;
  }

  /** How long, in ms, until the map accepted under `ballot` is due (at most the grace). */
  waitFor(ballot: string): number {
    const at = this.monotonic();
    if (this.#seen?.ballot !== ballot) this.#seen = { ballot, at };
    const age = Math.max(this.now() - parseVersion(ballot).wall, at - this.#seen.at);
    return Math.max(0, this.graceMs - age);
  }
}

/**
 * Says that `map` is a change this proxy found accepted in the nodes' votes, never pushed, and
 * finished; and how to cancel it when it is an add still copying.
 */
export function finishedNote(map: ClusterMap): string {
  const rb = map.rebalancing;
  const what = rb === null
    ? ""
    : `, node ${rb.nodeId} being ${rb.kind === "add" ? "added" : "removed"}`;
  const cancel = rb?.kind === "add" && rb.phase === "copying"
    ? `; to cancel it: kv remove ${rb.nodeId} (DELETE /cluster/nodes/${rb.nodeId})`
    : "";
  return `this proxy finished an earlier change chosen by another proxy, which the nodes did ` +
    `not hold yet (epoch ${map.epoch}${what}: the nodes had accepted it in their vote on the ` +
    `next map; its proxy stopped right after, or was still pushing it); GET /cluster ` +
    `shows it${cancel}`;
}
