import { assert, assertEquals, assertThrows } from "@std/assert";
import { formatVersion, HybridClock, parseVersion } from "../../shared/version.ts";
import type { PutOp } from "./engine.ts";
import { MAX_FIELD_CHARS, Packer } from "./packed.ts";
import { RingkvError } from "../../shared/errors.ts";
import { Store } from "./store.ts";
import { withExpiry } from "../../shared/expiry.ts";

const encoder = new TextEncoder();
const T0 = 1_700_000_000_000;

function newStore(now = () => T0): Store {
  return new Store(new HybridClock("n1", now));
}

function put(key: string, value: string, extra: Partial<PutOp> = {}): PutOp {
  return { op: "put", key, value: encoder.encode(value), contentType: "text/plain", ...extra };
}

function text(store: Store, key: string): string | null | undefined {
  const entry = store.get(key);
  return entry === undefined ? undefined : entry.value && new TextDecoder().decode(entry.value);
}

Deno.test("Store.write() puts 201 then 200, and versions only grow for a key", () => {
  const store = newStore();
  const first = store.write(put("a", "1"), 5).outcome;
  const second = store.write(put("a", "2"), 5).outcome;
  assertEquals(first.status, 201);
  assertEquals(second.status, 200);
  assert(second.version! > first.version!);
  assertEquals(text(store, "a"), "2");
  assertEquals(store.get("a")?.version, second.version);
  assertEquals(store.get("a")?.hash, 5);
});

Deno.test("Store.write() makes the new version newer than minVersion and the current one", () => {
  const store = newStore();
  const floor = "7fffffffffff-0003-p1";
  const { version } = store.write(put("a", "1", { minVersion: floor }), 1).outcome;
  assert(version! > floor);
  assert(version!.endsWith("-n1"));
  // A lower floor than the current version still yields a newer version.
  const next = store.write(put("a", "2", { minVersion: "000000000001-0000-p1" }), 1).outcome;
  assert(next.version! > version!);
});

Deno.test("Store.write() with a minVersion above the key's current version stamps above the minVersion", () => {
  const store = newStore();
  const current = store.write(put("a", "1"), 1).outcome.version!;
  const floor = formatVersion(T0 + 3_600_000, 7, "p1"); // an hour ahead of this store's clock
  assert(floor > current);
  const { status, version } = store.write(put("a", "2", { minVersion: floor }), 1).outcome;
  assertEquals(status, 200);
  assert(version! > floor, `${version} must be above ${floor}`);
  assertEquals(parseVersion(version!).writer, "n1");
  assertEquals(store.get("a")?.version, version);
});

Deno.test("Store.write() checks If-Match against the live entry only", () => {
  const store = newStore();
  assertEquals(store.write(put("a", "1", { ifMatch: "000000000001-0000-n1" }), 1).outcome, {
    status: 412,
    version: undefined,
  });
  const v1 = store.write(put("a", "1"), 1).outcome.version!;
  assertEquals(store.write(put("a", "x", { ifMatch: "000000000001-0000-n1" }), 1).outcome, {
    status: 412,
    version: v1,
  });
  const v2 = store.write(put("a", "2", { ifMatch: v1 }), 1).outcome;
  assertEquals(v2.status, 200);
  const gone = store.write({ op: "delete", key: "a", ifMatch: v2.version }, 1).outcome;
  assertEquals(gone.status, 204);
  // A tombstone's version does not satisfy If-Match.
  assertEquals(store.write(put("a", "3", { ifMatch: gone.version }), 1).outcome.status, 412);
  assertEquals(text(store, "a"), null);
});

Deno.test("Store.write() with If-None-Match: * fails only over a live entry", () => {
  const store = newStore();
  assertEquals(store.write(put("a", "1", { ifNoneMatch: "*" }), 1).outcome.status, 201);
  const again = store.write(put("a", "2", { ifNoneMatch: "*" }), 1).outcome;
  assertEquals(again.status, 412);
  assertEquals(again.version, store.get("a")!.version);
  store.write({ op: "delete", key: "a" }, 1);
  assertEquals(store.write(put("a", "3", { ifNoneMatch: "*" }), 1).outcome.status, 201);
  assertEquals(text(store, "a"), "3");
});

