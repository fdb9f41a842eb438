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

/** Eight tables of 256 (slicing-by-8): table t maps a byte to its CRC after t more zero bytes. */
const TABLES: Uint32Array = buildTables();

function buildTables(): Uint32Array {
  const t = new Uint32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  for (let n = 0; n < 256; n++) {
    for (let k = 256; k < 2048; k += 256) {
      t[k + n] = (t[k - 256 + n]! >>> 8) ^ t[t[k - 256 + n]! & 0xff]!;
    }
  }
  return t;
}

/**
 * The CRC-32 of `bytes[start, end)` as an unsigned 32-bit integer: eight bytes per step
 * (twice the speed of a byte at a time; every log record is checksummed before its fsync).
 */
export function crc32(bytes: Uint8Array, start = 0, end = bytes.length): number {
  const t = TABLES;
  let crc = 0xffffffff;
  let i = start;
  for (; i + 8 <= end; i += 8) {
    const a = crc ^
      (bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24));
    crc = t[1792 + (a & 0xff)]! ^ t[1536 + ((a >>> 8) & 0xff)]! ^ t[1280 + ((a >>> 16) & 0xff)]! ^
      t[1024 + (a >>> 24)]! ^ t[768 + bytes[i + 4]!]! ^ t[512 + bytes[i + 5]!]! ^
      t[256 + bytes[i + 6]!]! ^ t[bytes[i + 7]!]!;
  }
  for (; i < end; i++) crc = t[(crc ^ bytes[i]!) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/** The CRC-32 of `bytes[start, end)` as 8 lowercase hex digits. */
export function crc32Hex(bytes: Uint8Array, start = 0, end = bytes.length): string {
  return crc32(bytes, start, end).toString(16).padStart(8, "0");
}
