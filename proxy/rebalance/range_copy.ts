/**
 * The data movement of a rebalancing: which ranges go from which node to which
 * ({@link planMoves}), streaming them from old owners to new ones by versioned ingest
 * ({@link copyMoves}), and the old owners' drops after the switch ({@link dropMoves}).
 * All of it is idempotent: ingest never overwrites a newer version, drops forget
 * ranges the node no longer owns.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { groupRanges } from "./range_copy.ts";
 * assert(groupRanges([{ start: 0, end: 5 }], 200).length === 1);
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import { diffRings, type Range, Ring } from "../../shared/ring.ts";
import type { ClusterMap, WireEntry } from "../../shared/wire.ts";
import type { NodeAdmin } from "../nodes/node_admin.ts";
import type { NodeRef } from "../nodes/node_client.ts";
import type { WireVote } from "../nodes/paxos_client.ts";
import { allNodes, type Plan, previousNodes } from "../cluster/map_transitions.ts";
import { toleratedOf } from "../replication/quorum.ts";
import { syncRanges } from "../replication/replica_sync.ts";

/** The copies and drops of one rebalancing, by node id. */
export interface MovePlan {
  /** One entry per (old owner, new owner) pair: the ranges to stream. */
  copies: { from: string; to: string; ranges: Range[] }[];
  /** The ranges each old owner no longer owns. */
  drops: Map<string, Range[]>;
  /** The ranges each new owner takes over (it held none of them). */
  takes: Map<string, Range[]>;
}

/** Works out the copies and drops between the map's previous and next rings. */
export async function planMoves(map: ClusterMap): Promise<MovePlan> {
  const rb = map.rebalancing;
  if (rb === null) return { copies: [], drops: new Map(), takes: new Map() };
  const vnodes = map.vnodes > 0 ? map.vnodes : undefined;
  const [from, to] = await Promise.all([
    Ring.build(previousNodes(map), vnodes),
    Ring.build(rb.next, vnodes),
  ]);
  const pairs = new Map<string, { from: string; to: string; ranges: Range[] }>();
  const drops = new Map<string, Range[]>();
  const takes = new Map<string, Range[]>();
  for (const move of diffRings(from, to, map.replicas)) {
    const range = { start: move.start, end: move.end };
    for (const dst of move.to) {
      if (!move.from.includes(dst)) takes.set(dst, [...(takes.get(dst) ?? []), range]);
    }
    for (const src of move.from) {
      for (const dst of move.to) {
        if (move.from.includes(dst)) continue;
        const key = `${src}>${dst}`;
        if (!pairs.has(key)) pairs.set(key, { from: src, to: dst, ranges: [] });
        pairs.get(key)!.ranges.push(range);
      }
      if (!move.to.includes(src)) drops.set(src, [...(drops.get(src) ?? []), range]);
    }
  }
  return { copies: [...pairs.values()], drops, takes };
}

/** Splits ranges into groups of at most `size` (keeps scan URLs short). */
export function groupRanges(ranges: readonly Range[], size: number): Range[][] {
  const groups: Range[][] = [];
  for (let i = 0; i < ranges.length; i += size) groups.push(ranges.slice(i, i + size));
  return groups;
}

/** What copying and dropping need. */
export interface MoveOptions {
  admin: NodeAdmin;
  /** The map's epoch, sent on every call so nodes refuse a superseded step. */
  epoch: number;
  chunkLines?: number;
  chunkBytes?: number;
  /** Called with the number of entries after each ingest call. */
  onCopied?: (entries: number) => void;
  /**
   * Called with the entries that are new copies: those from the first old replica read
   * for a range (the next ones re-send the same keys so none is missed) and repairs.
   */
  onPlaced?: (entries: number) => void;
  /** `/internal/accept`, for entries that may be unfinished proposals (replica_sync.ts). */
  accept?: (node: NodeRef, epoch: number, entries: WireEntry[]) => Promise<WireVote[]>;
  log?: (obj: Record<string, unknown>) => void;
}

function urlOf(map: ClusterMap, id: string): string {
  return refOf(map, id).url;
}

/** The node's id, URL and the incarnation the map records (replica reads send it). */
function refOf(map: ClusterMap, id: string): NodeRef {
  const node = allNodes(map).find((n) => n.id === id);
  if (node === undefined) throw new Error(`Cannot find node ${id} in the map`);
  const { url, incarnation } = node;
  return { id, url, ...(incarnation === undefined ? {} : { incarnation }) };
}

