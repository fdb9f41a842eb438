/**
 * A watch across a change of the cluster map: the nodes it reads follow the map (a node that
 * joined is read from the start of its log; one that left, once the barrier read it), and when
 * the ring changes each tracked key is counted on its new replicas. Why that loses nothing and
 * repeats nothing: proxy/watch/ring_move.ts.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import { hashKey } from "../../shared/ring.ts";
import type { Topology } from "../cluster/topology.ts";
import { type NodeRef, StaleEpochError } from "../nodes/node_client.ts";
import type { ChangeFeed } from "./change_feed.ts";
import type { WatchCursor } from "./watch_cursor.ts";
import { type MapPoint, phaseOf } from "./ring_move.ts";
import { basePosition, type Bases, type WatchMerge } from "./watch_merge.ts";

/** The nodes a watch reads under `topo`: the ring's and, while keys move, the next ring's. */
export function nodesOf(topo: Topology): NodeRef[] {
  const ids = new Set([...topo.ring.nodeIds, ...(topo.nextRing?.nodeIds ?? [])]);
  return [...ids].map((id) => ({ id, url: topo.nodeUrl(id) ?? "" }));
}

/**
 * The cursor of the merge's state now (`live`: valid only until the merge next changes, see
 * {@link WatchMerge.resumePoint}).
 */
export function pointOf(topo: Topology, merge: WatchMerge, live = false): WatchCursor {
  const { epoch, phase, ring } = mapPointOf(topo);
  // The ring is shared, not copied: a topology's ring never changes (a new one is built).
  return { epoch, phase, ring, ...merge.resumePoint(live) };
}

/** The map `topo` as a watch counts on it (proxy/watch/ring_move.ts). */
export function mapPointOf(topo: Topology): MapPoint {
  return { epoch: topo.map.epoch, phase: phaseOf(topo.map), ring: topo.ring.nodeIds };
}

/** A position for a node this watch has not reached: its whole log is read when it answers. */
export const UNREACHED = { boot: "", low: 0, read: 0 } as const;

/**
 * Asks each node in `byNode` which version its keys had at the merge's position there (no entry
 * for a node that did not answer; `onStale` hears of one on a newer map than `topo`).
 */
export async function fetchBases(
  feed: Pick<ChangeFeed, "versionsAt">,
  topo: Topology,
  merge: WatchMerge,
  byNode: Map<string, string[]>,
  onStale?: (err: StaleEpochError) => void,
): Promise<Bases> {
  const bases: Bases = new Map();
  await Promise.all([...byNode].map(async ([id, keys]) => {
    const pos = merge.positions.get(id);
    const url = topo.nodeUrl(id);
    if (pos === undefined || url === undefined || pos.boot === "") return;
    const got = await feed.versionsAt(
      { id, url },
      topo.map.epoch,
      pos.boot,
      basePosition(pos),
      keys,
    )
      .catch((err) => {
        if (!(err instanceof RingkvError)) throw err;
        if (err instanceof StaleEpochError) onStale?.(err);
        return undefined;
      });
    bases.set(id, got);
  }));
  return bases;
}

/** Starts reading the nodes that joined `to` (from the start of their logs). */
export function addJoined(to: Topology, merge: WatchMerge): void {
  for (const n of nodesOf(to)) merge.addNode(n.id, { ...UNREACHED });
}

/** Stops reading the nodes that are not in `to`. */
export function dropLeft(to: Topology, merge: WatchMerge): void {
  const ids = new Set(nodesOf(to).map((n) => n.id));
  for (const id of [...merge.positions.keys()]) if (!ids.has(id)) merge.dropNode(id);
}

/**
 * Counts every tracked key on its replicas in `to`; a replica new to a key holds what its log
 * said at the merge's position. Call while the merge is paused: the events come at its resume.
 */
export async function retargetAll(
  feed: Pick<ChangeFeed, "versionsAt">,
  to: Topology,
  merge: WatchMerge,
): Promise<void> {
  if (!merge.paused) throw new Error("Cannot retarget the watch's keys: its merge is not paused");
  const tracked = merge.trackedReplicas();
  const owners = await Promise.all(
    tracked.map(async ([k]) => to.ring.ownersOf(await hashKey(k), to.map.replicas)),
  );
  const byNode = new Map<string, string[]>();
  tracked.forEach(([k, was], i) => {
    for (const id of owners[i]!) {
      if (!was.includes(id)) byNode.set(id, [...(byNode.get(id) ?? []), k]);
    }
  });
  const bases = await fetchBases(feed, to, merge, byNode);
  tracked.forEach(([k], i) => merge.retarget(k, owners[i]!, bases));
}
