/**
 * Whether the node's disk has stalled: a log write (a round's append + fsync) that has run
 * longer than a threshold holds every write behind it. The node still takes writes (they
 * wait, and are acknowledged once on disk, never before), but `/health` says `stalled` so
 * that probes and the proxy send writes elsewhere; it says `ok` again by itself once the
 * write finishes. A stall that ends in an error turns the node read-only (write_guard.ts).
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { stalledWrites } from "./disk_stall.ts";
 * assertEquals(stalledWrites(null, 5_000), undefined);
 * assertEquals(stalledWrites({ since: 1_000, ms: 4_999 }, 5_000), undefined);
 * assertEquals(stalledWrites({ since: 1_000, ms: 6_000 }, 5_000)?.state, "stalled");
 * ```
 */
import type { WriteHealth } from "./write_guard.ts";

/** How long a log write may wait on the disk before `/health` reports a stall: 5 s. */
export const DEFAULT_STALL_AFTER_MS = 5_000;

/**
 * The `stalled` write health when the log write under way (`busy`: when it began, wall ms,
 * and how long it has run; null: none runs) has run at least `stallAfterMs`; else undefined.
 */
export function stalledWrites(
  busy: { since: number; ms: number } | null,
  stallAfterMs: number,
): WriteHealth | undefined {
  if (busy === null || busy.ms < stallAfterMs) return undefined;
  const seconds = (busy.ms / 1000).toFixed(1);
  return {
    state: "stalled",
    reason: `the log write (append + fsync of wal.jsonl) has waited ${seconds} s on the disk; ` +
      "writes wait for it and are acknowledged once they are on disk",
    since: busy.since,
    retries: 0,
  };
}
