/**
 * How `deno task kv` prints keys and values: a word of a human line quoted when it would read
 * back ambiguously (as `ls` and git quote odd file names), the lines of `kv ls`, and the JSON
 * object of `kv get --json`.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { quoted } from "./kv_output.ts";
 * assertEquals(quoted("users/1"), "users/1");
 * assertEquals(quoted("my key"), '"my key"');
 * ```
 */
import { EXPIRES_AT_HEADER } from "../shared/expiry.ts";

/** Characters that make a bare word ambiguous or invisible: spaces, controls, quotes, format. */
const NEEDS_QUOTES = /[\s"\\\p{C}\p{Z}]/u;
/** What JSON leaves raw but a terminal would not show as itself. */
const INVISIBLE = /[\p{C}\p{Z}]/gu;

/** `text` as a word of a printed line: as it is when unambiguous, else {@link jsonQuoted}. */
export function quoted(text: string): string {
  return text !== "" && !NEEDS_QUOTES.test(text) ? text : jsonQuoted(text);
}

/** `text` in double quotes with JSON's escapes, and `\uXXXX` for anything invisible. */
export function jsonQuoted(text: string): string {
  return JSON.stringify(text).replace(INVISIBLE, (ch) => ch === " " ? ch : utf16Escapes(ch));
}

function utf16Escapes(ch: string): string {
  let out = "";
  for (let i = 0; i < ch.length; i++) {
    out += `\\u${ch.charCodeAt(i).toString(16).padStart(4, "0")}`;
  }
  return out;
}

/**
 * A line of `kv ls`: the key as {@link quoted}; with `json`, `{"key": ...}` with what a reader
 * could take for a line break (U+2028, U+0085) or not see escaped, as {@link jsonQuoted} does.
 */
export function keyLine(key: string, json: boolean): string {
  return json ? `{"key":${jsonQuoted(key)}}` : quoted(key);
}

/** UTF-8 or an error; a leading byte-order mark is part of the value, not dropped. */
const strictUtf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

/**
 * `kv get --json`: the key with its version, Content-Type, expiry (when it has one) and value,
 * as text when it is UTF-8, else base64: the fields of a `kv watch --json` put.
 */
export function valueJson(key: string, headers: Headers, bytes: Uint8Array): object {
  const out: Record<string, string> = {
    key,
    version: (headers.get("etag") ?? "").replace(/^"|"$/g, ""),
    contentType: headers.get("content-type") ?? "",
  };
  try {
    out.value = strictUtf8.decode(bytes);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    out.valueBase64 = bytes.toBase64();
  }
  const expiresAt = headers.get(EXPIRES_AT_HEADER);
  if (expiresAt !== null) out.expiresAt = expiresAt;
  return out;
}
