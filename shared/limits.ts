/**
 * Size limits, the same on every route of the proxy and the nodes.
 * docs/api.md lists them for users; change both together.
 *
 * @module
 */

/** The limits a server enforces; every field can be set by flags. */
export interface Limits {
  /** Longest key, in bytes of UTF-8. */
  maxKeyBytes: number;
  /** Largest value, in bytes. */
  maxValueBytes: number;
  /** Most operations in one batch (`POST /kv`, internal batch and ingest calls). */
  maxBatchOps: number;
  /** Largest batch request body, in bytes. */
  maxBatchBytes: number;
  /** Largest `limit` a listing accepts. */
  maxListLimit: number;
  /** `limit` of a listing that does not give one. */
  defaultListLimit: number;
  /** Time allowed to receive a request body, in ms (default 10 s), then 408. */
  bodyTimeoutMs: number;
}

/** The defaults, as documented in docs/api.md. */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxKeyBytes: 1024,
  maxValueBytes: 1024 * 1024,
  maxBatchOps: 1000,
  maxBatchBytes: 16 * 1024 * 1024,
  maxListLimit: 1000,
  defaultListLimit: 100,
  bodyTimeoutMs: 10_000,
});

/**
 * Bytes of values one proxy → node call carries: in its answer when the proxy reads many keys in
 * one call (a batch or replica read; the node stops before the value that would pass it, the
 * call's first value excepted), in its body when it writes (the proxy starts another call past
 * it; one larger op goes alone). A quarter of `maxBatchBytes`, so each call stays far from the
 * call timeout: a 16 MiB `POST /kv` sent to each replica as one 22 MB call took longer than 2 s
 * on a loaded host (review: 503s from healthy nodes).
 */
export function callValueBytes(limits: Pick<Limits, "maxBatchBytes">): number {
  return Math.max(1, Math.floor(limits.maxBatchBytes / 4));
}

/** Limits on a request as a whole, checked before any route runs (shared/guard.ts). */
export interface RequestLimits {
  /** Longest request target (path and query), in bytes; 414 past it. */
  maxUrlBytes: number;
  /** Most bytes of header lines (names, values and separators); 431 past it. */
  maxHeaderBytes: number;
  /** Requests being answered at once by one process; 503 with `Retry-After` past it. */
  maxInFlight: number;
}

/** The defaults, as documented in docs/api.md. */
export const DEFAULT_REQUEST_LIMITS: Readonly<RequestLimits> = Object.freeze({
  maxUrlBytes: 8 * 1024,
  maxHeaderBytes: 16 * 1024,
  maxInFlight: 1024,
});
