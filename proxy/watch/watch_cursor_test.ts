import { assertEquals, assertThrows } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import { decodeWatchCursor, encodeWatchCursor, type WatchCursor } from "./watch_cursor.ts";

const base: WatchCursor = {
  epoch: 5,
  phase: "copying",
  ring: ["n1", "n2"],
  nodes: { n1: { boot: "b", low: 1, read: 2 } },
  pending: { k: null },
  lost: [],
};

/** The base64url text of `json`, as a cursor carries it. */
function textOf(json: unknown): string {
  return new TextEncoder().encode(JSON.stringify(json)).toBase64({
    alphabet: "base64url",
    omitPadding: true,
  });
}

Deno.test("a watch cursor carries its map's phase; one without it (an older proxy's) has none", () => {
  assertEquals(decodeWatchCursor(encodeWatchCursor(base)!), base);
  const old = decodeWatchCursor(textOf({ e: 5, r: ["n1"], n: {}, p: {}, x: [] }));
  assertEquals(old.phase, undefined);
});

Deno.test("a watch cursor with a phase that is not one of a map's is 400 invalid_cursor", () => {
  const text = textOf({ e: 5, h: "moving", r: ["n1"], n: {}, p: {}, x: [] });
  const err = assertThrows(() => decodeWatchCursor(text), RingkvError);
  assertEquals(err.code, "invalid_cursor");
});
