/**
 * mulberry32: a small seeded generator of numbers in [0, 1), so randomized tests draw the same
 * cases on every run and a failing seed can be run again.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { seededRandom } from "./seeded_random.ts";
 * const [a, b] = [seededRandom(7), seededRandom(7)];
 * assertEquals([a(), a()], [b(), b()]);
 * ```
 */

/** A generator of numbers in [0, 1) that gives the same sequence for the same `seed`. */
export function seededRandom(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
