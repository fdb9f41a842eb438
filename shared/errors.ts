/**
 * The one error shape of ringkv: every 4xx/5xx answer on every route has the body
 * `{"error": {"code": "...", "message": "..."}}`.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { RingkvError, errorBody } from "./errors.ts";
 * const err = new RingkvError("key_too_long", "Cannot store key: it is 2000 bytes, the limit is 1024");
 * assert(err.status === 414);
 * assert(errorBody(err.code, err.message).error.code === "key_too_long");
 * ```
 */

/** Every error code a client or a proxy can see, with its HTTP status. */
export const ERROR_STATUS = {
  bad_request: 400,
  invalid_key: 400,
  invalid_json: 400,
  invalid_header: 400,
  invalid_cursor: 400,
  invalid_batch: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  no_route: 404,
  method_not_allowed: 405,
  not_acceptable: 406,
  request_timeout: 408,
  conflict: 409,
  stale_epoch: 409,
  precondition_failed: 412,
  value_too_large: 413,
  batch_too_large: 413,
  key_too_long: 414,
  uri_too_long: 414,
  unsupported_media_type: 415,
  headers_too_large: 431,
  internal: 500,
  bad_gateway: 502,
  node_unavailable: 503,
  node_recovering: 503,
  unavailable: 503,
  timeout: 504,
} as const;

/** A code from {@link ERROR_STATUS}. */
export type ErrorCode = keyof typeof ERROR_STATUS;

/** The JSON body of every error answer. */
export interface ErrorBody {
  error: { code: ErrorCode; message: string; [extra: string]: unknown };
}

/** A domain error that the servers' `onError` turns into its status and JSON body. */
export class RingkvError extends Error {
  /** The HTTP status this error is answered with. */
  readonly status: number;

  /** Creates an error; `extra` fields are added to the error body (e.g. the node's id). */
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = "RingkvError";
    this.status = ERROR_STATUS[code];
  }
}

/** Builds the JSON error body for a code and message. */
export function errorBody(
  code: ErrorCode,
  message: string,
  extra: Record<string, unknown> = {},
): ErrorBody {
  return { error: { ...extra, code, message } };
}

/** Builds a complete JSON error `Response`. */
export function errorResponse(err: RingkvError, headers: HeadersInit = {}): Response {
  return new Response(JSON.stringify(errorBody(err.code, err.message, err.extra)), {
    status: err.status,
    headers: { "content-type": "application/json", ...headers },
  });
}

/** Longest text, in characters (code points), that {@link clipped} leaves whole. */
export const CLIP_MAX = 100;
/** How many characters of a longer one it keeps: clipped never makes a text longer. */
export const CLIP_KEPT = 80;

/**
 * `text` (a key, a node id, a JSON name) for a message: whole up to {@link CLIP_MAX}
 * characters, else its first {@link CLIP_KEPT} and its length in UTF-8 bytes (what key limits
 * count), cut between characters, never inside one. `quoted` puts the text in double quotes,
 * before the length: `"abc..." (20000 bytes)`.
 */
export function clipped(text: string, options: { quoted?: boolean } = {}): string {
  const q = options.quoted ? '"' : "";
  // A text of at most CLIP_MAX UTF-16 units has at most as many characters: no split needed.
  if (text.length <= CLIP_MAX) return `${q}${text}${q}`;
  const chars = Array.from(text);
  if (chars.length <= CLIP_MAX) return `${q}${text}${q}`;
  const bytes = new TextEncoder().encode(text).length;
  return `${q}${chars.slice(0, CLIP_KEPT).join("")}...${q} (${bytes} bytes)`;
}
