import { assertEquals } from "@std/assert";
import { clipped } from "./errors.ts";

Deno.test("clipped() leaves a text of up to 100 characters whole, quoted when asked", () => {
  assertEquals(clipped("n1"), "n1");
  assertEquals(clipped("k", { quoted: true }), '"k"');
  assertEquals(clipped("é".repeat(100)), "é".repeat(100));
  // 100 characters of two UTF-16 units each: counted as characters, not units.
  assertEquals(clipped("😀".repeat(100), { quoted: true }), `"${"😀".repeat(100)}"`);
});

Deno.test("clipped() cuts a longer text to 80 characters and says its size in bytes, never longer", () => {
  assertEquals(clipped("x".repeat(3000)), `${"x".repeat(80)}... (3000 bytes)`);
  assertEquals(
    clipped("é".repeat(20_000), { quoted: true }),
    `"${"é".repeat(80)}..." (40000 bytes)`,
  );
  // Never inside a character: 80 whole emoji, no lone surrogate.
  assertEquals(clipped("😀".repeat(101)), `${"😀".repeat(80)}... (404 bytes)`);
  const text = "y".repeat(101);
  assertEquals(clipped(text).length < text.length, true);
});
