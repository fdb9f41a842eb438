/**
 * The barrier of a ring change (proxy/watch/ring_move.ts): a stream that moves to a map whose
 * ring changed holds its events back, reads every node of both maps up to the heads they have
 * then (a node that restarted or cannot be read counts as having lost changes), stops reading
 * the nodes that left, then lets the events out. A node on a newer map than the stream's
 * (409 `stale_epoch`) makes it load that map and carry the barrier there.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import type { Topology } from "../cluster/topology.ts";
import type { ChangePage } from "./change_feed.ts";
import { type NodeRef, StaleEpochError } from "../nodes/node_client.ts";
import { type MapPoint, ringMove } from "./ring_move.ts";
import { addJoined, dropLeft, mapPointOf, nodesOf, pointOf, retargetAll } from "./watch_epoch.ts";
import type { WatchMerge } from "./watch_merge.ts";
import {
  emit,
  headOf,
  lostNodes,
  PAGE,
  takeAll,
  tooManyLost,
  type WatchChange,
  type WatchItem,
  type WatchStreamDeps,
} from "./watch_apply.ts";

/** What `settle` returns, with the node's URL, when a node holds a newer map than the stream. */
export const STALE = "stale: ";

/**
 * Carries `merge` from map `from` to map `to`: the nodes it reads, and when the ring changed,
 * the keys' replicas (the merge pauses until the barrier it returns is read); or why it cannot.
 */
export async function moveTo(
  deps: WatchStreamDeps,
  from: Topology,
  to: Topology,
  merge: WatchMerge,
): Promise<Barrier | string | undefined> {
  const move = ringMove(mapPointOf(from), mapPointOf(to), to.map.replicas);
  if (move.kind === "refused") return move.reason;
  addJoined(to, merge);
  if (move.kind === "same") {
    dropLeft(to, merge);
    return undefined;
  }
  const before = { nodes: nodesOf(from), oldRing: from.ring.nodeIds, from: mapPointOf(from) };
  return await holdFor(deps, before, to, merge);
}

/** Pauses `merge`, counts its keys on `to`'s replicas; the barrier then reads `to`'s nodes too. */
async function holdFor(
  deps: WatchStreamDeps,
  barrier: Barrier,
  to: Topology,
  merge: WatchMerge,
): Promise<Barrier> {
  merge.pause();
  await retargetAll(deps.feed, to, merge);
  // Every node of both maps is read up to its head before any key counts anew.
  const joined = nodesOf(to).filter((n) => !barrier.nodes.some((r) => r.id === n.id));
  return { ...barrier, nodes: [...barrier.nodes, ...joined] };
}

/**
 * A barrier's node at `url` holds a newer map than `topo`: loads it and carries the barrier
 * there (counted from the map before the barrier); or why the stream cannot go on.
 */
export async function barrierOnNewer(
  deps: WatchStreamDeps,
  topo: Topology,
  barrier: Barrier,
  merge: WatchMerge,
  url: string,
): Promise<{ topo: Topology; barrier: Barrier } | string> {
  const to = await newerMap(deps, topo, [url]);
  if (to === undefined) {
    return `node ${url} holds a newer cluster map than epoch ${topo.map.epoch}, and it could not be loaded`;
  }
  const move = ringMove(barrier.from, mapPointOf(to), to.map.replicas);
  if (move.kind === "refused") return move.reason;
  addJoined(to, merge);
  return { topo: to, barrier: await holdFor(deps, barrier, to, merge) };
}

/** Loads the map of the first of `urls` that has one newer than `topo`'s; undefined if none. */
export async function newerMap(
  deps: WatchStreamDeps,
  topo: Topology,
  urls: readonly string[],
): Promise<Topology | undefined> {
  for (const url of urls) {
    await deps.topology.refreshFrom(url).catch((err) => {
      if (!(err instanceof RingkvError)) throw err;
    });
    const now = deps.topology.current();
    if (now.map.epoch > topo.map.epoch) return now;
  }
  return undefined;
}

