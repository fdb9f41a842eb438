import { assert, assertEquals } from "@std/assert";
import type { WireChange } from "../../node/http/change_routes.ts";
import { keyNeedle, LIVE_PAGES, PageStore, REPARSED_PAGES } from "./page_store.ts";
import { seededRandom as random } from "../../tests/doubles/seeded_random.ts";

/** Pieces of keys: JSON escapes some (quote, backslash, control), others are not ASCII. */
const PIECES = ["a", "b", '"', "\\", "\n", "é", "😀", "k", ":", "\u0001", "\u2028"];

function key(rand: () => number): string {
  let k = "";
  for (let n = 1 + Math.floor(rand() * 3); n > 0; n--) k += PIECES[Math.floor(rand() * 4)]!;
  return k + PIECES[Math.floor(rand() * PIECES.length)]!;
}

function change(s: number, rand: () => number): WireChange {
  const k = key(rand);
  const deleted = rand() < 0.2;
  return {
    s,
    k,
    ver: `v${s}`,
    prev: rand() < 0.3 ? null : `v${s - 1}`,
    v: deleted ? null : btoa(`value ${s} ü`),
    ...(deleted ? {} : { t: "text/plain" }),
  };
}

Deno.test("PageStore reads what an array of the same changes reads, pages live or parsed again", () => {
  for (let seed = 1; seed <= 30; seed++) {
    const rand = random(seed);
    const store = new PageStore();
    let all: WireChange[] = [];
    let seq = 0;
    const keep = 1 + Math.floor(rand() * 60);
    for (let round = 0; round < 40; round++) {
      const n = Math.floor(rand() * 12);
      const page = Array.from({ length: n }, () => change(++seq, rand));
      // The node's answer carries more than the changes: only `changes` is read back.
      store.push(page, JSON.stringify({ boot: "b", first: 1, last: seq, changes: page }));
      all.push(...page);
      store.trim(keep);
      // The array drops whole pages as the store does: as many changes as it holds remain.
      all = all.slice(all.length - store.size);
      assertEquals(store.first, all[0]?.s, `seed ${seed} round ${round}`);
      assertEquals(store.newest, all.at(-1)?.s);
      const after = (all[0]?.s ?? seq + 1) - 1 + Math.floor(rand() * (all.length + 1));
      const later = all.filter((c) => c.s > after);
      const forward: WireChange[] = [];
      store.scan(after, (c) => void forward.push(c));
      assertEquals(forward, later, `seed ${seed} round ${round} after ${after}`);
      const backward: WireChange[] = [];
      store.scan(after, (c) => void backward.push(c), { backwards: true });
      assertEquals(backward, later.toReversed());
      // With a prefix, pages may be left out, never a change under it.
      const prefix = key(rand).slice(0, Math.floor(rand() * 3));
      const under = (c: WireChange) => c.k.startsWith(prefix);
      for (const backwards of [false, true]) {
        const got: WireChange[] = [];
        store.scan(after, (c) => void got.push(c), { prefix, backwards });
        const want = later.filter(under);
        assertEquals(got.filter(under), backwards ? want.toReversed() : want, `prefix ${prefix}`);
      }
      // With keys (few: each looked for in the text; many: every page read), their changes all.
      const keys = new Set(
        Array.from(
          { length: 1 + Math.floor(rand() * 10) },
          () => rand() < 0.5 ? key(rand) : all[Math.floor(rand() * all.length)]?.k ?? "",
        ),
      );
      const got: WireChange[] = [];
      store.scan(after, (c) => void got.push(c), { keys });
      const mine = (c: WireChange) => keys.has(c.k);
      assertEquals(got.filter(mine), later.filter(mine), `keys ${[...keys]}`);
      // A visit that returns true stops the scan there.
      const stopAt = Math.floor(rand() * (later.length + 1));
      const some: number[] = [];
      store.scan(after, (c) => some.push(c.s) > stopAt);
      assertEquals(some, later.slice(0, stopAt + 1).map((c) => c.s));
    }
  }
});