Deno.test("Store.write() delete leaves a newer tombstone; deleting again is 404 with no change", () => {
  const store = newStore();
  assertEquals(store.write({ op: "delete", key: "a" }, 1), { outcome: { status: 404 } });
  assertEquals(store.get("a"), undefined);
  const put1 = store.write(put("a", "1"), 1).outcome;
  const del = store.write({ op: "delete", key: "a" }, 1);
  assertEquals(del.outcome.status, 204);
  assert(del.outcome.version! > put1.version!);
  assertEquals(del.stored?.kind, "tombstone");
  assertEquals(store.get("a"), {
    value: null,
    contentType: "",
    version: del.outcome.version!,
    hash: 1,
  });
  assertEquals(store.write({ op: "delete", key: "a" }, 1), { outcome: { status: 404 } });
  assertEquals(store.get("a")!.version, del.outcome.version);
  assertEquals(store.write(put("a", "2"), 1).outcome.status, 201);
});

Deno.test("Store.apply() never overwrites a newer or equal version, tombstones included", () => {
  const store = newStore();
  const base = { hash: 9, contentType: "text/plain" };
  const newer = { ...base, kind: "tombstone" as const, data: "", version: "100000000000-0000-n2" };
  const older = { ...base, kind: "text" as const, data: "old", version: "0fffffffffff-0000-n2" };
  assert(store.apply("k", newer));
  assert(!store.apply("k", older));
  assert(!store.apply("k", { ...older, version: newer.version }));
  assertEquals(store.get("k")?.value, null);
  // The clock observed the ingested version: the next local write is newer still.
  const next = store.write(put("k", "mine"), undefined).outcome;
  assert(next.version! > newer.version);
});

Deno.test("Store.applyAll() sets none of its entries when one cannot be held (a content type too long)", () => {
  const store = newStore();
  const entry = (version: string, contentType = "text/plain") => ({
    kind: "text" as const,
    data: "v",
    hash: 9,
    contentType,
    version,
  });
  const huge = "x".repeat(MAX_FIELD_CHARS + 1);
  assertThrows(() =>
    store.applyAll([
      { key: "a", stored: entry("000000000002-0000-n2") },
      { key: "b", stored: entry("000000000002-0000-n2", huge) },
    ]), RingkvError);
  assertEquals([store.get("a"), store.get("b")], [undefined, undefined]);
  assertEquals(store.listKeys({ prefix: "", limit: 10 }).keys, []);
  assertEquals(store.counts(), { keys: 0, tombstones: 0, valueBytes: 0 });
  // Over a stored entry: it stays, and so do the counts.
  assert(store.apply("b", entry("000000000001-0000-n2")));
  const counts = store.counts();
  assertThrows(() => store.apply("b", entry("000000000002-0000-n2", huge)), RingkvError);
  assertEquals([store.versionOf("b"), store.counts()], ["000000000001-0000-n2", counts]);
  const applied = store.applyAll([
    { key: "a", stored: entry("000000000002-0000-n2") },
    { key: "a", stored: entry("000000000003-0000-n2") },
    { key: "a", stored: entry("000000000001-0000-n2") },
  ]);
  assertEquals(applied.map((a) => [a.stored.version, a.prev]), [
    ["000000000002-0000-n2", null],
    ["000000000003-0000-n2", "000000000002-0000-n2"],
  ]);
  assertEquals(store.listKeys({ prefix: "", limit: 10 }).keys, ["a", "b"]);
});

Deno.test("Store.applyAll() skips an equal or older version, as apply() does, and observes what it applied", () => {
  const store = newStore();
  const entry = (version: string, data = "v") => ({
    kind: "text" as const,
    data,
    hash: 9,
    contentType: "text/plain",
    version,
  });
  assert(store.apply("a", entry("100000000000-0000-n2", "first")));
  const applied = store.applyAll([
    { key: "a", stored: entry("100000000000-0000-n2", "same version") },
    { key: "b", stored: entry("100000000001-0000-n2") },
    { key: "a", stored: entry("0fffffffffff-0000-n2", "older") },
  ]);
  assertEquals(applied.map((a) => [a.key, a.prev]), [["b", null]]);
  assertEquals(text(store, "a"), "first");
  const next = store.write(put("c", "mine"), 9).outcome;
  assert(next.version! > "100000000001-0000-n2");
});

