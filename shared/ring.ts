/**
 * The consistent-hashing ring: every node owns many points (virtual nodes) on a 32-bit
 * circle, and a key at point `p` belongs to the first point at or after `p`, wrapping.
 * Pure: hashing is Web Crypto SHA-1 and everything else is synchronous arithmetic.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { diffRings, hashKey, inRanges, Ring } from "./ring.ts";
 *
 * const ring = await Ring.build([{ id: "n1", weight: 1 }, { id: "n2", weight: 1 }]);
 * const [owner] = ring.ownersOf(await hashKey("users/42"), 1);
 * assertEquals(ring.nodeIds.includes(owner!), true);
 *
 * // Hand-picked points: a key at p belongs to the first point at or after p.
 * const small = Ring.fromPoints([{ point: 100, nodeId: "a" }, { point: 200, nodeId: "b" }]);
 * assertEquals(small.ownersOf(150, 2), ["b", "a"]);
 * assertEquals(small.ownersOf(201, 1), ["a"]); // wraps past the last point
 * const bigger = Ring.fromPoints([...small.points(), { point: 150, nodeId: "c" }]);
 * const moves = diffRings(small, bigger, 1);
 * assertEquals(moves, [{ start: 101, end: 151, from: ["b"], to: ["c"] }]);
 * assertEquals([inRanges(101, moves), inRanges(151, moves)], [true, false]);
 * ```
 */
import { RingkvError } from "./errors.ts";

/** A position on the ring: an unsigned 32-bit integer (first 4 bytes of SHA-1, big-endian). */
export type Point = number;

/** A half-open, non-wrapping range of points `[start, end)`, 0 <= start < end <= 2**32. */
export interface Range {
  start: number;
  end: number;
}

/** A range whose replica set changes between two rings. */
export interface RangeMove extends Range {
  from: string[];
  to: string[];
}

/** A node's id and weight, all the ring needs to place it. */
export interface RingMember {
  id: string;
  weight: number;
}

/**
 * Default virtual nodes per unit of weight.
 *
 * A node's share is the sum of `vnodes` arcs, so its relative std dev is about
 * 1/sqrt(vnodes); keeping the worst of ~1,500 nodes (3..16-node rings with ids n1..nN and
 * ten seeded sets of 8-hex-char ids) within ±10% of fair needs ~3.3 sigma <= 10%, i.e.
 * vnodes >= ~1100. Measured worst deviation: 10.8% at 800, 10.3% at 1000, 9.9% at 1024,
 * 9.0% at 1100, 8.9% at 1200, 8.7% at 1500, 6.3% at 2000. 1200 (3.5 sigma) leaves a little
 * margin for id sets not measured; building 16 nodes (19,200 digests) takes ~100 ms.
 */
export const DEFAULT_VNODES = 1200;

/** The size of the hash space: points are integers in [0, RING_SIZE). */
export const RING_SIZE = 2 ** 32;

const encoder = new TextEncoder();

/** SHA-1 (Web Crypto) of the key's UTF-8, first 32 bits. */
export async function hashKey(key: string): Promise<Point> {
  const digest = await crypto.subtle.digest("SHA-1", encoder.encode(key));
  return new DataView(digest).getUint32(0);
}

/**
 * Digests in flight at once in {@link hashKeys}. Measured on Deno 2.9: 24,000 digests take
 * ~350 ms all at once but ~130 ms in waves of 128-1024 (fewer pending ops to track).
 */
const HASH_WAVE = 256;

/** Hashes many keys concurrently (much cheaper per key than one at a time). */
export async function hashKeys(keys: readonly string[]): Promise<Point[]> {
  if (keys.length <= HASH_WAVE) return Promise.all(keys.map(hashKey));
  const points: Point[] = [];
  for (let i = 0; i < keys.length; i += HASH_WAVE) {
    points.push(...await Promise.all(keys.slice(i, i + HASH_WAVE).map(hashKey)));
  }
  return points;
}

