import { assertEquals, assertThrows } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import {
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

/** The JSON value in a cursor's text (what any proxy, older or newer, parses). */
function valueOf(text: string): unknown {
  return JSON.parse(
    new TextDecoder("utf-8", { fatal: true }).decode(
      Uint8Array.fromBase64(text, { alphabet: "base64url" }),
    ),
  );
}

Deno.test("encodeWatchCursor() writes the cursor's JSON in UTF-8 base64url, for keys that need escaping or are not ASCII", () => {
  for (let seed = 1; seed <= 200; seed++) {
    const c = randomCursor(lcg(seed));
    const text = encodeWatchCursor(c);
    const whole = textOf(jsonOf(c));
    if (text === undefined) {
      // Refused only near the limit: the pieces' padding adds at most 2 bytes each.
      assertEquals(
        whole.length > MAX_CURSOR_CHARS - 4 * (3 + c.pending.size),
        true,
        `seed ${seed}`,
      );
      continue;
    }
    assertEquals(text.length <= MAX_CURSOR_CHARS, true);
    assertEquals(valueOf(text), jsonOf(c), `seed ${seed}`);
    assertEquals(decodeWatchCursor(text), c, `seed ${seed}`);
  }
});

const ODD = ['k"q', "k\\b", "k\n", "ключ/ü", "😀", "\u0001", "a b", "", "__proto__"];

/** A cursor with keys, boots and node ids that need escaping or are not ASCII. */
function randomCursor(r: (n: number) => number): WatchCursor {
  const nodes: WatchCursor["nodes"] = {};
  for (let i = 0; i < r(5); i++) {
    nodes[`n${i}${r(4) === 0 ? "é" : ""}`] = {
      boot: `b${r(1000)}-${ODD[r(ODD.length)]}`,
      low: r(1e6),
      read: r(1e9),
    };
  }
  const pending = new Map<string, string | null>();
  for (let i = 0; i < r(8); i++) {
    pending.set(`${ODD[r(ODD.length)]}${r(100)}`, r(3) === 0 ? null : `0192a3b4c5d6-000${r(9)}-p1`);
  }
  return {
    epoch: r(100),
    nodes,
    pending,
    lost: Array.from({ length: r(3) }, (_, i) => `n${i}`),
    ...(r(2) === 0 ? {} : { ring: ["n1", "n2", "n3"].slice(0, 1 + r(3)) }),
    ...(r(2) === 0 ? {} : { phase: (["stable", "copying", "cleanup"] as const)[r(3)] }),
  };
}

Deno.test("encodeWatchCursor() refuses a cursor longer than MAX_CURSOR_CHARS (the stream says compacted)", () => {
  const pending = new Map<string, string | null>();
  for (let i = 0; i < 400; i++) pending.set(`key/${i}`, "0192a3b4c5d6-0000-p1");
  assertEquals(encodeWatchCursor({ ...base, pending }), undefined);
  const fits = encodeWatchCursor(base)!;
  assertEquals(fits.length <= MAX_CURSOR_CHARS, true);
});