Deno.test("Store keeps binary values as bytes and UTF-8 text exactly, BOM included", () => {
  const store = newStore();
  const binary = new Uint8Array([0xff, 0x00, 0xfe, 0x80]);
  store.write({ op: "put", key: "bin", value: binary, contentType: "x/y" }, 1);
  store.write(put("bom", "\ufeffhé ✓"), 2);
  assertEquals(store.get("bin")?.value, binary);
  assertEquals(store.stored("bin")?.kind, "base64");
  assertEquals(store.get("bom")?.value, encoder.encode("\ufeffhé ✓"));
  assertEquals(store.counts(), { keys: 2, tombstones: 0, valueBytes: 4 + 10 });
});

Deno.test("Store.drop() forgets entries in the ranges without tombstones", () => {
  const store = newStore();
  for (let i = 0; i < 10; i++) store.write(put(`k${i}`, "v"), i * 100);
  store.write({ op: "delete", key: "k3" }, 0);
  const dropped = store.drop([{ start: 500, end: 800 }, { start: 250, end: 301 }]);
  assertEquals(dropped.sort(), ["k3", "k5", "k6", "k7"]);
  assertEquals(store.get("k3"), undefined);
  assertEquals(store.get("k5"), undefined);
  assertEquals(text(store, "k8"), "v");
  assertEquals(store.counts(), { keys: 6, tombstones: 0, valueBytes: 6 });
  assertEquals(store.scanKeys([{ start: 0, end: 201 }]).sort(), ["k0", "k1", "k2"]);
});

Deno.test("Store.drop() forgets a dropped key's expiry: the reaper's scan past it finds nothing", () => {
  let now = T0;
  const store = new Store(new HybridClock("n1", () => now), () => now);
  store.write(put("a", "1", { contentType: withExpiry("text/plain", T0 + 1000) }), 500);
  store.write(put("b", "2", { contentType: withExpiry("text/plain", T0 + 1000) }), 900);
  assertEquals(store.drop([{ start: 400, end: 600 }]), ["a"]);
  now = T0 + 5000;
  assertEquals(store.expiredKeys(now, 10).map((e) => e.key), ["b"]);
  store.drop([{ start: 800, end: 1000 }]);
  assertEquals(store.expiredKeys(now, 10), []);
});

Deno.test("Store.listKeys() orders by UTF-16 code units with prefix, after, limit and more", () => {
  const store = newStore();
  const keys = ["b", "a/2", "a/1", "a/10", "ab", "a", "é", "\u{1F600}", "z"];
  for (const key of keys) store.write(put(key, key), 1);
  store.write({ op: "delete", key: "ab" }, 1);
  assertEquals(store.listKeys({ prefix: "", limit: 100 }).keys, [...keys].sort());
  assertEquals(store.listKeys({ prefix: "a/", limit: 2 }), { keys: ["a/1", "a/10"], more: true });
  assertEquals(store.listKeys({ prefix: "a/", limit: 3 }), {
    keys: ["a/1", "a/10", "a/2"],
    more: false,
  });
  assertEquals(store.listKeys({ prefix: "a", after: "a/10", limit: 10 }).keys, ["a/2", "ab"]);
  assertEquals(store.listKeys({ prefix: "b", after: "a", limit: 10 }).keys, ["b"]);
  assertEquals(store.listKeys({ prefix: "", after: "z", limit: 10 }).keys, ["é", "\u{1F600}"]);
  assertEquals(store.listKeys({ prefix: "", after: "\u{1F600}", limit: 10 }), {
    keys: [],
    more: false,
  });
});

Deno.test("Store.listKeys() stays in order across many inserts, drops and re-inserts", () => {
  const store = newStore();
  const expected = new Set<string>();
  for (let round = 0; round < 4; round++) {
    for (let i = 0; i < 3000; i++) {
      const key = `key-${(i * 7919 + round * 13) % 5000}`;
      store.write(put(key, "v"), i % 2 === 0 ? 10 : 20);
      expected.add(key);
    }
    if (round === 1) {
      for (const key of store.drop([{ start: 10, end: 11 }])) expected.delete(key);
    }
    // A listing between rounds folds the new keys into the sorted index.
    assertEquals(store.listKeys({ prefix: "key-", limit: 10_000 }).keys, [...expected].sort());
  }
});

