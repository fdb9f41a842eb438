import { assertEquals } from "@std/assert";
import type { WireEntry } from "../../shared/wire.ts";
import { EntryTexts } from "./accept_body.ts";

const entries: WireEntry[] = [
  { k: "a", v: "aGk=", t: "text/plain", ver: "018c0000aaaa-0001-p1", h: 7 },
  { k: 'quote " and \\ and é', v: null, ver: "018c0000aaaa-0002-p1", h: 0 },
  { k: "no type", v: "", t: undefined, ver: "018c0000aaaa-0003-p1", h: 4294967295 },
];

Deno.test("EntryTexts.acceptBody() is JSON.stringify({ entries }) byte for byte", () => {
  const texts = new EntryTexts();
  for (const list of [[], entries.slice(0, 1), entries.slice(1, 2), entries]) {
    assertEquals(texts.acceptBody(list), JSON.stringify({ entries: list }));
    assertEquals(JSON.parse(texts.acceptBody(list)), JSON.parse(JSON.stringify({ entries: list })));
  }
});

/** A copy of `entries[0]` that counts the reads of its key (JSON.stringify reads it once). */
function counted(reads: { n: number }): WireEntry {
  const entry = { ...entries[0]! };
  Object.defineProperty(entry, "k", { enumerable: true, get: () => (reads.n++, "a") });
  return entry;
}

Deno.test("EntryTexts encodes an entry once for all the calls it goes in", () => {
  const texts = new EntryTexts();
  const reads = { n: 0 };
  const entry = counted(reads);
  const bodies = [1, 2, 3].map(() => texts.acceptBody([entry, entries[1]!]));
  assertEquals(reads.n, 1);
  assertEquals(new Set(bodies).size, 1);
  assertEquals(bodies[0], JSON.stringify({ entries: [entries[0], entries[1]] }));
  // An equal but distinct object is encoded on its own: the texts are kept by object.
  const other = { n: 0 };
  texts.textOf(counted(other));
  assertEquals(other.n, 1);
});
