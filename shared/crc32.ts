/**
 * CRC-32 (IEEE 802.3, the one of zlib, PNG and gzip), table-driven, pure.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { crc32, crc32Hex } from "./crc32.ts";
 * const bytes = new TextEncoder().encode("123456789");
 * assert(crc32(bytes) === 0xcbf43926);
 * assert(crc32Hex(bytes) === "cbf43926");
 * ```
 */

const TABLE: Uint32Array = buildTable();

function buildTable(): Uint32Array {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
}

/** The CRC-32 of `bytes[start, end)` as an unsigned 32-bit integer. */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  let crc = 0xffffffff;
  for (let i = start; i < end; i++) crc = TABLE[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The CRC-32 of `bytes[start, end)` as 8 lowercase hex digits. */
export function crc32Hex(bytes: Uint8Array, start = 0, end = bytes.length): string {
  return crc32(bytes, start, end).toString(16).padStart(8, "0");
}