Deno.test("Store.exportFlat() exports live text, and binary only as base64 when asked", () => {
  const store = newStore();
  store.write(put("t", "text"), 1);
  store.write(put("gone", "x"), 1);
  store.write({ op: "delete", key: "gone" }, 1);
  assertEquals(store.exportFlat("refuse"), { t: "text" });
  store.write({ op: "put", key: "b", value: new Uint8Array([0xff]), contentType: "x" }, 1);
  assertEquals(store.exportFlat("base64"), { b: { base64: "/w==" }, t: "text" });
  assertThrows(() => store.exportFlat("refuse"), Error, "binary=base64");
});

Deno.test("Packer round-trips records with interned and inline fields", () => {
  const packer = new Packer();
  const entry = {
    kind: "text" as const,
    data: "v",
    hash: 0xfedcba98,
    contentType: "a".repeat(300),
    version: "ffffffffffff-ffff-" + "w".repeat(32),
  };
  assertEquals(packer.unpack(packer.pack(entry)), entry);
  const wide = { ...entry, data: "ünï ✓", contentType: "text/ü" };
  assertEquals(packer.unpack(packer.pack(wide)), wide);
});

Deno.test("Store: a key past its expiry counts as absent for conditions, deletes and the reaper", () => {
  let now = T0;
  const store = new Store(new HybridClock("n1", () => now), () => now);
  const expiring = put("a", "1", { contentType: withExpiry("text/plain", T0 + 1000) });
  const { version } = store.write(expiring, 5).outcome;
  store.write(put("b", "kept"), 6);
  assertEquals(store.expiredKeys(T0 + 999, 10), []);
  assertEquals(store.write({ op: "delete", key: "a", ifMatch: version, expire: true }, 5).outcome, {
    status: 412,
    version,
  });
  now = T0 + 1000;
  assertEquals(store.expiredKeys(now, 10), [{ key: "a", version: version! }]);
  assertEquals(store.write(put("a", "x", { ifMatch: version }), 5).outcome.status, 412);
  assertEquals(store.write({ op: "delete", key: "a" }, 5).outcome.status, 404);
  const reaped = store.write({ op: "delete", key: "a", ifMatch: version, expire: true }, 5);
  assertEquals(reaped.outcome.status, 204);
  assertEquals(store.get("a")?.value, null);
  assertEquals(store.expiredKeys(now, 10), []);
  assertEquals(store.counts(), { keys: 1, tombstones: 1, valueBytes: 4 });
});

Deno.test("Store.expiredKeys() goes round: keys listed before come after the others", () => {
  let now = T0;
  const store = new Store(new HybridClock("n1", () => now), () => now);
  for (const key of ["a", "b", "c"]) {
    store.write(put(key, "1", { contentType: withExpiry("text/plain", T0 + 10) }), 5);
  }
  now = T0 + 10;
  const keys = () => store.expiredKeys(now, 2).map((e) => e.key);
  // "a" and "b" stay (say their deletes keep failing): "c" still gets its turn.
  assertEquals(keys(), ["a", "b"]);
  assertEquals(keys(), ["c", "a"]);
  assertEquals(keys(), ["b", "c"]);
});

Deno.test("Store: If-None-Match: * takes an expired key, and a put without TTL clears it", () => {
  let now = T0;
  const store = new Store(new HybridClock("n1", () => now), () => now);
  store.write(put("a", "1", { contentType: withExpiry("text/plain", T0 + 10) }), 5);
  store.write(put("b", "1", { contentType: withExpiry("text/plain", T0 + 10) }), 6);
  assertEquals(store.write(put("a", "2", { ifNoneMatch: "*" }), 5).outcome.status, 412);
  now = T0 + 10;
  assertEquals(store.write(put("a", "2", { ifNoneMatch: "*" }), 5).outcome.status, 201);
  assertEquals(store.expiredKeys(now, 10).map((e) => e.key), ["b"]);
  assertEquals(store.get("a")?.contentType, "text/plain");
});