async function copyRanges(src: NodeRef, dst: string, ranges: Range[], o: MoveOptions) {
  const maxLines = o.chunkLines ?? 1000;
  const maxBytes = o.chunkBytes ?? 1024 * 1024;
  let lines: string[] = [];
  let bytes = 0;
  const flush = async () => {
    if (lines.length === 0) return;
    await o.admin.ingest(dst, lines, o.epoch);
    o.onCopied?.(lines.length);
    lines = [];
    bytes = 0;
  };
  // With the map's incarnation: an old replica back on a wiped directory refuses.
  for await (const line of o.admin.scan(src.url, ranges, o.epoch, src.incarnation)) {
    lines.push(line);
    bytes += line.length + 1;
    if (lines.length >= maxLines || bytes >= maxBytes) await flush();
  }
  await flush();
}

/** Copies of one rebalancing into one node from the same old replica set. */
interface CopyGroup {
  to: string;
  /** The old replicas that may serve the ranges (never a node removed with force). */
  from: string[];
  /** Old replicas that must be read: a majority of the old replica set. */
  need: number;
  ranges: Range[];
}

/**
 * The copies of a rebalancing, grouped by (new owner, old replicas), and, for a node
 * removed for good, the surviving old replicas of its ranges (they are synced together).
 */
export async function planCopies(
  map: ClusterMap,
): Promise<{ copies: CopyGroup[]; syncs: Omit<CopyGroup, "to">[] }> {
  const rb = map.rebalancing as Plan | null;
  if (rb === null) return { copies: [], syncs: [] };
  const vnodes = map.vnodes > 0 ? map.vnodes : undefined;
  const [before, after] = await Promise.all([
    Ring.build(previousNodes(map), vnodes),
    Ring.build(rb.next, vnodes),
  ]);
  const forced = rb.kind === "remove" && rb.force ? rb.nodeId : undefined;
  const copies = new Map<string, CopyGroup>();
  const syncs = new Map<string, Omit<CopyGroup, "to">>();
  for (const move of diffRings(before, after, map.replicas)) {
    const range = { start: move.start, end: move.end };
    const from = move.from.filter((id) => id !== forced).sort();
    // Every acknowledged write is on a quorum q of the n old replicas, so any n - q + 1 of them
    // hold it (as a rejoin reads): with 2 replicas one survivor is enough.
    const need = toleratedOf(move.from.length) + 1;
    for (const to of move.to) {
      if (move.from.includes(to)) continue;
      const key = `${to}<${from.join(",")}`;
      if (!copies.has(key)) copies.set(key, { to, from, need, ranges: [] });
      copies.get(key)!.ranges.push(range);
    }
    if (forced !== undefined && move.from.includes(forced)) {
      const key = from.join(",");
      if (!syncs.has(key)) syncs.set(key, { from, need, ranges: [] });
      syncs.get(key)!.ranges.push(range);
    }
  }
  return { copies: [...copies.values()], syncs: [...syncs.values()] };
}

/**
 * Streams every moving range into each new owner from n - q + 1 of its old replicas
 * (versioned ingest keeps the newest, so every acknowledged write gets there), skipping
 * old replicas that do not answer; for a node removed with force, also syncs the
 * surviving old replicas of its ranges with each other (proxy/replication/replica_sync.ts).
 */
export async function copyMoves(map: ClusterMap, options: MoveOptions): Promise<void> {
  const { copies, syncs } = await planCopies(map);
  const dead = new Set<string>();
  for (const copy of copies) {
    for (const ranges of groupRanges(copy.ranges, 200)) {
      let read = 0;
      for (const src of copy.from) {
        if (read >= copy.need) break;
        if (dead.has(src)) continue;
        const first = read === 0;
        const counted = {
          ...options,
          onCopied: (n: number) => {
            options.onCopied?.(n);
            if (first) options.onPlaced?.(n);
          },
        };
        try {
          await copyRanges(refOf(map, src), urlOf(map, copy.to), ranges, counted);
          read++;
        } catch (err) {
          if (!(err instanceof RingkvError) || err.code === "stale_epoch") throw err;
          if (String(err.extra.node) === urlOf(map, copy.to)) throw takerFailed(copy.to, err);
          dead.add(src);
          options.log?.({ msg: "old replica skipped", node: src, error: err.message });
        }
      }
      if (read < copy.need) throw tooFewReplicas(copy, read);
    }
    options.log?.({ msg: "ranges copied", from: copy.from, to: copy.to, epoch: options.epoch });
  }
  for (const sync of syncs) await syncSurvivors(map, sync, options);
}

