import { assertEquals, assertThrows } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import {
  cursorJson,
  decodeWatchCursor,
  encodeWatchCursor,
  MAX_CURSOR_CHARS,
  type WatchCursor,
} from "./watch_cursor.ts";

const base: WatchCursor = {
  epoch: 5,
  phase: "copying",
  ring: ["n1", "n2"],
  nodes: { n1: { boot: "b", low: 1, read: 2 } },
  pending: new Map([["k", null]]),
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

/** The cursor's JSON value in the format cursors have always had. */
function jsonOf(c: WatchCursor): unknown {
  const n = Object.fromEntries(
    Object.entries(c.nodes).map(([id, p]) => [id, [p.boot, p.low, p.read]]),
  );
  const p = Object.fromEntries(c.pending);
  return JSON.parse(JSON.stringify({ e: c.epoch, h: c.phase, r: c.ring, n, p, x: c.lost }));
}

/** A small deterministic generator (tests repeat). */
function lcg(seed: number): (n: number) => number {
  let x = seed;
  return (n) => {
    x = (x * 1103515245 + 12345) % 2147483648;
    return x % n;
  };
}

Deno.test("encodeWatchCursor() writes the cursor's JSON in UTF-8 base64url, for keys that need escaping or are not ASCII", () => {
  const odd = ['k"q', "k\\b", "k\n", "ключ/ü", "😀", "\u0001", "a b", "", "__proto__"];
  for (let seed = 1; seed <= 200; seed++) {
    const r = lcg(seed);
    const nodes: WatchCursor["nodes"] = {};
    for (let i = 0; i < r(5); i++) {
      nodes[`n${i}`] = { boot: `b${r(1000)}-${odd[r(odd.length)]}`, low: r(1e6), read: r(1e9) };
    }
    const pending = new Map<string, string | null>();
    for (let i = 0; i < r(8); i++) {
      pending.set(
        `${odd[r(odd.length)]}${r(100)}`,
        r(3) === 0 ? null : `0192a3b4c5d6-000${r(9)}-p1`,
      );
    }
    const c: WatchCursor = {
      epoch: r(100),
      nodes,
      pending,
      lost: Array.from({ length: r(3) }, (_, i) => `n${i}`),
      ...(r(2) === 0 ? {} : { ring: ["n1", "n2", "n3"].slice(0, 1 + r(3)) }),
      ...(r(2) === 0 ? {} : { phase: (["stable", "copying", "cleanup"] as const)[r(3)] }),
    };
    const json = cursorJson(c);
    assertEquals(JSON.parse(json), jsonOf(c), `seed ${seed}`);
    const text = textOf(JSON.parse(json));
    assertEquals(encodeWatchCursor(c), text.length > MAX_CURSOR_CHARS ? undefined : text);
    if (text.length <= MAX_CURSOR_CHARS) assertEquals(decodeWatchCursor(text), c);
  }
});

Deno.test("encodeWatchCursor() refuses a cursor longer than MAX_CURSOR_CHARS (the stream says compacted)", () => {
  const pending = new Map<string, string | null>();
  for (let i = 0; i < 400; i++) pending.set(`key/${i}`, "0192a3b4c5d6-0000-p1");
  assertEquals(encodeWatchCursor({ ...base, pending }), undefined);
  const fits = encodeWatchCursor(base)!;
  assertEquals(fits.length <= MAX_CURSOR_CHARS, true);
});
