import { assertEquals } from "@std/assert";
import type { WriteOp } from "./engine.ts";
import type { Stored } from "./packed.ts";
import {
  ENTRY_JSON_BYTES as E,
  ingestBytes,
  ingestGrowth,
  storeEstimate,
  writeBytes,
  writeGrowth,
} from "./size_estimates.ts";

const VER = "018bcfe56800-0000-n1";

function text(data: string): Stored {
  return { kind: "text", data, hash: 1, contentType: "text/plain", version: VER };
}

function held(entries: Record<string, Stored>) {
  return { stored: (key: string) => entries[key] };
}

function put(key: string, value: string): WriteOp {
  return { op: "put", key, value: new TextEncoder().encode(value), contentType: "text/plain" };
}

Deno.test("storeEstimate() counts the values and an entry's bytes per key and tombstone", () => {
  assertEquals(storeEstimate({ keys: 2, tombstones: 1, valueBytes: 50 }), 50 + 3 * E);
  assertEquals(storeEstimate({ keys: 0, tombstones: 0, valueBytes: 0 }), 0);
});

Deno.test("writeBytes() and ingestBytes() count each op's entry, key and value", () => {
  const del: WriteOp = { op: "delete", key: "gone" };
  assertEquals(writeBytes([put("k", "hello"), del]), E + 1 + 5 + E + 4);
  const ver = VER;
  const entries = [{ k: "k", v: "aGk=", t: "text/plain", ver, h: 1 }, {
    k: "d",
    v: null,
    ver,
    h: 2,
  }];
  assertEquals(ingestBytes(entries), E + 1 + 4 + E + 1);
});

Deno.test("writeGrowth() counts a new key whole, an overwrite by its growth, never a shrinking", () => {
  const store = held({ small: text("ab"), large: text("abcdefgh") });
  assertEquals(writeGrowth([put("new", "xyz")], store), E + 3 + 3);
  assertEquals(writeGrowth([put("small", "abcde")], store), 3);
  assertEquals(writeGrowth([put("large", "a")], store), 0);
  // The shrinking overwrite does not hide the other op's growth.
  assertEquals(writeGrowth([put("large", "a"), put("small", "abcde")], store), 3);
  assertEquals(writeGrowth([{ op: "delete", key: "none" }], store), E + 4, "a new tombstone");
  assertEquals(writeGrowth([{ op: "delete", key: "small" }], store), 0);
});

Deno.test("writeGrowth() counts a binary value held as base64 at its size in bytes", () => {
  const binary: Stored = { ...text("AAAAAAAA"), kind: "base64" }; // 6 bytes
  assertEquals(writeGrowth([put("b", "1234567")], held({ b: binary })), 1);
});

Deno.test("ingestGrowth() counts a new entry whole and an overwrite by its growth", () => {
  const store = held({ a: text("abc") });
  const entries = [
    { key: "a", stored: text("abcdef") },
    { key: "n", stored: text("xy") },
    { key: "a", stored: text("a") },
  ];
  assertEquals(ingestGrowth(entries, store), 3 + (E + 2) + 0);
});