async function syncSurvivors(map: ClusterMap, sync: Omit<CopyGroup, "to">, o: MoveOptions) {
  const nodes = sync.from.map((id) => refOf(map, id));
  for (const ranges of groupRanges(sync.ranges, 64)) {
    const result = await syncRanges(nodes, ranges, sync.need, { ...o, epoch: o.epoch });
    const read = nodes.length - result.unreachable.length;
    if (read < sync.need) throw tooFewReplicas({ ...sync, to: "each other" }, read);
    o.onCopied?.(result.repaired);
    o.onPlaced?.(result.repaired);
  }
}

/** A new owner that failed: the operator is told the way out, waiting may never end. */
function takerFailed(id: string, err: RingkvError): RingkvError {
  if (err.code !== "node_unavailable") return err;
  return new RingkvError(
    err.code,
    `Cannot copy ranges to node ${id}, which takes some of them over: ${err.message}; bring it ` +
      `back, or remove it for good with DELETE /cluster/nodes/${id}?force=true (the change then ` +
      `ends without it)`,
    err.extra,
  );
}

function tooFewReplicas(copy: CopyGroup, read: number): RingkvError {
  return new RingkvError(
    "node_unavailable",
    `Cannot copy ranges to ${copy.to}: ${read} of the old replicas (${
      copy.from.join(", ")
    }) answered, ${copy.need} are needed so that no acknowledged write is missed; bring the ` +
      `others back (removing one for good is refused while so few answer: its writes could be lost)`,
  );
}

/**
 * Drops moved ranges on their old owners. A node that is leaving the cluster is asked
 * too, but may be gone: its failure is logged, not fatal; so is a staying node that is
 * down when keys have replicas (it keeps copies of ranges it no longer serves).
 */
export async function dropMoves(map: ClusterMap, options: MoveOptions): Promise<void> {
  const plan = await planMoves(map);
  const staying = new Set(map.rebalancing?.next.map((n) => n.id) ?? []);
  for (const [id, ranges] of plan.drops) {
    // With its incarnation: another node started at that URL since refuses (review: a restart
    // that moved n3 onto n2's port had n3 drop what it had just taken over).
    const { url, incarnation } = refOf(map, id);
    try {
      const dropped = await options.admin.drop(url, ranges, options.epoch, incarnation);
      options.log?.({ msg: "ranges dropped", node: id, dropped, epoch: options.epoch });
    } catch (err) {
      // With replicas, a staying node that is down keeps stale copies it does not serve. One on
      // another data directory (a node started at its URL since, or it, wiped) holds none of
      // the ranges: nothing to drop, and waiting for it would hold the cleanup for good.
      const down = err instanceof RingkvError && err.code === "node_unavailable";
      const elsewhere = err instanceof RingkvError && err.code === "node_recovering";
      if (staying.has(id) && !elsewhere && !(down && map.replicas > 1)) throw err;
      const why = err instanceof Error ? err.message : String(err);
      // On a later map: another proxy ran this cleanup and moved on (a proxy that took over a
      // removal, or this one restarted; soak: two such warnings for a node that had emptied).
      const newer = err instanceof RingkvError && err.code === "stale_epoch";
      options.log?.(
        newer
          ? {
            level: "info",
            msg: "leaving node holds a later cluster map: another proxy finished this cleanup",
            node: id,
            epoch: options.epoch,
            detail: why,
          }
          : { msg: "leaving node did not drop its ranges", node: id, error: why },
      );
    }
  }
}

/**
 * Drops, on the nodes a cancelled drain was copying to, the ranges it copied: none of them
 * owns those in the ring the drain started from, which serves again. A node that does not
 * answer keeps them, as a down staying node keeps the ranges of a cleanup: versioned ingest
 * and tombstones kept forever make such stale copies harmless, they only take memory.
 */
export async function dropCopied(drain: ClusterMap, options: MoveOptions): Promise<void> {
  for (const [id, ranges] of (await planMoves(drain)).takes) {
    const { url, incarnation } = refOf(drain, id);
    try {
      const dropped = await options.admin.drop(url, ranges, options.epoch, incarnation);
      options.log?.({ msg: "copied ranges dropped", node: id, dropped, epoch: options.epoch });
    } catch (err) {
      if (!(err instanceof RingkvError)) throw err;
      options.log?.({ msg: "copied ranges not dropped", node: id, error: err.message });
    }
  }
}