/**
 * Points of virtual-node labels (`n1#0`) hashed before: each map change, each `GET /cluster`
 * during a rebalancing and the rebalancer build rings of mostly the same members, and a 4-node
 * ring is 4,800 digests, each an op whose wait a loaded host stretches (7.5-11.6 s for two
 * rings, 0.3 s of it CPU: the first `GET /cluster` of a restarted proxy ran past kv's 10 s).
 */
const knownLabels = new Map<string, Point>();

/** Most labels {@link knownLabels} keeps (~100 nodes of weight 1 at the default vnodes). */
const KNOWN_LABELS_CAP = 120_000;

/** The points of `labels`, hashing only those not seen before. */
async function labelPoints(labels: readonly string[]): Promise<Point[]> {
  const points = labels.map((label) => knownLabels.get(label));
  const missing = labels.filter((_, i) => points[i] === undefined);
  if (missing.length === 0) return points as Point[];
  const hashed = await hashKeys(missing);
  // Filled from this call's own results: another build may have cleared the memo meanwhile.
  if (knownLabels.size + missing.length > KNOWN_LABELS_CAP) knownLabels.clear();
  let next = 0;
  for (let i = 0; i < points.length; i++) {
    if (points[i] !== undefined) continue;
    const point = hashed[next++]!;
    points[i] = point;
    knownLabels.set(labels[i]!, point);
  }
  return points as Point[];
}

/** An immutable consistent-hashing ring. */
export class Ring {
  /** Distinct node ids on the ring, sorted. */
  readonly nodeIds: readonly string[];
  /** Sorted points; `#owners[i]` is the index in `nodeIds` of the node at `#points[i]`. */
  readonly #points: Uint32Array;
  readonly #owners: Uint32Array;

  private constructor(entries: readonly { point: Point; nodeId: string }[]) {
    const ids = [...new Set(entries.map((e) => e.nodeId))].sort();
    const index = new Map(ids.map((id, i) => [id, i]));
    // Ties on a point go to the smaller node id, so every process builds the same ring.
    const sorted = [...entries].sort((a, b) =>
      a.point - b.point || (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0)
    );
    this.nodeIds = ids;
    this.#points = Uint32Array.from(sorted, (e) => e.point);
    this.#owners = Uint32Array.from(sorted, (e) => index.get(e.nodeId)!);
  }

  /** Builds from explicit points (tests pass hand-picked integers). */
  static fromPoints(points: readonly { point: Point; nodeId: string }[]): Ring {
    for (const { point, nodeId } of points) {
      if (!Number.isInteger(point) || point < 0 || point >= RING_SIZE) {
        throw new RingkvError(
          "bad_request",
          `Cannot place node ${nodeId} at ${point}: points are integers in [0, 2**32)`,
        );
      }
    }
    return new Ring(points);
  }

  /** Places `round(weight * vnodes)` points (at least one) per member at hashKey(`${id}#${i}`). */
  static async build(members: readonly RingMember[], vnodes = DEFAULT_VNODES): Promise<Ring> {
    if (!Number.isInteger(vnodes) || vnodes < 1) {
      throw new RingkvError("bad_request", `Cannot build ring: vnodes is ${vnodes}, not >= 1`);
    }
    const seen = new Set<string>();
    const labels: string[] = [];
    const owners: string[] = [];
    for (const { id, weight } of members) {
      checkMember(id, weight, seen);
      const count = Math.max(1, Math.round(weight * vnodes));
      for (let i = 0; i < count; i++) {
        labels.push(`${id}#${i}`);
        owners.push(id);
      }
    }
    const points = await labelPoints(labels);
    return new Ring(points.map((point, i) => ({ point, nodeId: owners[i]! })));
  }

