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
 * import { groupRanges } from "./range_copy.ts";
 * console.assert(groupRanges([{ start: 0, end: 5 }], 200).length === 1);
 * ```
 */
import { diffRings, type Range, Ring } from "../shared/ring.ts";
import type { ClusterMap } from "../shared/wire.ts";
import type { NodeAdmin } from "./node_admin.ts";
import { allNodes, previousNodes } from "./map_transitions.ts";

/** The copies and drops of one rebalancing, by node id. */
export interface MovePlan {
  /** One entry per (old owner, new owner) pair: the ranges to stream. */
  copies: { from: string; to: string; ranges: Range[] }[];
  /** The ranges each old owner no longer owns. */
  drops: Map<string, Range[]>;
}

/** Works out the copies and drops between the map's previous and next rings. */
export async function planMoves(map: ClusterMap): Promise<MovePlan> {
  const rb = map.rebalancing;
  if (rb === null) return { copies: [], drops: new Map() };
  const vnodes = map.vnodes > 0 ? map.vnodes : undefined;
  const [from, to] = await Promise.all([
    Ring.build(previousNodes(map), vnodes),
    Ring.build(rb.next, vnodes),
  ]);
  const pairs = new Map<string, { from: string; to: string; ranges: Range[] }>();
  const drops = new Map<string, Range[]>();
  for (const move of diffRings(from, to, map.replicas)) {
    const range = { start: move.start, end: move.end };
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
  return { copies: [...pairs.values()], drops };
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
  log?: (obj: Record<string, unknown>) => void;
}

function urlOf(map: ClusterMap, id: string): string {
  const node = allNodes(map).find((n) => n.id === id);
  if (node === undefined) throw new Error(`Cannot find node ${id} in the map`);
  return node.url;
}

async function copyRanges(src: string, dst: string, ranges: Range[], o: MoveOptions) {
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
  for await (const line of o.admin.scan(src, ranges, o.epoch)) {
    lines.push(line);
    bytes += line.length + 1;
    if (lines.length >= maxLines || bytes >= maxBytes) await flush();
  }
  await flush();
}

/** Streams every moving range from each old owner to each new one. */
export async function copyMoves(map: ClusterMap, options: MoveOptions): Promise<void> {
  const plan = await planMoves(map);
  for (const copy of plan.copies) {
    const [src, dst] = [urlOf(map, copy.from), urlOf(map, copy.to)];
    for (const ranges of groupRanges(copy.ranges, 200)) {
      await copyRanges(src, dst, ranges, options);
    }
    options.log?.({ msg: "ranges copied", from: copy.from, to: copy.to, epoch: options.epoch });
  }
}

/**
 * Drops moved ranges on their old owners. A node that is leaving the cluster is asked
 * too, but may be gone: its failure is logged, not fatal.
 */
export async function dropMoves(map: ClusterMap, options: MoveOptions): Promise<void> {
  const plan = await planMoves(map);
  const staying = new Set(map.rebalancing?.next.map((n) => n.id) ?? []);
  for (const [id, ranges] of plan.drops) {
    try {
      const dropped = await options.admin.drop(urlOf(map, id), ranges, options.epoch);
      options.log?.({ msg: "ranges dropped", node: id, dropped, epoch: options.epoch });
    } catch (err) {
      if (staying.has(id)) throw err;
      const why = err instanceof Error ? err.message : String(err);
      options.log?.({ msg: "leaving node did not drop its ranges", node: id, error: why });
    }
  }
}
