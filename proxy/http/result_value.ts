/**
 * The value of a node's read result in either form it comes in (docs/internal-api.md): `text`
 * (the node held valid UTF-8 and the batch asked for `textValues`) or `value` (base64: binary
 * values, and every value from a node that predates `textValues`).
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { resultBytes } from "./result_value.ts";
 * assert(resultBytes({ status: 200, text: "hi" }).length === 2);
 * assert(resultBytes({ status: 200, value: "aGk=" }).length === 2);
 * ```
 */
import { utf8Length } from "../../shared/keys.ts";
import type { BatchResult } from "../../shared/wire.ts";
import { utf8Text } from "./request_body.ts";

const encoder = new TextEncoder();

/** The value's bytes. */
export function resultBytes(r: BatchResult): Uint8Array<ArrayBuffer> {
  return r.text !== undefined ? encoder.encode(r.text) : Uint8Array.fromBase64(r.value ?? "");
}

/** The value's length in bytes, without decoding it. */
export function resultByteLength(r: BatchResult): number {
  if (r.text !== undefined) return utf8Length(r.text);
  const b64 = r.value ?? "";
  const pad = b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0;
  return (b64.length / 4) * 3 - pad;
}

/** The value as text when its bytes are valid UTF-8, else null. */
export function resultText(r: BatchResult): string | null {
  if (r.text !== undefined) return r.text;
  return utf8Text(Uint8Array.fromBase64(r.value ?? "")) ?? null;
}
