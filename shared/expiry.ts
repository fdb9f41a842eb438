/**
 * Per-key expiry (docs/api.md, "Expiring keys"). A key's expiry is an absolute wall time
 * in ms, fixed by the proxy that took the write (`now + ttl`), and travels inside the
 * entry's content type as a trailing parameter `; ringkv-expires=<ms>`: the content type
 * already goes with the version through every path (CASPaxos, batches, ingest,
 * rebalancing, the WAL and snapshots), so expiry and version can never part. Clients
 * never see the parameter: the proxy strips it and answers `Expires-At` instead. Pure.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { expiryOf, isExpired, plainType, withExpiry } from "./expiry.ts";
 * const t = withExpiry("text/plain", 5_000);
 * assert(expiryOf(t) === 5_000 && plainType(t) === "text/plain");
 * assert(!isExpired(t, 4_999) && isExpired(t, 5_000) && !isExpired("text/plain", 9e12));
 * ```
 */
import { RingkvError } from "./errors.ts";

/** Largest TTL a write may ask for, in seconds (one year). */
export const MAX_TTL_SECONDS = 365 * 24 * 3600;
/** Header on GET/HEAD answers of a key with a TTL: when it expires (RFC 3339, UTC). */
export const EXPIRES_AT_HEADER = "expires-at";

const MARK = "; ringkv-expires=";
const TRAILER = /; ringkv-expires=(\d{1,16})$/;

/** The content type stored for a value that expires at `expiresAt` (wall ms). */
export function withExpiry(contentType: string, expiresAt: number | undefined): string {
  return expiresAt === undefined ? contentType : `${contentType}${MARK}${expiresAt}`;
}

/** The expiry (wall ms) a stored content type carries, if any. */
export function expiryOf(contentType: string | undefined): number | undefined {
  if (contentType === undefined || !contentType.includes(MARK)) return undefined;
  const m = TRAILER.exec(contentType);
  return m === null ? undefined : Number(m[1]);
}

/** The content type as the client gave it (without the expiry). */
export function plainType(contentType: string): string {
  return contentType.includes(MARK) ? contentType.replace(TRAILER, "") : contentType;
}

/** Whether a stored content type says the value has expired at wall time `now`. */
export function isExpired(contentType: string | undefined, now: number): boolean {
  const at = expiryOf(contentType);
  return at !== undefined && at <= now;
}

/**
 * Refuses a client content type with a parameter named `ringkv-expires` (any case), or one that
 * would pass for an expiry (a quote left open before a trailing `; ringkv-expires=<digits>`).
 * The name elsewhere (`application/vnd.ringkv-expires+json`, inside a quoted value) is text.
 */
export function checkClientType(contentType: string, key: string): void {
  if (!/ringkv-expires/i.test(contentType)) return; // nearly every content type: no parsing
  const named = parameterNames(contentType).includes("ringkv-expires");
  if (!named && !TRAILER.test(contentType)) return;
  const why = named ? 'has a "ringkv-expires" parameter' : "ends as ringkv's expiry does";
  throw new RingkvError(
    "invalid_header",
    `Cannot store key "${key}": its Content-Type ${why}, which ringkv reserves; set a TTL with ?ttl=SECONDS`,
  );
}

/** The parameter names of a media type (RFC 9110 8.3.1), lower-cased; quoted values skipped. */
function parameterNames(mediaType: string): string[] {
  const names: string[] = [];
  let at = mediaType.indexOf(";");
  while (at !== -1) {
    const end = /[=;]|$/.exec(mediaType.slice(at + 1))!.index + at + 1;
    names.push(mediaType.slice(at + 1, end).trim().toLowerCase());
    at = nextSemicolon(mediaType, end);
  }
  return names;
}

/** Index of the next `;` at or after `from` outside a quoted string, or -1. */
function nextSemicolon(text: string, from: number): number {
  let quoted = false;
  for (let i = from; i < text.length; i++) {
    const ch = text[i];
    if (quoted && ch === "\\") i++; // a quoted-pair: the next character is text
    else if (ch === '"') quoted = !quoted;
    else if (ch === ";" && !quoted) return i;
  }
  return -1;
}

/** The `ttl` query parameter: null when absent; 400 when given more than once. */
export function ttlParam(params: URLSearchParams, key: string): string | null {
  const all = params.getAll("ttl");
  if (all.length > 1) {
    throw new RingkvError(
      "bad_request",
      `Cannot set a TTL on key "${key}": the query has ttl ${all.length} times; give it once`,
    );
  }
  return all[0] ?? null;
}

/** Parses a TTL in seconds as a client wrote it; 400 unless a whole number 1..max. */
export function parseTtl(raw: string, key: string): number {
  const seconds = /^\d{1,12}$/.test(raw) ? Number(raw) : NaN;
  if (!(seconds >= 1 && seconds <= MAX_TTL_SECONDS)) {
    throw new RingkvError(
      "bad_request",
      `Cannot set a TTL of ${
        JSON.stringify(raw)
      } on key "${key}": give whole seconds from 1 to ${MAX_TTL_SECONDS} (one year)`,
    );
  }
  return seconds;
}
