/**
 * The acceptor's per-key promises in memory, bounded for keys this node holds no entry of.
 *
 * A round that ends without an accept (a DELETE of a missing key, a failed If-Match, a settle
 * that finds the replicas agree) leaves its promise: on a key with an entry that costs one slot
 * per stored key at most, but on a key the node never stored it cost ~120 B for good, one per
 * distinct key (the soak review: 30k DELETEs of missing keys, +2.5 to +4 MiB per node). So a
 * promise on such an absent key is kept for {@link PROMISE_AGE_MS} at least and then folded into
 * one floor, the highest ballot folded: every absent key's promise from then on (node/paxos/
 * acceptor.ts has why that is safe). Promises live in two generations: {@link PromiseTable.tick}
 * runs at most once per age (a clock read per prepare, not a scan) and folds the absent keys of
 * the older one, then the younger one becomes the older.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { PromiseTable } from "./promise_table.ts";
 * let t = 0;
 * const table = new PromiseTable(() => false, 10, () => t);
 * table.promise("gone", "000000000005-0000-p");
 * t = 10;
 * table.tick(); // the promise is 10 ms old: the older generation
 * t = 20;
 * table.tick(); // folded into the floor
 * assertEquals([table.size, table.of("any", false)], [0, "000000000005-0000-p"]);
 * ```
 */
import type { Version } from "../../shared/version.ts";

/** How long a promise on a key without an entry is kept before it is folded into the floor. */
export const PROMISE_AGE_MS = 60_000;

function max(a: Version | undefined, b: Version | undefined): Version | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}

/** Per-key promises; those on keys without an entry end up in one floor. */
export class PromiseTable {
  #young = new Map<string, Version>();
  #old = new Map<string, Version>();
  #absentFloor: Version | undefined;
  #tickedAt: number;
  /** Promises folded into the floor so far (a counter for /metrics). */
  folded = 0;

  /**
   * `held(key)`: whether the node holds an entry of `key` now (tombstones count); `ageMs`; `clock`:
   * monotonic milliseconds (a stepped wall clock must not fold young promises).
   */
  constructor(
    private readonly held: (key: string) => boolean,
    private readonly ageMs = PROMISE_AGE_MS,
    private readonly clock: () => number = () => performance.now(),
  ) {
    this.#tickedAt = clock();
  }

  /** Promises kept one by one. */
  get size(): number {
    return this.#young.size + this.#old.size;
  }

  /** `key`'s promise; a key without an entry (`held` false) is promised the floor at least. */
  of(key: string, held: boolean): Version | undefined {
    const own = this.#young.get(key) ?? this.#old.get(key);
    return held ? own : max(own, this.#absentFloor);
  }

  /** Records `ballot` as `key`'s promise (the caller checked that it is higher). */
  promise(key: string, ballot: Version): void {
    this.#young.set(key, ballot);
    if (this.#old.size > 0) this.#old.delete(key);
  }

  /** Forgets `key`'s promise when `version` (durable, stored) covers it. */
  spend(key: string, version: Version): void {
    // Two calls, not a loop over a new array: this runs for every accepted entry.
    spendIn(this.#young, key, version);
    if (this.#old.size > 0) spendIn(this.#old, key, version);
  }

  /**
   * Keeps the floor as `key`'s own promise when an entry below it lands on the key without the
   * acceptor (a versioned ingest, which ignores promises): once the key has an entry the floor no
   * longer covers it, and the promise folded into it may have been this key's.
   */
  keepFloor(key: string, version: Version): void {
    const floor = this.#absentFloor;
    if (floor === undefined || version >= floor) return;
    const own = this.#young.get(key) ?? this.#old.get(key);
    if (own === undefined || own < floor) this.promise(key, floor);
  }

  /**
   * Raises the floor to `ballot`: the version of a tombstone about to be purged, so that the
   * key, absent once purged, refuses what its tombstone refused (a stale accept below it).
   */
  raiseFloor(ballot: Version): void {
    this.#absentFloor = max(this.#absentFloor, ballot);
  }

  /** Once per age: folds the older generation's promises on keys without an entry. */
  tick(): void {
    const now = this.clock();
    if (now - this.#tickedAt < this.ageMs) return;
    this.#tickedAt = now;
    for (const [key, ballot] of this.#old) {
      if (this.held(key)) this.#young.set(key, ballot); // bounded by the keys stored
      else {
        this.#absentFloor = max(this.#absentFloor, ballot);
        this.folded++;
      }
    }
    this.#old = this.#young;
    this.#young = new Map();
  }
}

function spendIn(gen: Map<string, Version>, key: string, version: Version): void {
  const promised = gen.get(key);
  if (promised !== undefined && promised <= version) gen.delete(key);
}
