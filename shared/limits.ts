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
}

/** The defaults, as documented in docs/api.md. */
export const DEFAULT_LIMITS: Readonly<Limits> = Object.freeze({
  maxKeyBytes: 1024,
  maxValueBytes: 1024 * 1024,
  maxBatchOps: 1000,
  maxBatchBytes: 16 * 1024 * 1024,
  maxListLimit: 1000,
  defaultListLimit: 100,
});
