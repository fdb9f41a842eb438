/**
 * How old a tombstone must be before the proxies purge it (docs/design-decisions.md,
 * "Durability"): every replica must hold it, the map must be stable, and its version's wall time
 * must be this far behind both the purging proxy's clock and each node's. The grace is the margin
 * for messages still on their way with an older copy of the key (an anti-entropy or hint ingest
 * that read the replicas before the delete): one that arrives after the purge would bring the
 * key back, as Cassandra's `gc_grace_seconds` bounds.
 *
 * @module
 */

/** The default grace: 10 minutes. */
export const DEFAULT_TOMBSTONE_GRACE_MS = 600_000;

/** The shortest grace a node takes: far above any call's deadline. */
export const MIN_TOMBSTONE_GRACE_MS = 60_000;