  /** The first `n` distinct nodes clockwise from `point` (fewer if the ring has fewer). */
  ownersOf(point: Point, n: number): string[] {
    const want = Math.min(n, this.nodeIds.length);
    const owners: string[] = [];
    if (want <= 0) return owners;
    const size = this.#points.length;
    let i = this.#firstAtOrAfter(point);
    for (let steps = 0; steps < size && owners.length < want; steps++, i++) {
      const id = this.nodeIds[this.#owners[i % size]!]!;
      if (!owners.includes(id)) owners.push(id);
    }
    return owners;
  }

  /** Each node's fraction of the hash space (sums to 1). */
  shares(): Map<string, number> {
    const owned = new Map(this.nodeIds.map((id) => [id, 0]));
    const size = this.#points.length;
    for (let i = 0; i < size; i++) {
      // The point at i owns (previous point, this point]; the first one also owns the wrap.
      const arc = i === 0
        ? this.#points[0]! + RING_SIZE - this.#points[size - 1]!
        : this.#points[i]! - this.#points[i - 1]!;
      const id = this.nodeIds[this.#owners[i]!]!;
      owned.set(id, owned.get(id)! + arc);
    }
    for (const [id, arc] of owned) owned.set(id, arc / RING_SIZE);
    return owned;
  }

  /** Every point with its node, in ring order. */
  points(): { point: Point; nodeId: string }[] {
    return Array.from(this.#points, (point, i) => ({
      point,
      nodeId: this.nodeIds[this.#owners[i]!]!,
    }));
  }

  /** Index of the first point >= `point`, or 0 past the last one (the wrap). */
  #firstAtOrAfter(point: Point): number {
    let lo = 0;
    let hi = this.#points.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (this.#points[mid]! < point) lo = mid + 1;
      else hi = mid;
    }
    return lo === this.#points.length ? 0 : lo;
  }
}

function checkMember(id: string, weight: number, seen: Set<string>): void {
  if (!Number.isFinite(weight) || weight <= 0) {
    throw new RingkvError(
      "bad_request",
      `Cannot place node ${id} on the ring: its weight is ${weight}, not a finite number > 0`,
    );
  }
  if (seen.has(id)) {
    throw new RingkvError("bad_request", `Cannot place node ${id} twice: its id is repeated`);
  }
  seen.add(id);
}

/**
 * Ranges whose first `n` owners differ between `from` and `to`, merged, in order.
 * Owners compare as ordered lists (primary first). Between two consecutive boundaries
 * (any point of either ring, plus one) both rings' owners are constant, so one lookup
 * per boundary covers the whole space.
 */
export function diffRings(from: Ring, to: Ring, n: number): RangeMove[] {
  const starts = segmentStarts(from, to);
  const moves: RangeMove[] = [];
  for (let i = 0; i < starts.length; i++) {
    const start = starts[i]!;
    const end = starts[i + 1] ?? RING_SIZE;
    const before = from.ownersOf(start, n);
    const after = to.ownersOf(start, n);
    if (sameList(before, after)) continue;
    const last = moves.at(-1);
    if (last && last.end === start && sameList(last.from, before) && sameList(last.to, after)) {
      last.end = end;
    } else {
      moves.push({ start, end, from: before, to: after });
    }
  }
  return moves;
}

/** 0 and every point + 1 of either ring (a point owns up to and including itself), sorted. */
function segmentStarts(a: Ring, b: Ring): number[] {
  const starts = [0];
  for (const { point } of a.points()) starts.push(point + 1);
  for (const { point } of b.points()) starts.push(point + 1);
  starts.sort((x, y) => x - y);
  return starts.filter((s, i) => s < RING_SIZE && (i === 0 || s !== starts[i - 1]));
}

function sameList(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/** Whether `point` lies in one of `ranges` (sorted, non-overlapping). */
export function inRanges(point: Point, ranges: readonly Range[]): boolean {
  return rangeAt(ranges, point) !== undefined;
}

/** The range of `sorted` (by start, not overlapping) that holds `point`, if any. */
export function rangeAt<R extends Range>(sorted: readonly R[], point: Point): R | undefined {
  let lo = 0;
  let hi = sorted.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (sorted[mid]!.end <= point) lo = mid + 1;
    else hi = mid;
  }
  // The first range ending after `point`: it holds it when it starts at or before it.
  const range = sorted[lo];
  return range !== undefined && range.start <= point ? range : undefined;
}
