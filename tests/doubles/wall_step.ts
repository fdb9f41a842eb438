/**
 * A wall clock stepped for the length of a callback, as NTP or an operator steps it: `Date.now`
 * moves by `stepMs`, `performance.now` and timers do not (libfaketime's DONT_FAKE_MONOTONIC).
 * For tests that code measuring an interval does not read the wall clock.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { withWallStep } from "./wall_step.ts";
 * const before = Date.now();
 * await withWallStep(-3_600_000, () => assert(Date.now() < before - 3_000_000));
 * assert(Date.now() >= before);
 * ```
 */

/** Moves `Date.now` by `stepMs` (on top of any step already made); returns what puts it back. */
export function stepWall(stepMs: number): () => void {
  const before = Date.now;
  Date.now = () => before() + stepMs;
  return () => {
    Date.now = before;
  };
}

/** Runs `fn` with `Date.now` moved by `stepMs`, and puts it back after. */
export async function withWallStep<T>(stepMs: number, fn: () => T | Promise<T>): Promise<T> {
  const putBack = stepWall(stepMs);
  try {
    return await fn();
  } finally {
    putBack();
  }
}
