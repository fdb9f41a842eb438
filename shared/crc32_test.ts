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
