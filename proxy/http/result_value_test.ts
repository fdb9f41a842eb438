import { assertEquals } from "@std/assert";
import { resultByteLength, resultBytes, resultText } from "./result_value.ts";

const encoder = new TextEncoder();
const text = "h\u00e9llo \u{1F600}";
const binary = new Uint8Array([0xff, 0x00, 0xfe]);

Deno.test("a read result's value reads the same from text and from base64", () => {
  const asText = { status: 200, text };
  const asBase64 = { status: 200, value: encoder.encode(text).toBase64() };
  for (const r of [asText, asBase64]) {
    assertEquals(resultBytes(r), encoder.encode(text));
    assertEquals(resultByteLength(r), 11);
    assertEquals(resultText(r), text);
  }
});

Deno.test("a binary value has bytes and a length but no text", () => {
  const r = { status: 200, value: binary.toBase64() };
  assertEquals(resultBytes(r), binary);
  assertEquals(resultByteLength(r), 3);
  assertEquals(resultText(r), null);
  for (const n of [0, 1, 2, 4, 5]) {
    assertEquals(resultByteLength({ status: 200, value: new Uint8Array(n).toBase64() }), n);
  }
});
