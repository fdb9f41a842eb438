/**
 * How old a tombstone must be before the proxies purge it (docs/replication.md, "Purging old
 * tombstones"): every replica must hold it, the map must be stable, and each replica must have
 * stored it this long ago by its own clock. The grace is the margin for messages still on their
 * way with an older copy of the key (an anti-entropy or hint ingest that read the replicas before
 * the delete): one that arrives after the purge would bring the key back, as Cassandra's
 * `gc_grace_seconds` bounds.
 *
 * @module
 */
import { RingkvError } from "./errors.ts";

/** The default grace: 10 minutes. */
export const DEFAULT_TOMBSTONE_GRACE_MS = 600_000;

/** The shortest grace a node takes: far above any call's deadline. */
export const MIN_TOMBSTONE_GRACE_MS = 60_000;

/** `graceMs` of a node's purge or listing: a whole number of ms, at least a minute; else 400. */
export function checkGrace(value: unknown): number {
  if (Number.isSafeInteger(value) && (value as number) >= MIN_TOMBSTONE_GRACE_MS) {
    return value as number;
  }
  throw new RingkvError(
    "bad_request",
    `Cannot purge tombstones: graceMs must be a whole number of ms, at least ${MIN_TOMBSTONE_GRACE_MS}`,
  );
}
