/**
 * Joining byte chunks (request bodies, log rounds, node answers): one copy into a buffer
 * of the total size, none for a single chunk.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { concatBytes } from "./bytes.ts";
 * const joined = concatBytes([new Uint8Array([1]), new Uint8Array([2, 3])]);
 * assert(joined.length === 3 && joined[2] === 3);
 * ```
 */

/** `parts` end to end; the one part itself when there is only one. */
export function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  let total = 0;
  for (const part of parts) total += part.byteLength;
  const out = new Uint8Array(total);
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}
