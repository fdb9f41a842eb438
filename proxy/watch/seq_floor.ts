/**
 * The lowest of a changing multiset of log positions, in amortized O(1) when positions are
 * added in rising order (as a node's log is read): the watch merge asks for each node's
 * lowest position still waiting for a majority on every event's cursor, and scanning every
 * waiting key for it cost more than the rest of the merge. Pure.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { SeqFloor } from "./seq_floor.ts";
 * const floor = new SeqFloor();
 * floor.add(4);
 * floor.add(9);
 * floor.remove(4);
 * assertEquals(floor.min(), 9);
 * ```
 */

/** A multiset of positions that answers its lowest. */
export class SeqFloor {
  /** Positions in rising order; those with no count left are skipped lazily. */
  #sorted: number[] = [];
  #head = 0;
  readonly #count = new Map<number, number>();

  /** Adds one occurrence of `seq`. */
  add(seq: number): void {
    const n = this.#count.get(seq) ?? 0;
    this.#count.set(seq, n + 1);
    if (n > 0) return;
    const last = this.#sorted[this.#sorted.length - 1];
    if (this.#head === this.#sorted.length || last === undefined || seq > last) {
      this.#sorted.push(seq);
      return;
    }
    // Out of order (not how a log is read, but kept correct): insert in place.
    let lo = this.#head;
    let hi = this.#sorted.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.#sorted[mid]! < seq) lo = mid + 1;
      else hi = mid;
    }
    if (this.#sorted[lo] !== seq) this.#sorted.splice(lo, 0, seq);
  }

  /** Removes one occurrence of `seq` (none held: nothing happens). */
  remove(seq: number): void {
    const n = this.#count.get(seq);
    if (n === undefined) return;
    if (n > 1) this.#count.set(seq, n - 1);
    else this.#count.delete(seq);
  }

  /** The lowest position held, or undefined when none is. */
  min(): number | undefined {
    while (this.#head < this.#sorted.length && !this.#count.has(this.#sorted[this.#head]!)) {
      this.#head++;
    }
    if (this.#head > 1024 && this.#head * 2 > this.#sorted.length) {
      this.#sorted = this.#sorted.slice(this.#head);
      this.#head = 0;
    }
    return this.#sorted[this.#head];
  }
}
