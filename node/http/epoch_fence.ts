/**
 * The epoch check a node runs again right before a request changes anything. Admission
 * (node_frame.ts) checks the epoch a proxy routes by when the request arrives; a write may then
 * wait (its body, a compaction, room for a snapshot) while a newer map is pushed and a range
 * copy scans past it. Run in the same turn as the write applies, the fence refuses it (409
 * `stale_epoch`, nothing applied), so every write the node applies under an older map is in
 * its store before it answers the newer map's push (docs/internal-api.md).
 *
 * @module
 */
import type { Fence } from "../engine/engine.ts";
import { EPOCH_HEADER } from "../../shared/wire.ts";
import type { NodeContext } from "./node_context.ts";

/**
 * The {@link Fence} of a request that carries an epoch (admission read the header and loaded
 * the map), else undefined (no epoch, no check: curl by hand).
 */
export function epochFence(ctx: NodeContext, req: Request): Fence | undefined {
  const sent = req.headers.get(EPOCH_HEADER);
  if (sent === null) return undefined;
  const epoch = Number(sent);
  return () => ctx.cluster.fence(epoch);
}
