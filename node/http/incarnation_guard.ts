/**
 * The refusal of a node that came back on another data directory than the sender's map
 * records (docs/replication.md "A replica that lost its disk"): its answers to replica
 * reads, votes, scans and digests would count missing data as a replica's.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import type { NodeContext } from "./node_context.ts";

/**
 * 503 `node_recovering` when the sender's map records another incarnation of this node's
 * data directory: the node came back without the data it voted with, so its vote could
 * forget an acknowledged write until a proxy has copied its ranges back.
 */
export function checkIncarnation(
  expected: string | undefined,
  ctx: NodeContext,
  what: string,
): void {
  const { id, incarnation } = ctx.engine;
  if (expected === undefined || expected === incarnation) return;
  throw new RingkvError(
    "node_recovering",
    `Cannot ${what} as a replica: node ${id} runs on data directory incarnation ${incarnation}, ` +
      `the cluster map records ${expected} (the node came back without its data); it votes ` +
      `again once a proxy has copied its ranges from the other replicas`,
    { node: id, incarnation, expected },
  );
}