Deno.test("Store.exportFlat() leaves out a key past its expiry (an import would revive it)", () => {
  let now = T0;
  const store = new Store(new HybridClock("n1", () => now), () => now);
  store.write(put("gone", "1", { contentType: withExpiry("text/plain", T0 + 1000) }), 5);
  store.write(put("kept", "2", { contentType: withExpiry("text/plain", T0 + 5000) }), 6);
  store.write(put("plain", "3"), 7);
  now = T0 + 1000;
  assertEquals(store.exportFlat("refuse"), { kept: "2", plain: "3" });
});

Deno.test("Store.scanBuckets() finds what scanKeys() finds bucket by bucket, overlaps included", () => {
  const store = newStore();
  for (let i = 0; i < 500; i++) store.write(put(`k${i}`, "v"), (i * 7919) % 1000);
  store.write({ op: "delete", key: "k3" }, undefined);
  const cases: { start: number; end: number }[][][] = [
    // Pieces of the ring cut into buckets, as the anti-entropy sweep sends them.
    [[{ start: 0, end: 100 }, { start: 300, end: 350 }], [{ start: 100, end: 300 }], [], [{
      start: 350,
      end: 1000,
    }]],
    [[{ start: 990, end: 2000 }], [{ start: 0, end: 1 }, { start: 500, end: 501 }]],
    // Overlapping and empty ranges take the per-bucket scan.
    [[{ start: 0, end: 600 }], [{ start: 400, end: 1000 }], [{ start: 5, end: 5 }]],
  ];
  for (const buckets of cases) {
    const one = store.scanBuckets(buckets).map((keys) => keys.sort());
    assertEquals(one, buckets.map((ranges) => store.scanKeys(ranges).sort()));
  }
  assertEquals(store.scanBuckets([[{ start: 0, end: 1000 }]])[0]!.length, 500);
});

Deno.test("Store.expiredKeys() lists a key only when both `before` and its own clock passed the expiry", () => {
  let now = T0;
  const store = new Store(new HybridClock("n1", () => now), () => now);
  store.write(put("a", "1", { contentType: withExpiry("text/plain", T0 + 1000) }), 5);
  assertEquals(store.expiredKeys(T0 + 3_600_000, 10), []); // the asking proxy's clock is ahead
  now = T0 + 1000;
  assertEquals(store.expiredKeys(T0 + 999, 10), []);
  assertEquals(store.expiredKeys(T0 + 3_600_000, 10).map((e) => e.key), ["a"]);
});

/** A store whose versions and wall time (expiries, tombstones' arrival) follow `now`. */
function clockedStore(now: () => number): Store {
  return new Store(new HybridClock("n1", now), now);
}

Deno.test("Store.oldTombstones() lists tombstones stored here by `storedBy`, in the order stored, each listed moving to the back", () => {
  let wall = T0;
  const store = clockedStore(() => wall);
  for (const key of ["a", "b", "c", "d"]) store.write(put(key, "v"), 1);
  store.write({ op: "delete", key: "a" }, undefined);
  wall = T0 + 1000;
  store.write({ op: "delete", key: "b" }, undefined);
  wall = T0 + 2000;
  store.write({ op: "delete", key: "c" }, undefined);
  const keys = (by: number, limit = 10) => store.oldTombstones(by, limit).map((t) => t.key);
  assertEquals(keys(T0 - 1), [], "none that old");
  assertEquals(store.oldTombstones(T0, 1), [{
    key: "a",
    version: store.get("a")!.version,
    hash: 1,
  }]);
  // a was listed: it went to the back (b, c, a).
  assertEquals(keys(T0 + 1000), ["b", "a"], "live keys and younger tombstones left out");
  assertEquals(keys(T0 + 5000, 2), ["c", "b"]);
  // Written again, a key is no tombstone any more; deleted again, it is a young one.
  store.write(put("b", "again"), undefined);
  wall = T0 + 9000;
  store.write({ op: "delete", key: "d" }, undefined);
  assertEquals(keys(T0 + 5000), ["a", "c"]);
});

