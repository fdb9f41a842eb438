/**
 * Key order for listings without paying for it on writes: new keys go to an unsorted
 * side list in O(1); a listing sorts that list (cheap: mostly sorted already) and merges
 * it with the main sorted array on the fly, folding it in once it grows past a fraction
 * of the main array. Removed keys are filtered by the caller's `has` and purged then.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { KeyOrder } from "./key_order.ts";
 * const live = new Set(["b", "a", "c"]);
 * const order = new KeyOrder();
 * for (const key of live) order.add(key);
 * live.delete("b");
 * assert([...order.from("", false, (k) => live.has(k))].join() === "a,c");
 * ```
 */

const MIN_FOLD = 1024;

/** A sorted view of a changing set of string keys (UTF-16 code unit order). */
export class KeyOrder {
  #sorted: string[] = [];
  #added: string[] = [];
  #addedSorted = true;
  #removed = 0;

  /** Records a key that just became present (it may have been present before). */
  add(key: string): void {
    this.#added.push(key);
    this.#addedSorted = false;
  }

  /** Records that some key stopped being present. */
  removed(): void {
    this.#removed++;
  }

  /** Present keys at or after `start` (strictly after when `exclusive`), in order. */
  from(start: string, exclusive: boolean, has: (key: string) => boolean): Generator<string> {
    this.#prepare(has);
    return this.#merge(start, exclusive, has);
  }

  *#merge(start: string, exclusive: boolean, has: (key: string) => boolean): Generator<string> {
    const sorted = this.#sorted;
    const added = this.#added;
    let i = lowerBound(sorted, start, exclusive);
    let j = lowerBound(added, start, exclusive);
    let last: string | undefined;
    while (i < sorted.length || j < added.length) {
      const a = sorted[i];
      const b = added[j];
      let key: string;
      if (b === undefined || (a !== undefined && a <= b)) {
        key = a!;
        i++;
      } else {
        key = b;
        j++;
      }
      if (key === last || !has(key)) continue;
      last = key;
      yield key;
    }
  }

  #prepare(has: (key: string) => boolean): void {
    if (!this.#addedSorted) this.#added.sort();
    this.#addedSorted = true;
    const size = this.#sorted.length;
    if (
      this.#added.length > Math.max(MIN_FOLD, size >>> 4) ||
      this.#removed > Math.max(MIN_FOLD, size >>> 2)
    ) {
      this.#sorted = [...this.#merge("", false, has)];
      this.#added = [];
      this.#removed = 0;
    }
  }
}

/** Index of the first element >= key (> key when `exclusive`). */
function lowerBound(keys: readonly string[], key: string, exclusive: boolean): number {
  let lo = 0;
  let hi = keys.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    const k = keys[mid]!;
    if (k < key || (exclusive && k === key)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
