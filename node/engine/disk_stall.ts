/**
 * Whether the node's disk has stalled: a write has waited on the log (its round's append +
 * fsync, and any round ahead of it) longer than a threshold. The node still takes writes (they
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
 * The `stalled` write health when the oldest write waiting on the log, or on `file`
 * (`busy`: since when, wall ms, and for how long; null: none waits) has waited
 * `stallAfterMs`; else undefined.
 */
export function stalledWrites(
  busy: { since: number; ms: number; file?: string } | null,
  stallAfterMs: number,
): WriteHealth | undefined {
  if (busy === null || busy.ms < stallAfterMs) return undefined;
  const seconds = (busy.ms / 1000).toFixed(1);
  const reason = busy.file === undefined
    ? `the log write (append + fsync of wal.jsonl) has waited ${seconds} s on the disk; ` +
      "writes wait for it and are acknowledged once they are on disk"
    : `the write of ${busy.file} has waited ${seconds} s on the disk; ` +
      "requests that need it wait for it";
  return { state: "stalled", reason, since: busy.since, retries: 0 };
}
