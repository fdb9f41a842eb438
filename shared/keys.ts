/**
 * Key rules, the same on every route: 1-1024 bytes of UTF-8 (by default), no control
 * characters, percent-encoded in URL paths.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { keyFromPath } from "./keys.ts";
 * assert(keyFromPath("users%2F42", 1024) === "users/42");
 * ```
 */
import { RingkvError } from "./errors.ts";

const encoder = new TextEncoder();
// Control characters would break log lines and terminals, and no real key needs them.
// deno-lint-ignore no-control-regex
const CONTROL = /[\u0000-\u001f\u007f]/;

/** Byte length of a string in UTF-8, without allocating for short ASCII strings. */
export function utf8Length(text: string): number {
  let ascii = true;
  for (let i = 0; i < text.length; i++) {
    if (text.charCodeAt(i) > 0x7f) {
      ascii = false;
      break;
    }
  }
  return ascii ? text.length : encoder.encode(text).length;
}

/** Checks a decoded key against the rules; throws the 4xx the client should get. */
export function checkKey(key: string, maxKeyBytes: number): string {
  if (key.length === 0) {
    throw new RingkvError("invalid_key", "Cannot use an empty key: keys are 1 or more bytes");
  }
  // A UTF-16 code unit is at most 3 bytes of UTF-8, so short keys need no counting.
  const bytes = key.length * 3 <= maxKeyBytes ? key.length : utf8Length(key);
  if (bytes > maxKeyBytes) {
    throw new RingkvError(
      "key_too_long",
      `Cannot use key: it is ${bytes} bytes of UTF-8, the limit is ${maxKeyBytes}`,
    );
  }
  if (key === "." || key === "..") {
    throw new RingkvError("invalid_key", `Cannot use key "${key}": no URL can address it`);
  }
  if (CONTROL.test(key)) {
    throw new RingkvError("invalid_key", "Cannot use key: it contains a control character");
  }
  if (!key.isWellFormed()) {
    throw new RingkvError("invalid_key", "Cannot use key: it is not valid UTF-8");
  }
  return key;
}

/** A `.` or `..` path segment, plain or percent-encoded, which URL clients resolve away. */
export const DOT_SEGMENT = /(?:^|\/)(?:\.|%2e){1,2}(?:\/|$)/i;

/** 1 for the ASCII characters that decode to themselves and can make no dot segment. */
const PLAIN = new Uint8Array(128);
for (const c of "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_~") {
  PLAIN[c.charCodeAt(0)] = 1;
}

/** Whether `encoded` holds only {@link PLAIN} characters (no `%`, `.`, `#`, `/` or controls). */
function isPlain(encoded: string): boolean {
  for (let i = 0; i < encoded.length; i++) {
    const c = encoded.charCodeAt(i);
    if (c >= 128 || PLAIN[c] === 0) return false;
  }
  return true;
}

/** Decodes the percent-encoded key of a URL path segment and checks it. */
export function keyFromPath(encoded: string, maxKeyBytes: number): string {
  // Most keys are plain: their decoding is themselves and the pattern checks cannot match
  // (3x cheaper on every GET); checkKey still applies the rules that can (empty, length).
  if (encoded.length <= maxKeyBytes && isPlain(encoded)) return checkKey(encoded, maxKeyBytes);
  // A key three times over the limit cannot decode to a legal one; stop before decoding.
  if (encoded.length > maxKeyBytes * 3) {
    throw new RingkvError(
      "key_too_long",
      `Cannot use key: its encoded form is ${encoded.length} characters, the limit is ${maxKeyBytes} bytes`,
    );
  }
  // curl and fetch would have sent a different key; one that only raw HTTP can reach is refused.
  if (DOT_SEGMENT.test(encoded)) {
    throw new RingkvError(
      "invalid_key",
      "Cannot use key: it has a . or .. path segment, which URL clients resolve away; " +
        "percent-encode its slashes (a%2F..%2Fb)",
    );
  }
  if (encoded.includes("#")) {
    throw new RingkvError(
      "invalid_key",
      "Cannot use key: it has a raw #, which URL clients cut off as a fragment; send it as %23",
    );
  }
  let key: string;
  try {
    key = decodeURIComponent(encoded);
  } catch {
    throw new RingkvError(
      "invalid_key",
      "Cannot use key: its percent-encoding is invalid or does not decode to UTF-8",
    );
  }
  return checkKey(key, maxKeyBytes);
}

/** Percent-encodes a key for a URL path, keeping `/` readable unless that makes a dot segment. */
export function keyToPath(key: string): string {
  const encoded = encodeURIComponent(key);
  const readable = encoded.replaceAll("%2F", "/");
  return DOT_SEGMENT.test(readable) ? encoded : readable;
}