/** The positions a ring change's barrier reads up to: every node of both maps. */
export interface Barrier {
  nodes: NodeRef[];
  /** The ring the majorities were counted on before (its unread nodes count as lost). */
  oldRing: readonly string[];
  /** The map the majorities were counted on before. */
  from: MapPoint;
}

/**
 * The barrier of a ring change (proxy/watch/ring_move.ts): reads the nodes of both maps up to
 * their heads with events held back, stops reading the nodes that left, then lets events out.
 */
export async function* settle(
  deps: WatchStreamDeps,
  topo: Topology,
  merge: WatchMerge,
  prefix: string,
  barrier: Barrier,
  signal: AbortSignal,
): AsyncGenerator<WatchItem, string | undefined> {
  const drained = yield* drain(deps, topo, merge, prefix, barrier, signal);
  if (drained !== undefined || signal.aborted) return drained;
  if (tooManyLost(topo, merge.lost.size)) {
    return lostNodes(merge.lost.size);
  }
  dropLeft(topo, merge);
  const changes: WatchChange[] = [];
  let end: string | undefined;
  for (const key of merge.resume()) {
    const before = pointOf(topo, merge);
    end = emit(topo, merge, key, before, merge.recount(key), changes);
    if (end !== undefined) break;
  }
  if (changes.length > 0) yield { kind: "changes", changes };
  return end;
}

/** Reads each barrier node up to the head it has now; an old one that cannot be read is lost. */
async function* drain(
  deps: WatchStreamDeps,
  topo: Topology,
  merge: WatchMerge,
  prefix: string,
  barrier: Barrier,
  signal: AbortSignal,
): AsyncGenerator<WatchItem, string | undefined> {
  try {
    const heads = await Promise.all(
      barrier.nodes.map((n) => headOf(deps, n, topo.map.epoch, prefix)),
    );
    for (const [i, n] of barrier.nodes.entries()) {
      const pos = merge.positions.get(n.id)!; // the barrier's nodes are dropped only after it
      const head = heads[i];
      // Down, or never reached by this watch: what it logged before the change is unread.
      const read = head !== undefined && pos.boot !== "" &&
        (yield* readTo(deps, topo, merge, prefix, n, head, signal));
      if (typeof read === "string") return read;
      if (read !== true && barrier.oldRing.includes(n.id)) merge.lost.add(n.id);
    }
  } catch (err) {
    // A node on a newer map is not down: the barrier goes on under that map.
    if (!(err instanceof StaleEpochError)) throw err;
    return STALE + err.node.url;
  }
  return undefined;
}

/**
 * Reads node `n` up to `head`: true once there (or once it restarted: counted lost), false
 * when it fails, or why the stream must end.
 */
async function* readTo(
  deps: WatchStreamDeps,
  topo: Topology,
  merge: WatchMerge,
  prefix: string,
  n: NodeRef,
  head: ChangePage,
  signal: AbortSignal,
): AsyncGenerator<WatchItem, string | boolean> {
  const at = merge.positions.get(n.id)!;
  // Restarted since last read: what it logged before is gone unread, which settle must count
  // before any held event goes out; its new log is read up to the head like any other.
  if (at.boot !== head.boot) merge.restarted(n.id, head.boot, head.first);
  for (let round = 0; round < 100_000 && !signal.aborted; round++) {
    const pos = merge.positions.get(n.id)!;
    // A restart while reading was counted by take.
    if (pos.boot !== head.boot || pos.read >= head.last) return true;
    const q = { boot: pos.boot, after: pos.read, prefix, waitMs: 0, limit: PAGE };
    const page = await deps.feed.page(n, topo.map.epoch, q).catch((err) => {
      if (!(err instanceof RingkvError) || err instanceof StaleEpochError) throw err;
      return undefined;
    });
    if (page === undefined) return false;
    const { changes, end } = await takeAll(
      deps,
      topo,
      merge,
      [{ id: n.id, page, after: q.after }],
      signal,
    );
    if (changes.length > 0) yield { kind: "changes", changes };
    if (end !== undefined) return end;
  }
  return false;
}
