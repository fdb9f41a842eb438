import { assertEquals, assertNotEquals } from "@std/assert";
import { crc32, crc32Hex } from "./crc32.ts";

const encoder = new TextEncoder();

Deno.test("crc32() matches the standard check value of '123456789'", () => {
  assertEquals(crc32(encoder.encode("123456789")), 0xcbf43926);
});

Deno.test("crc32() of nothing is 0 and of known strings matches zlib", () => {
  assertEquals(crc32(new Uint8Array(0)), 0);
  assertEquals(crc32Hex(encoder.encode("The quick brown fox jumps over the lazy dog")), "414fa339");
  assertEquals(crc32Hex(new Uint8Array([0])), "d202ef8d");
});

Deno.test("crc32() covers only [start, end) and pads hex to 8 digits", () => {
  const bytes = encoder.encode("xx123456789yy");
  assertEquals(crc32(bytes, 2, 11), 0xcbf43926);
  assertEquals(crc32Hex(encoder.encode("a")).length, 8);
});

Deno.test("crc32() changes when any single bit flips", () => {
  const bytes = encoder.encode("ringkv write-ahead log line");
  const base = crc32(bytes);
  for (let i = 0; i < bytes.length; i++) {
    for (let bit = 0; bit < 8; bit++) {
      const copy = bytes.slice();
      copy[i]! ^= 1 << bit;
      assertNotEquals(crc32(copy), base);
    }
  }
});

Deno.test("crc32() eight bytes at a time equals the byte-at-a-time CRC at every length and offset", () => {
  const table = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const slow = (b: Uint8Array, start: number, end: number) => {
    let crc = 0xffffffff;
    for (let i = start; i < end; i++) crc = table[(crc ^ b[i]!) & 0xff]! ^ (crc >>> 8);
    return (crc ^ 0xffffffff) >>> 0;
  };
  const bytes = new Uint8Array(300).map((_, i) => (i * 151 + 7) & 0xff);
  for (let start = 0; start < 9; start++) {
    for (let end = start; end <= bytes.length; end += 7) {
      assertEquals(crc32(bytes, start, end), slow(bytes, start, end), `[${start}, ${end})`);
    }
  }
});
