import { assert, assertEquals } from "@std/assert";
import { aligned, CursorText, KEEP_ENTRIES, MAX_CURSOR_CHARS } from "./cursor_text.ts";
import { decodeWatchCursor, type WatchCursor } from "./watch_cursor.ts";

/** A small deterministic generator (tests repeat). */
function lcg(seed: number): (n: number) => number {
  let x = seed;
  return (n) => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % n;
  };
}

const KEYS = ["a", "users/1", 'q"uote', "ключ", "😀/x", "k\n", "__proto__", "z".repeat(40)];

/** One event's cursor of a stream whose state moves a little at a time, as a merge's does. */
function step(r: (n: number) => number, prev: WatchCursor | undefined): WatchCursor {
  const pending = new Map(prev?.pending ?? []);
  for (let i = 0; i < 1 + r(3); i++) {
    const key = KEYS[r(KEYS.length)]!;
    if (r(3) === 0) pending.delete(key);
    else pending.set(key, r(4) === 0 ? null : `0192a3b4c5d6-000${r(10)}-p${r(3)}`);
  }
  const nodes: WatchCursor["nodes"] = {};
  for (const id of ["n1", "n2", r(5) === 0 ? "nœ" : "n3"]) {
    const was = prev?.nodes[id];
    const low = (was?.low ?? 0) + r(3);
    nodes[id] = { boot: r(20) === 0 ? "b2" : "b1", low, read: low + r(50) };
  }
  return {
    epoch: prev === undefined || r(10) > 0 ? prev?.epoch ?? 1 : prev.epoch + 1,
    nodes,
    pending,
    lost: r(10) === 0 ? ["n4"] : [],
    ring: ["n1", "n2", "n3"],
    ...(r(2) === 0 ? {} : { phase: (["stable", "copying", "cleanup"] as const)[r(3)] }),
  };
}

Deno.test("CursorText reused across a stream's events writes each event's own state, never a kept piece of an earlier one", () => {
  for (let seed = 1; seed <= 50; seed++) {
    const r = lcg(seed);
    const texts = new CursorText();
    let c: WatchCursor | undefined;
    for (let i = 0; i < 200; i++) {
      c = step(r, c);
      const text = texts.encode(c)!;
      assertEquals(decodeWatchCursor(text), c, `seed ${seed}, event ${i}`);
      assertEquals(text, new CursorText().encode(c), `seed ${seed}, event ${i}`);
    }
  }
});

Deno.test("CursorText.encode(c, key, version) resumes after an earlier event of a batch: that key's later versions stay pending", () => {
  const texts = new CursorText();
  const nodes = { n1: { boot: "b", low: 3, read: 9 } };
  const pending = new Map<string, string | null>([["a", "v1"], ["b", null]]);
  const c: WatchCursor = { epoch: 2, nodes, pending, lost: [] };
  // The key waits in the cursor: its entry says the earlier event's version.
  assertEquals(
    decodeWatchCursor(texts.encode(c, "a", "v2")!).pending,
    new Map([["a", "v2"], ["b", null]]),
  );
  // The key does not wait (its last version made the batch due): it is added.
  assertEquals(
    decodeWatchCursor(texts.encode(c, "k", "v7")!).pending,
    new Map([["a", "v1"], ["b", null], ["k", "v7"]]),
  );
  const alone: WatchCursor = { ...c, pending: new Map() };
  assertEquals(decodeWatchCursor(texts.encode(alone, "k", null)!).pending, new Map([["k", null]]));
  // And the kept pieces do not leak into the next event's cursor.
  assertEquals(decodeWatchCursor(texts.encode(c)!).pending, pending);
});

Deno.test("a cursor written in one piece (an older proxy's) and in pieces decode to the same state", () => {
  const c: WatchCursor = {
    epoch: 7,
    phase: "stable",
    ring: ["n1", "n2"],
    nodes: { n1: { boot: "b", low: 1, read: 5 }, n2: { boot: "c", low: 2, read: 6 } },
    pending: new Map([["users/1", "0192a3b4c5d6-0001-p1"], ["ключ", null]]),
    lost: ["n3"],
  };
  const json = JSON.stringify({
    e: 7,
    h: "stable",
    r: ["n1", "n2"],
    n: { n1: ["b", 1, 5], n2: ["c", 2, 6] },
    p: { "users/1": "0192a3b4c5d6-0001-p1", "ключ": null },
    x: ["n3"],
  });
  const old = new TextEncoder().encode(json).toBase64({ alphabet: "base64url", omitPadding: true });
  assertEquals(decodeWatchCursor(old), decodeWatchCursor(new CursorText().encode(c)!));
});

Deno.test("CursorText refuses a cursor longer than MAX_CURSOR_CHARS, and only such a one", () => {
  const texts = new CursorText();
  const nodes = { n1: { boot: "b", low: 1, read: 2 } };
  let longest = 0;
  for (let n = 1; n < 400; n++) {
    const pending = new Map<string, string | null>();
    for (let i = 0; i < n; i++) pending.set(`key/${i}`, i % 2 ? null : "0192a3b4c5d6-0000-p1");
    const c: WatchCursor = { epoch: 1, nodes, pending, lost: [] };
    const text = texts.encode(c);
    const fresh = new CursorText().encode(c);
    assertEquals(text, fresh);
    if (text === undefined) {
      // A few keys fewer fit than in one piece (each entry's padding), never more than the limit.
      assert(n > 100, `refused at ${n} keys`);
      break;
    }
    assert(text.length <= MAX_CURSOR_CHARS);
    longest = Math.max(longest, text.length);
  }
  assert(longest > MAX_CURSOR_CHARS - 100, `the longest cursor written: ${longest}`);
});

Deno.test("aligned() pads to whole 3-byte groups, so joined pieces are the base64 of the joined text", () => {
  const pieces = ["{", '"a":1,', "ключ", "😀", "xy", "abc"];
  let joined = "";
  let text = "";
  for (const p of pieces) {
    const b64 = aligned(p);
    assert(!b64.includes("="));
    text += b64;
    const bytes = new TextEncoder().encode(p).length;
    joined += p + " ".repeat((3 - bytes % 3) % 3);
  }
  assertEquals(
    new TextDecoder().decode(Uint8Array.fromBase64(text, { alphabet: "base64url" })),
    joined,
  );
});

Deno.test("CursorText keeps at most KEEP_ENTRIES keys' pieces, and its cursors stay right past a clear", () => {
  const texts = new CursorText();
  const nodes = { n1: { boot: "b", low: 1, read: 2 } };
  for (let i = 0; i < 3 * KEEP_ENTRIES; i++) {
    const pending = new Map<string, string | null>([[`k${i}`, `v${i}`], [`k${i + 1}`, null]]);
    const c: WatchCursor = { epoch: 1, nodes, pending, lost: [] };
    assertEquals(decodeWatchCursor(texts.encode(c)!), c, `event ${i}`);
    assert(texts.cachedEntries <= KEEP_ENTRIES, `${texts.cachedEntries} kept at event ${i}`);
  }
});