Deno.test("PageStore keeps the parsed changes of its newest pages only", () => {
  const store = new PageStore();
  const pages: WireChange[][] = [];
  for (let p = 0; p < LIVE_PAGES + 2; p++) {
    const page = [{ s: p + 1, k: `k${p}`, ver: `v${p}`, prev: null, v: null }];
    pages.push(page);
    store.push(page, JSON.stringify({ changes: page }));
  }
  const seen: WireChange[] = [];
  store.scan(0, (c) => void seen.push(c));
  // The same objects for live pages, equal copies parsed from the text for older ones.
  seen.forEach((c, p) => {
    const live = p >= pages.length - LIVE_PAGES;
    assertEquals(c === pages[p]![0], live, `page ${p}`);
    assertEquals(c, pages[p]![0]);
  });
});

Deno.test("keyNeedle() is in a change's JSON exactly when its key starts with the prefix", () => {
  const rand = random(7);
  for (let i = 0; i < 2000; i++) {
    const k = key(rand);
    const prefix = key(rand).slice(0, Math.floor(rand() * 4));
    const text = JSON.stringify({ changes: [{ s: 1, k, ver: "v", prev: null, v: null }] });
    const needle = keyNeedle(prefix);
    // No needle (every page read) only for "" and half a surrogate pair.
    assertEquals(needle === "", prefix === "" || !prefix.isWellFormed(), `needle for ${prefix}`);
    if (needle !== "") {
      assertEquals(text.includes(needle), k.startsWith(prefix), `${k} / ${prefix}`);
    }
  }
  assertEquals(keyNeedle("😀".slice(0, 1)), "");
});

Deno.test("PageStore leaves out old pages with no key under the prefix, unparsed", () => {
  const store = new PageStore();
  const other = [{ s: 1, k: "b1", ver: "v1", prev: null, v: null }];
  // Not JSON: parsing this page would throw, so a read under "a" must not parse it.
  store.push(other, '{"changes": [{"k":"b1" broken');
  for (let p = 0; p < LIVE_PAGES; p++) {
    store.push([{ s: p + 2, k: "a", ver: `v${p}`, prev: null, v: null }], "{}");
  }
  const seen: number[] = [];
  store.scan(0, (c) => void seen.push(c.s), { prefix: "a" });
  assertEquals(seen, [2, 3, 4, 5]);
});

Deno.test("PageStore parses old pages whose text spells keys otherwise (spaces, \\u escapes, \\/) instead of skipping them", () => {
  const spellings: Record<string, (c: object) => string> = {
    "a space after each colon": (c) => JSON.stringify({ changes: [c] }, null, 1),
    "non-ASCII as \\u escapes": (c) =>
      JSON.stringify({ changes: [c] }).replace(
        /[\u0080-\uffff]/g,
        (ch) => "\\u" + ch.charCodeAt(0).toString(16).padStart(4, "0"),
      ),
    "'/' as \\/": (c) => JSON.stringify({ changes: [c] }).replaceAll("/", "\\/"),
  };
  for (const [name, spell] of Object.entries(spellings)) {
    const store = new PageStore();
    const old = { s: 1, k: "users/é1", ver: "v1", prev: null, v: null };
    store.push([old], spell(old));
    for (let p = 0; p < LIVE_PAGES; p++) {
      const c = { s: p + 2, k: "other", ver: `v${p}`, prev: null, v: null };
      store.push([c], JSON.stringify({ changes: [c] }));
    }
    const under: number[] = [];
    store.scan(0, (c) => void (c.k.startsWith("users/é") && under.push(c.s)), {
      prefix: "users/é",
    });
    assertEquals(under, [1], name);
  }
});

/** A store of `n` pages of one change each (key `k<p>`), as a node's JSON. */
function pagesOf(n: number): PageStore {
  const store = new PageStore();
  for (let p = 0; p < n; p++) {
    const c = { s: p + 1, k: `k${p}`, ver: `v${p}`, prev: null, v: null };
    store.push([c], JSON.stringify({ changes: [c] }));
  }
  return store;
}

