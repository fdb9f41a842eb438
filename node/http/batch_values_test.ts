import { assertEquals, assertThrows } from "@std/assert";
import { BatchValues } from "./batch_values.ts";

const b64 = (bytes: number[]) => new Uint8Array(bytes).toBase64();

Deno.test("BatchValues.decode() gives each value's bytes, as Uint8Array.fromBase64 does", () => {
  const texts = [b64([]), b64([1]), b64([1, 2]), b64([1, 2, 3]), b64([255, 0, 254, 7, 9])];
  texts.push("AQ", "AQI", " A Q I D ", "/w==");
  const values = new BatchValues(texts);
  const decoded = texts.map((text) => values.decode(text));
  assertEquals(decoded, texts.map((text) => Uint8Array.fromBase64(text)));
  assertEquals(decoded[4]!.buffer, decoded[1]!.buffer, "one buffer for the whole call");
});

Deno.test("BatchValues.decode() keeps earlier values when a later one is not base64", () => {
  const values = new BatchValues(["aGk=", "not base64!", "eW8="]);
  const hi = values.decode("aGk=");
  assertThrows(() => values.decode("not base64!"), SyntaxError);
  const yo = values.decode("eW8=");
  assertEquals(new TextDecoder().decode(hi), "hi");
  assertEquals(new TextDecoder().decode(yo), "yo");
});

Deno.test("BatchValues.decode() refuses a text it has no room for", () => {
  const values = new BatchValues(["aGk="]);
  values.decode("aGk=");
  assertThrows(() => values.decode("aGk="), Error, "were not reserved");
});
