/**
 * How the proxy shows keys with a TTL to clients: an entry whose expiry has passed on
 * this proxy's clock is absent (404), whatever the nodes still hold; a live one loses the
 * stored expiry parameter from its content type and says when it expires instead.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { visible } from "./expiry_view.ts";
 * const r = { status: 200, version: "v", contentType: "text/plain; ringkv-expires=5000" };
 * assert(visible(r, 4_000).contentType === "text/plain" && visible(r, 4_000).expiresAt === 5_000);
 * assert(visible(r, 5_000).status === 404);
 * ```
 */
import { checkClientType, expiryOf, parseTtl, plainType, withExpiry } from "../../shared/expiry.ts";
import type { BatchResult } from "../../shared/wire.ts";

/** A read's answer as a client sees it at wall time `now`, with its expiry when it has one. */
export function visible(r: BatchResult, now: number): BatchResult & { expiresAt?: number } {
  if (r.status !== 200 || r.contentType === undefined) return r;
  const at = expiryOf(r.contentType);
  if (at === undefined) return r;
  if (at <= now) return { status: 404, ...(r.version === undefined ? {} : { version: r.version }) };
  return { ...r, contentType: plainType(r.contentType), expiresAt: at };
}

/** The content type to store for a client's write with an optional `ttl` (seconds, as given). */
export function storedType(
  contentType: string,
  ttl: string | null | undefined,
  key: string,
  now: number,
): string {
  return expiringType(contentType, checkedTtl(contentType, ttl, key), now);
}

/**
 * A write's TTL in seconds (null: none) once its content type and `ttl` are checked: 400
 * for either, before its body is read.
 */
export function checkedTtl(
  contentType: string,
  ttl: string | null | undefined,
  key: string,
): number | null {
  checkClientType(contentType, key);
  return ttl === null || ttl === undefined ? null : parseTtl(ttl, key);
}

/** `contentType` to store for a TTL of `seconds` (null: none) counted from wall time `now`. */
export function expiringType(contentType: string, seconds: number | null, now: number): string {
  return seconds === null ? contentType : withExpiry(contentType, now + seconds * 1000);
}