Deno.test("Store.oldTombstones() goes by when the tombstone was stored here, not by its version: a fast delete's version is its last write's", () => {
  let wall = T0 + 3_600_000;
  const store = clockedStore(() => wall);
  // A tombstone whose version is an hour old (b + "0"), stored now.
  const oldVersion = formatVersion(T0, 0, "p0");
  store.apply("k", { kind: "tombstone", data: "", hash: 2, contentType: "", version: oldVersion });
  assertEquals(store.oldTombstones(wall - 60_000, 10), [], "stored a moment ago");
  assertEquals(store.purge([{ key: "k", version: oldVersion }], wall - 60_000), []);
  wall += 60_000;
  assertEquals(store.oldTombstones(wall - 60_000, 10).map((t) => t.key), ["k"]);
  assertEquals(
    store.get("k")?.value,
    null,
    "a tombstone's value stays null (its record holds the time)",
  );
  assertEquals(store.stored("k")?.data, "");
  // Copied in again (the same version): its time does not start again.
  store.apply("k", { kind: "tombstone", data: "", hash: 2, contentType: "", version: oldVersion });
  assertEquals(store.purgeable([{ key: "k", version: oldVersion }], wall - 60_000), ["k"]);
});

Deno.test("Store.oldTombstones() passes at most `limit` younger ones before it stops", () => {
  let wall = T0;
  const store = clockedStore(() => wall);
  // An old tombstone stored after five younger ones (moved to the back when listed earlier).
  wall = T0 + 10_000;
  for (let i = 0; i < 5; i++) {
    store.write(put(`young${i}`, "v"), 1);
    store.write({ op: "delete", key: `young${i}` }, undefined);
  }
  wall = T0;
  store.write(put("old", "v"), 2);
  store.write({ op: "delete", key: "old" }, undefined);
  const old = (limit: number) => store.oldTombstones(T0, limit).map((t) => t.key);
  assertEquals(old(2), [], "five younger ones ahead of it");
  assertEquals(old(6), ["old"]);
});

Deno.test("Store.purge() forgets only tombstones of exactly the version given, stored by `storedBy`", () => {
  let wall = T0;
  const store = clockedStore(() => wall);
  for (const key of ["a", "b", "c"]) store.write(put(key, "v"), 1);
  const gone = (key: string) => store.write({ op: "delete", key }, undefined).outcome.version!;
  const [a, b] = [gone("a"), gone("b")];
  const liveC = store.get("c")!.version;
  const newerB = store.write(put("b", "again"), undefined).outcome.version!;
  wall = T0 + 10;
  const late = gone("c");
  const purged = store.purge([
    { key: "a", version: a },
    { key: "b", version: b }, // written again since
    { key: "c", version: liveC }, // deleted since
    { key: "c", version: late }, // stored after storedBy
    { key: "missing", version: a },
  ], T0);
  assertEquals(purged, ["a"]);
  assertEquals(store.get("a"), undefined);
  assertEquals(store.get("b")?.version, newerB);
  assertEquals(store.get("c")?.version, late);
  assertEquals(store.counts(), { keys: 1, tombstones: 1, valueBytes: 5 });
  assertEquals(store.listKeys({ prefix: "", limit: 10 }).keys, ["b", "c"]);
  assertEquals(store.oldTombstones(T0 + 1, 10), [], "a purged key is not listed again");
  // A key purged is new again: a write creates it (201).
  assertEquals(store.write(put("a", "new"), 1).outcome.status, 201);
});

Deno.test("Store: a newer tombstone over an older one goes to the back of the tombstones, as stored now", () => {
  let wall = T0;
  const store = clockedStore(() => wall);
  for (const key of ["a", "b"]) {
    store.write(put(key, "v"), 1);
    store.write({ op: "delete", key }, undefined);
  }
  wall = T0 + 10_000;
  // a's delete re-stamped (a read's full round, or a newer tombstone copied in).
  const newer = formatVersion(T0 + 10_000, 0, "p1");
  store.apply("a", { kind: "tombstone", data: "", hash: 1, contentType: "", version: newer });
  assertEquals(store.oldTombstones(T0, 1).map((t) => t.key), ["b"], "a young one ahead of b");
});
