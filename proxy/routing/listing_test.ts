import { assert, assertEquals, assertThrows } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import type { WireEntry } from "../../shared/wire.ts";
import { decodeCursor, encodeCursor, type FetchPage, listLive, ListMerge } from "./listing.ts";

type Store = Record<string, WireEntry[]>;

const live = (k: string, ver = "v1"): WireEntry => ({ k, v: "", ver, h: 0 });
const dead = (k: string, ver: string): WireEntry => ({ k, v: null, ver, h: 0 });

/** Pages like GET /internal/keys: sorted, `> after`, at most `size`; records each call. */
function pagesOf(store: Store, size: number, calls: string[] = []): FetchPage {
  return (nodeId, after, asked) => {
    calls.push(`${nodeId}>${after ?? ""}`);
    const all = [...store[nodeId]!].sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0))
      .filter((e) => after === undefined || e.k > after);
    const n = Math.min(size, asked);
    return Promise.resolve({ entries: all.slice(0, n), more: all.length > n });
  };
}

const SCAN = { maxPage: 1000 };

/** Every page of a listing, following the cursor like a client. */
async function listAll(store: Store, limit: number, pageSize: number): Promise<string[][]> {
  const pages: string[][] = [];
  let after: string | undefined;
  for (let i = 0; i < 100; i++) {
    const page = await listLive(Object.keys(store), after, limit, pagesOf(store, pageSize), SCAN);
    pages.push(page.entries.map((e) => e.k));
    if (!page.more) return pages;
    after = decodeCursor(encodeCursor(page.passed!), 1024);
  }
  throw new Error("listing did not finish in 100 pages");
}

Deno.test("listLive() returns every key of every node once, in key order", async () => {
  const keys = Array.from({ length: 40 }, (_, i) => `key${String(i).padStart(2, "0")}`);
  const store: Store = { n1: [], n2: [], n3: [] };
  keys.forEach((k, i) => store[`n${(i * 7) % 3 + 1}`]!.push(live(k)));
  for (const [limit, pageSize] of [[7, 3], [40, 40], [1, 1], [100, 5]] as const) {
    const pages = await listAll(store, limit, pageSize);
    assertEquals(pages.flat(), keys, `limit ${limit}, page size ${pageSize}`);
    for (const page of pages.slice(0, -1)) assertEquals(page.length, limit);
  }
});

Deno.test("listLive() lists a key held by two nodes once and drops it when the newer copy is a tombstone", async () => {
  const store: Store = {
    n1: [live("a", "v1"), live("b", "v1"), live("c", "v3"), live("d", "v1"), live("f", "v1")],
    n2: [live("a", "v2"), dead("b", "v2"), dead("c", "v2"), live("e", "v1"), dead("f", "v2")],
    n3: [dead("d", "v0"), live("g", "v1")],
  };
  const page = await listLive(["n1", "n2", "n3"], undefined, 100, pagesOf(store, 2), SCAN);
  assertEquals(page.entries.map((e) => [e.k, e.ver]), [
    ["a", "v2"],
    ["c", "v3"],
    ["d", "v1"],
    ["e", "v1"],
    ["g", "v1"],
  ]);
  assertEquals(page.more, false);
  assertEquals((await listAll(store, 2, 1)).flat(), ["a", "c", "d", "e", "g"]);
});

Deno.test("listLive() keeps reading past runs of tombstones until it has `limit` live keys", async () => {
  const store: Store = {
    n1: Array.from({ length: 20 }, (_, i) => dead(`a${String(i).padStart(2, "0")}`, "v1")),
    n2: [live("b1"), live("b2"), live("b3")],
  };
  const page = await listLive(["n1", "n2"], undefined, 2, pagesOf(store, 3), SCAN);
  assertEquals(page.entries.map((e) => e.k), ["b1", "b2"]);
  assertEquals(page.more, true);
});

Deno.test("listLive() reads a range of tombstones in few, growing pages and stops after its rounds with a cursor past them", async () => {
  // Security review: limit=1 over 20,000 deleted keys took a round per tombstone (19 s).
  const pad = (i: number) => String(i).padStart(5, "0");
  const store: Store = {
    n1: Array.from({ length: 20_000 }, (_, i) => dead(`t${pad(i)}`, "v1")),
    n2: [
      live("a"),
      ...Array.from({ length: 20_000 }, (_, i) => dead(`t${pad(i)}`, "v1")),
      live("z"),
    ],
  };
  const sizes: number[] = [];
  const counting: FetchPage = (id, after, size) => {
    sizes.push(size);
    return pagesOf(store, 1000)(id, after, size);
  };
  const first = await listLive(["n1", "n2"], "a", 1, counting, { maxPage: 1000, maxRounds: 5 });
  assertEquals([first.entries, first.more], [[], true]);
  assertEquals(sizes, [1, 1, 8, 8, 64, 64, 512, 512, 1000, 1000]);
  assert(first.passed! > "t01000", `a cursor past the tombstones read: ${first.passed}`);
  // A client following the cursors gets every live key once, in a bounded number of pages.
  const pages = await listAll(store, 1, 1000);
  assertEquals(pages.flat(), ["a", "z"]);
  assert(pages.length <= 4, `${pages.length} pages`);
});

Deno.test("listLive() starts after the cursor key and asks each node from there", async () => {
  const store: Store = { n1: [live("a"), live("c")], n2: [live("b"), live("d")] };
  const calls: string[] = [];
  const page = await listLive(["n1", "n2"], "b", 10, pagesOf(store, 10, calls), SCAN);
  assertEquals(page.entries.map((e) => e.k), ["c", "d"]);
  assertEquals(calls, ["n1>b", "n2>b"]);
});

Deno.test("listLive() finishes when a node says more but returns nothing", async () => {
  const page = await listLive(
    ["n1"],
    undefined,
    10,
    () => Promise.resolve({ entries: [], more: true }),
    SCAN,
  );
  assertEquals(page, { entries: [], more: false, passed: undefined });
});

Deno.test("ListMerge.take() hands out nothing past a node that has more to give", () => {
  const merge = new ListMerge(["n1", "n2"], undefined);
  merge.feed("n1", { entries: [live("a"), live("b")], more: true });
  merge.feed("n2", { entries: [live("a", "v2"), live("c")], more: false });
  assertEquals(merge.take(10).map((e) => [e.k, e.ver]), [["a", "v2"], ["b", "v1"]]);
  assertEquals(merge.wanted(), [{ nodeId: "n1", after: "b" }]);
});

Deno.test("decodeCursor() reverses encodeCursor() and refuses anything else with invalid_cursor", () => {
  for (const key of ["a", "users/42", "ü €/x?&=", "😀", "\uFEFFbom"]) {
    assertEquals(decodeCursor(encodeCursor(key), 1024), key);
  }
  // No key: too long, a control character, empty (security review: long ones made a 502).
  const noKeys = ["/".repeat(1025), "\u0000".repeat(6000), "a\nb", "."].map(encodeCursor);
  for (const bad of ["***", "a+b/", "_w", "*".repeat(8192), ...noKeys]) {
    const err = assertThrows(() => decodeCursor(bad, 1024), RingkvError);
    assertEquals([err.code, err.status], ["invalid_cursor", 400]);
    assert(err.message.length < 200, `the message echoes the whole cursor: ${err.message.length}`);
  }
});
