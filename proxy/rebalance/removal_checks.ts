/**
 * The checks of a removal before it starts: no node that would take over the ranges of a
 * drained node is down, and a removal for good keeps enough live replicas of every range.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { refuseUnsafeForce } from "./removal_checks.ts";
 * assert(typeof refuseUnsafeForce === "function");
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import type { ClusterMap } from "../../shared/wire.ts";
import { planCopies } from "./range_copy.ts";

/**
 * Refuses a drain whose ranges would go to a node that is down: the rebalancing would
 * wait on it, and while it runs the force removal of that node is refused too (issue 16).
 */
export async function refuseDownTakers(
  next: ClusterMap,
  id: string,
  up: Set<string>,
): Promise<void> {
  const { copies } = await planCopies(next);
  const down = [...new Set(copies.map((c) => c.to).filter((to) => !up.has(to)))].sort();
  if (down.length === 0) return;
  const [first] = down;
  const which = down.length === 1
    ? `node ${first}, which would take over some of its ranges, is down; bring it back, or remove it`
    : `nodes ${
      down.join(", ")
    }, which would take over some of its ranges, are down; bring them back, or remove them one at a time`;
  throw new RingkvError(
    "conflict",
    `Cannot remove node ${id}: ${which} for good first (DELETE /cluster/nodes/${first}?force=true)`,
  );
}

/**
 * Refuses a removal for good that would leave some range with fewer live old replicas
 * than a write quorum of its replica set, or that needs a new owner that is down.
 */
export async function refuseUnsafeForce(
  next: ClusterMap,
  id: string,
  up: Set<string>,
): Promise<void> {
  const { copies, syncs } = await planCopies(next);
  for (const c of [...copies, ...syncs.map((s) => ({ ...s, to: undefined }))]) {
    const live = c.from.filter((n) => up.has(n));
    if (live.length < c.need) {
      throw new RingkvError(
        "conflict",
        `Cannot remove node ${id} for good: some of its ranges would keep ${live.length} live replica${
          live.length === 1 ? "" : "s"
        } (${
          live.join(", ") || "none"
        }), and ${c.need} are needed to be sure no acknowledged write is lost; bring the other nodes back first`,
      );
    }
    if (c.to !== undefined && !up.has(c.to)) {
      throw new RingkvError(
        "conflict",
        `Cannot remove node ${id} for good: node ${c.to}, which would take over some of its ranges, is down too; bring it back first`,
      );
    }
  }
}
