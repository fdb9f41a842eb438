import { assert, assertEquals, assertRejects } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import { Acceptor, type FloorStore, memoryFloorStore } from "./acceptor.ts";
import { diskFloorStore, firstWatermark, FLOOR_FILE } from "./acceptor_floor.ts";
import { formatVersion } from "../../shared/version.ts";
import { join } from "@std/path";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import { openEngine } from "../engine/open_engine.ts";
import { overrideDisk } from "../../tests/doubles/engine_test_helpers.ts";

const h = 7;
const entry = (ver: string, v = "eA==") => ({ k: "k", v, ver, h });

async function setup() {
  // Born at time 0, so the hand-written ballots below are not older than the directory.
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", now: () => 0 });
  const floor = memoryFloorStore();
  return { engine, floor, acceptor: await Acceptor.open(engine, floor) };
}

Deno.test("Acceptor.prepare() refuses a ballot not above the promised one and names it", async () => {
  const { engine, acceptor } = await setup();
  try {
    assertEquals((await acceptor.prepare("k", "000000000002-0000-p")).ok, true);
    const vote = await acceptor.prepare("k", "000000000001-0000-p");
    assertEquals([vote.ok, vote.promised], [false, "000000000002-0000-p"]);
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor.accept() refuses a ballot below a promise and stores one at or above it", async () => {
  const { engine, acceptor } = await setup();
  try {
    await acceptor.prepare("k", "000000000005-0000-p");
    assertEquals((await acceptor.accept(entry("000000000004-0000-q"))).ok, false);
    assertEquals((await acceptor.accept(entry("000000000005-0000-p"))).ok, true);
    assertEquals((await engine.get("k"))?.version, "000000000005-0000-p");
    // The same accepted entry again is a no-op that answers ok; an older one is refused.
    assertEquals((await acceptor.accept(entry("000000000005-0000-p"))).ok, true);
    assertEquals((await acceptor.accept(entry("000000000003-0000-p"))).ok, false);
    const vote = await acceptor.prepare("k", "000000000005-0000-p");
    assertEquals([vote.ok, vote.entry?.version], [false, "000000000005-0000-p"]);
  } finally {
    await engine.close();
  }
});

Deno.test("after a restart every key is promised the stored watermark, above all old promises", async () => {
  const { engine, floor, acceptor } = await setup();
  try {
    await acceptor.prepare("k", "000000100000-0000-p");
    const again = await Acceptor.open(engine, floor);
    assertEquals((await again.accept(entry("000000100000-0000-p"))).ok, false);
    assertEquals((await again.prepare("other", "000000100001-0000-p")).ok, false);
    assertEquals((await again.prepare("other", "000001000000-0000-p")).ok, true);
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor.open() promises nothing older than the data directory (a wiped node forgot its promises)", async () => {
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", now: () => 50_000 });
  try {
    const acceptor = await Acceptor.open(engine, memoryFloorStore());
    const old = await acceptor.prepare("k", "000000000001-0000-p");
    assertEquals([old.ok, old.promised], [false, "00000000c350-0000-0"]);
    assertEquals((await acceptor.accept(entry("00000000c34f-0000-p"))).ok, false);
    assertEquals((await acceptor.prepare("k", "00000000c351-0000-p")).ok, true);
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor.prepare() answers 503 unavailable when its promise watermark cannot be stored (a full disk)", async () => {
  // A directory created at time 0, so the ballot below is newer than the directory's floor.
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", now: () => 0 });
  const full = {
    load: () => Promise.resolve(null),
    save: () => Promise.reject(new Error("No space left on device (os error 28)")),
  };
  try {
    const acceptor = await Acceptor.open(engine, full);
    const err = await assertRejects(
      () => acceptor.prepare("k", "000000000002-0000-p"),
      RingkvError,
    );
    assertEquals([err.code, err.status], ["unavailable", 503]);
    assert(err.message.includes("No space left on device"), err.message);
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor.acceptAll() decides a call's entries in order, a key's second entry on what its first left", async () => {
  const { engine, acceptor } = await setup();
  try {
    const of = (k: string, ver: string) => ({ k, v: "eA==", ver, h });
    await acceptor.prepare("b", "000000000009-0000-p");
    const votes = await acceptor.acceptAll([
      of("a", "000000000002-0000-p"),
      of("b", "000000000003-0000-p"), // below b's promise
      of("a", "000000000004-0000-p"), // newer than the first: stored over it
      of("c", "000000000005-0000-p"),
      of("a", "000000000003-0000-p"), // older than what the first two left
      of("c", "000000000005-0000-p"), // the same entry again: held
    ]);
    assertEquals(votes.map((v) => v.ok), [true, false, true, true, false, true]);
    assertEquals(votes[1]!.promised, "000000000009-0000-p");
    assertEquals(votes[4]!.promised, "000000000004-0000-p");
    assertEquals((await engine.get("a"))?.version, "000000000004-0000-p");
    assertEquals((await engine.get("b"))?.version, undefined);
    assertEquals((await engine.get("c"))?.version, "000000000005-0000-p");
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor.acceptAll() stores the entries accepted together as one log record", async () => {
  const disk = createFakeDisk();
  const engine = await openEngine({ disk, id: "n1", now: () => 0 });
  const acceptor = await Acceptor.open(engine, memoryFloorStore());
  try {
    const before = engine.stats().walBytes;
    const entries = ["x", "y", "z"].map((k, i) => ({
      k,
      v: "eA==",
      ver: `00000000000${i + 1}-0000-p`,
      h,
    }));
    assertEquals((await acceptor.acceptAll(entries)).map((v) => v.ok), [true, true, true]);
    const log = new TextDecoder().decode((await disk.read("wal.jsonl"))!);
    const lines = log.trim().split("\n").filter((l) => l.includes('"set"'));
    assertEquals(lines.length, 1, log);
    assert(engine.stats().walBytes > before);
  } finally {
    await engine.close();
  }
});

const of = (k: string, ver: string, t?: string) => ({ k, v: "eA==", ver, h, ...(t ? { t } : {}) });

/** A node whose log can be made to fail; the repair waits until the test asks for it. */
async function failingSetup(firstRetryMs = 100_000) {
  const disk = createFakeDisk();
  const engine = await openEngine({ disk, id: "n1", now: () => 0, firstRetryMs, log: () => {} });
  return { disk, engine, acceptor: await Acceptor.open(engine, memoryFloorStore()) };
}

async function writableAgain(engine: Awaited<ReturnType<typeof openEngine>>): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (engine.writeHealth().state !== "writable") {
    if (Date.now() > deadline) throw new Error("Cannot wait for the repair: still read-only");
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("Acceptor.prepare() does not report an entry whose log round then fails", async () => {
  const { disk, engine, acceptor } = await failingSetup();
  try {
    disk.failSyncs(1);
    const first = acceptor.acceptAll([of("a", "000000000002-0000-p")]).catch(() => "failed");
    await assertRejects(() => acceptor.prepare("a", "000000000009-0000-q"));
    assertEquals(await first, "failed");
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor.prepare() does not report an entry rolled back while its promise watermark was saved", async () => {
  // The entry is read before the watermark's save, the log round fails and is repaired during
  // it: the prepare must still wait on that round, not on whatever is pending after the save.
  const { disk, engine } = await failingSetup(1);
  let saved!: () => void;
  const floor: FloorStore = {
    load: () => Promise.resolve(null),
    save: () => new Promise<void>((resolve) => saved = resolve),
  };
  const acceptor = await Acceptor.open(engine, floor);
  try {
    disk.failSyncs(1);
    const first = acceptor.acceptAll([of("a", "000000000002-0000-p")]).catch(() => "failed");
    const prepared = acceptor.prepare("a", "000000000009-0000-q").then(
      (v) => `ok: ${v.ok}, entry ${v.entry?.version}`,
      () => "failed",
    );
    assertEquals(await first, "failed");
    await writableAgain(engine);
    assertEquals(engine.peek("a"), undefined); // the repair rolled the entry back
    saved();
    assertEquals(await prepared, "failed");
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor.acceptAll() does not answer ok to a repeated accept whose first copy's log round fails", async () => {
  const { disk, engine, acceptor } = await failingSetup();
  try {
    disk.failSyncs(1);
    const first = acceptor.acceptAll([of("a", "000000000002-0000-p")]).catch(() => "failed");
    await assertRejects(() => acceptor.acceptAll([of("a", "000000000002-0000-p")]));
    assertEquals(await first, "failed");
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor.acceptAll(): a refused accept keeps the promise, so a lower accept after it is refused too", async () => {
  const { engine, acceptor } = await failingSetup();
  try {
    await acceptor.prepare("a", "000000000009-0000-p");
    assertEquals((await acceptor.acceptAll([of("a", "000000000005-0000-q")]))[0]!.ok, false);
    const vote = (await acceptor.acceptAll([of("a", "000000000006-0000-q")]))[0]!;
    assertEquals([vote.ok, vote.promised], [false, "000000000009-0000-p"]);
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor: an accept whose log round fails keeps the promise; after the repair a lower ballot is refused", async () => {
  const { disk, engine, acceptor } = await failingSetup(1);
  try {
    await acceptor.acceptAll([of("k", "000000000001-0000-x")]);
    assertEquals((await acceptor.prepare("k", "000000000009-0000-p")).ok, true);
    disk.failSyncs(1);
    await assertRejects(() => acceptor.acceptAll([of("k", "000000000009-0000-p")]));
    await writableAgain(engine); // the repair rolled k@9 back
    assertEquals(engine.peek("k")?.version, "000000000001-0000-x");
    const lower = await acceptor.prepare("k", "000000000005-0000-q");
    assertEquals([lower.ok, lower.promised], [false, "000000000009-0000-p"]);
    assertEquals((await acceptor.acceptAll([of("k", "000000000005-0000-q")]))[0]!.ok, false);
    // The proposer that holds the promise may still store its entry.
    assertEquals((await acceptor.acceptAll([of("k", "000000000009-0000-p")]))[0]!.ok, true);
    assertEquals(acceptor.openPromises, 0);
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor: an accept refused by a read-only node (503) keeps the promise", async () => {
  const { disk, engine, acceptor } = await failingSetup(1);
  try {
    assertEquals((await acceptor.prepare("k", "000000000009-0000-p")).ok, true);
    disk.failSyncs(1);
    await assertRejects(() => acceptor.acceptAll([of("other", "000000000002-0000-p")]));
    await assertRejects(() => acceptor.acceptAll([of("k", "000000000009-0000-p")]), RingkvError);
    await writableAgain(engine);
    assertEquals((await acceptor.prepare("k", "000000000005-0000-q")).ok, false);
    assertEquals((await acceptor.acceptAll([of("k", "000000000005-0000-q")]))[0]!.ok, false);
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor: a promise raised while an accept is on its way to disk outlives that accept", async () => {
  const { engine, acceptor } = await failingSetup();
  try {
    const first = acceptor.acceptAll([of("k", "000000000002-0000-p")]);
    assertEquals((await acceptor.prepare("k", "000000000009-0000-q")).ok, true);
    assertEquals((await first)[0]!.ok, true);
    assertEquals((await acceptor.acceptAll([of("k", "000000000005-0000-r")]))[0]!.ok, false);
    assertEquals(acceptor.openPromises, 1);
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor.acceptAll(): an entry that cannot be stored stores none of its run, and a repeat is stored durably", async () => {
  const { disk, engine, acceptor } = await failingSetup();
  try {
    const huge = "x".repeat(0x10000); // over what a record can hold (node/engine/packed.ts)
    const bad = [of("a", "000000000002-0000-p"), of("b", "000000000002-0000-p", huge)];
    await assertRejects(() => acceptor.acceptAll(bad), RingkvError);
    assertEquals([engine.peek("a"), engine.peek("b")], [undefined, undefined]);
    assertEquals(engine.scanKeys([{ start: 0, end: 2 ** 32 }]), []);
    assertEquals((await acceptor.acceptAll([of("a", "000000000002-0000-p")]))[0]!.ok, true);
    const after = await openEngine({ disk: disk.crash(), id: "n1", now: () => 0, log: () => {} });
    try {
      assertEquals(after.peek("a")?.version, "000000000002-0000-p");
    } finally {
      await after.close();
    }
  } finally {
    await engine.close();
  }
});

/**
 * An engine on a fake disk whose statfs waits for `gate` while one is set: an ingest whose
 * log line is 64 KiB or more asks it before it applies anything (the engine's room check).
 */
async function gatedRoom() {
  const inner = createFakeDisk();
  const state = { gate: null as PromiseWithResolvers<void> | null, waiting: 0 };
  const disk = overrideDisk(inner, {
    freeBytes: async () => {
      if (state.gate) {
        state.waiting++;
        await state.gate.promise;
      }
      return await inner.freeBytes();
    },
  });
  const engine = await openEngine({ disk, id: "n1", now: () => 0, log: () => {} });
  return { engine, state, acceptor: await Acceptor.open(engine, memoryFloorStore()) };
}

const BIG = btoa("x".repeat(70_000)); // its log line is over 64 KiB

// Found by review: the accept was decided when it came, stored after the prepare had promised
// above it and answered with the old entry; two compare-and-sets on one version both succeeded.
for (
  const [name, bigKey, key] of [["its own", "k", "k"], ["another key's", "other", "k"]] as const
) {
  Deno.test(`Acceptor: a prepare above an accept that waits for ${name} large write's room refuses that accept`, async () => {
    const { engine, state, acceptor } = await gatedRoom();
    try {
      const b = "000000000010-0000-pAAAAAAAAAAAA";
      const c = "000000000020-0000-pBBBBBBBBBBBB";
      assertEquals((await acceptor.prepare(key, b)).ok, true);
      state.gate = Promise.withResolvers<void>();
      const big = bigKey === key ? undefined : acceptor.accept({ k: bigKey, v: BIG, ver: b, h });
      const accepting = acceptor.accept({ k: key, v: bigKey === key ? BIG : "eA==", ver: b, h });
      for (let i = 0; state.waiting === 0; i++) {
        assert(i < 1000, "the room check was never asked");
        await new Promise((r) => setTimeout(r, 1));
      }
      await new Promise((r) => setTimeout(r, 5)); // the small accept reaches its wait too
      const promised = await acceptor.prepare(key, c);
      assertEquals([promised.ok, promised.entry], [true, undefined]);
      state.gate.resolve();
      state.gate = null;
      assertEquals(await accepting, { ok: false, promised: c });
      await big;
      assertEquals(await engine.get(key), undefined);
    } finally {
      state.gate?.resolve();
      await engine.close();
    }
  });
}

Deno.test("Acceptor.open() with acceptor.json gone beside data refuses every ballot up to now + its lead, and says so (found by review)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-floor-" });
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", now: () => 0 });
  try {
    const first = await Acceptor.open(engine, await diskFloorStore(dir));
    const now = Date.now();
    const old = formatVersion(now - 5000, 0, "pA");
    const promised = formatVersion(now - 4000, 0, "pB");
    assertEquals((await first.accept(entry(formatVersion(now - 6000, 0, "pA")))).ok, true);
    assertEquals((await first.prepare("k", promised)).ok, true);
    await Deno.remove(join(dir, FLOOR_FILE));
    const logged: Record<string, unknown>[] = [];
    const again = await Acceptor.open(engine, await diskFloorStore(dir), {
      now: () => now,
      log: (obj) => logged.push(obj),
    });
    assertEquals((await again.accept(entry(old))).ok, false);
    assertEquals((await again.prepare("k", formatVersion(now + 500, 0, "pC"))).ok, false);
    assertEquals((await again.prepare("k", formatVersion(now + 2000, 0, "pC"))).ok, true);
    assertEquals(logged.map((l) => l.level), ["warn"]);
    // A node with no data has promised nothing: its directory's birth is its floor, as before.
    const empty = await openEngine({ disk: createFakeDisk(), id: "n2", now: () => 0 });
    const other = await Deno.makeTempDir({ prefix: "ringkv-floor-" });
    const fresh = await Acceptor.open(empty, await diskFloorStore(other), { now: () => now });
    assertEquals((await fresh.accept({ ...entry(old), k: "new" })).ok, true);
    await empty.close();
    await Deno.remove(other, { recursive: true });
  } finally {
    await engine.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("diskFloorStore().load() refuses an acceptor.json whose floor is JSON but not a version", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-floor-" });
  try {
    const store = await diskFloorStore(dir);
    for (const floor of ["", "zzz", formatVersion(1, 0, "n1") + " "]) {
      await Deno.writeTextFile(join(dir, FLOOR_FILE), JSON.stringify({ floor }) + "\n");
      const err = await assertRejects(() => store.load(), Error);
      assert(err.message.includes(`Cannot read ${FLOOR_FILE} in ${dir}`), err.message);
      assert(err.message.includes('no valid "floor" version'), err.message);
    }
    const good = formatVersion(1, 0, "n1");
    await Deno.writeTextFile(join(dir, FLOOR_FILE), JSON.stringify({ floor: good }) + "\n");
    assertEquals(await store.load(), good);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("Acceptor.purge() forgets a tombstone, and the key refuses what the tombstone refused, after a restart too", async () => {
  const { engine, floor, acceptor } = await setup();
  try {
    const tombstone = { k: "k", v: null, ver: "000000100000-0000-p", h };
    assertEquals((await acceptor.accept(entry("000000050000-0000-p"))).ok, true);
    assertEquals((await acceptor.accept(tombstone)).ok, true);
    assertEquals(await acceptor.purge([{ key: "k", version: tombstone.ver }], Infinity), ["k"]);
    assertEquals(await engine.get("k"), undefined);
    // A stale accept below the tombstone (a fast write's, a write-back's) would bring k back.
    const stale = await acceptor.accept(entry("000000090000-0000-q"));
    assertEquals([stale.ok, stale.promised], [false, tombstone.ver]);
    assertEquals((await acceptor.prepare("k", "000000090000-0000-q")).ok, false);
    assertEquals(await engine.get("k"), undefined);
    // After a restart the watermark covers it.
    const again = await Acceptor.open(engine, floor);
    assertEquals((await again.accept(entry("000000099999-0000-q"))).ok, false);
    assert((await floor.load())! >= tombstone.ver);
    // A newer write is taken, and a purge of the old version leaves it alone.
    assertEquals((await again.accept(entry("000002000000-0000-q"))).ok, true);
    assertEquals(await again.purge([{ key: "k", version: tombstone.ver }], Infinity), []);
    assertEquals((await engine.get("k"))?.version, "000002000000-0000-q");
  } finally {
    await engine.close();
  }
});

Deno.test("firstWatermark() writes a new directory's watermark, so an acceptor opened after a copy gave it keys does not take the file for lost", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-floor-" });
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", now: () => 5000 });
  try {
    const store = await diskFloorStore(dir);
    await firstWatermark(store, engine);
    assertEquals(await store.load(), formatVersion(5000, 0, "0"));
    // A range copy gives it keys before its first vote.
    await engine.ingest([{
      k: "k",
      v: "eA==",
      t: "text/plain",
      ver: formatVersion(10_000, 0, "pA"),
      h,
    }]);
    const logged: Record<string, unknown>[] = [];
    const acceptor = await Acceptor.open(engine, store, { log: (o) => logged.push(o) });
    assertEquals(logged, []);
    assertEquals((await acceptor.prepare("other", formatVersion(6000, 0, "pB"))).ok, true);
    // Beside data, a missing file is still a lost one: nothing is written over that.
    await Deno.remove(join(dir, FLOOR_FILE));
    await firstWatermark(store, engine);
    assertEquals(await store.load(), null);
  } finally {
    await engine.close();
    await Deno.remove(dir, { recursive: true });
  }
});