Deno.test("PageStore parses an old page once for every read behind the live pages, and keeps at most REPARSED_PAGES of them parsed", () => {
  const old = REPARSED_PAGES;
  const store = pagesOf(old + LIVE_PAGES);
  // Ten streams behind the live pages, each at its own position among the old ones.
  for (let reader = 0; reader < 10; reader++) {
    const seen: number[] = [];
    store.scan(reader % old, (c) => void seen.push(c.s));
    assertEquals(seen.length, old + LIVE_PAGES - (reader % old));
  }
  assertEquals(store.parses, old, "each old page parsed once");
  // One more old page parsed again pushes the oldest kept one out: read again, parsed again.
  const more = pagesOf(old + 1 + LIVE_PAGES);
  // Reads of the old pages newest first (scan(s) reads page s first).
  for (let s = old; s >= 0; s--) more.scan(s, () => true);
  assertEquals(more.parses, old + 1);
  more.scan(0, () => true);
  assertEquals(more.parses, old + 1, "the last page parsed again is kept");
  more.scan(old, () => true);
  assertEquals(more.parses, old + 2, "the first one parsed was dropped");
  // Trimmed pages are forgotten with their parsed changes; what remains reads the same.
  more.trim(LIVE_PAGES);
  const left: number[] = [];
  more.scan(0, (c) => void left.push(c.s));
  assertEquals(left, Array.from({ length: LIVE_PAGES }, (_, i) => old + 2 + i));
  assertEquals(more.parses, old + 2, "the live pages are not parsed again");
});

Deno.test("PageStore leaves out old pages that hold none of a few keys, unparsed; many keys read every page", () => {
  const store = new PageStore();
  // Not JSON: parsing this page would throw. "ab" is no change of "a" (the needle ends its key).
  store.push([{ s: 1, k: "ab", ver: "v1", prev: null, v: null }], '{"changes": [{"k":"ab" broken');
  for (let p = 0; p < LIVE_PAGES; p++) {
    store.push([{ s: p + 2, k: "a", ver: `v${p}`, prev: null, v: null }], "{}");
  }
  const seen: number[] = [];
  store.scan(0, (c) => void seen.push(c.s), { keys: new Set(["a", "zz"]) });
  assertEquals([seen, store.parses], [[2, 3, 4, 5], 0]);
  const many = pagesOf(1 + LIVE_PAGES);
  const keys = new Set(Array.from({ length: 9 }, (_, i) => `other${i}`));
  many.scan(0, () => {}, { keys });
  assertEquals(many.parses, 1);
});

Deno.test("PageStore.trim() with maxBytes holds at most that many bytes of text, the newest pages, in order", () => {
  const rand = random(11);
  const store = new PageStore();
  const maxBytes = 100_000;
  let all: WireChange[] = [];
  let seq = 0;
  for (let round = 0; round < 200; round++) {
    // Values of 0 to 60 KB: a page of one can take half the cap, one of three more than all of it.
    const page = Array.from({ length: 1 + Math.floor(rand() * 3) }, () => {
      const s = ++seq;
      return { s, k: `k${s % 7}`, ver: `v${s}`, prev: null, v: btoa("x".repeat(rand() * 45_000)) };
    });
    const text = JSON.stringify({ changes: page });
    store.push(page, text);
    all.push(...page);
    store.trim(20_000, maxBytes);
    assert(store.bytes <= maxBytes, `round ${round}: ${store.bytes} bytes held`);
    all = all.slice(all.length - store.size);
    const held: WireChange[] = [];
    store.scan((store.first ?? seq + 1) - 1, (c) => void held.push(c));
    assertEquals(held, all, `round ${round}`);
    assertEquals(store.newest === undefined || store.newest === seq, true);
    if (text.length > maxBytes) assertEquals(store.size, 0, "a page over the cap is not held");
  }
});
