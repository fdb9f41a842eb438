/**
 * STUB: signatures agreed between modules; the ring helper replaces the bodies.
 * @module
 */

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

/** Default virtual nodes per unit of weight. */
export const DEFAULT_VNODES = 0;

/** SHA-1 (Web Crypto) of the key's UTF-8, first 32 bits. */
export declare function hashKey(key: string): Promise<Point>;

/** Hashes many keys concurrently (much cheaper per key than one at a time). */
export declare function hashKeys(keys: readonly string[]): Promise<Point[]>;

/** An immutable consistent-hashing ring. */
export declare class Ring {
  /** Builds from explicit points (tests pass hand-picked integers). */
  static fromPoints(points: readonly { point: Point; nodeId: string }[]): Ring;
  /** Places `round(weight * vnodes)` points per member at hashKey(`${id}#${i}`). */
  static build(members: readonly RingMember[], vnodes?: number): Promise<Ring>;
  /** Distinct node ids on the ring, sorted. */
  readonly nodeIds: readonly string[];
  /** The first `n` distinct nodes clockwise from `point` (fewer if the ring has fewer). */
  ownersOf(point: Point, n: number): string[];
  /** Each node's fraction of the hash space (sums to 1). */
  shares(): Map<string, number>;
  /** Every point with its node, in ring order. */
  points(): { point: Point; nodeId: string }[];
}

/** Ranges whose first `n` owners differ between `from` and `to`, merged, in order. */
export declare function diffRings(from: Ring, to: Ring, n: number): RangeMove[];

/** Whether `point` lies in one of `ranges`. */
export declare function inRanges(point: Point, ranges: readonly Range[]): boolean;
