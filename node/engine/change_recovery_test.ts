import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { createFakeDisk, type FakeDisk } from "../../tests/doubles/fake_disk.ts";
import { open, overrideDisk, put } from "../../tests/doubles/engine_test_helpers.ts";
import { seededRandom } from "../../tests/doubles/seeded_random.ts";
import type { Change, ChangeLog } from "./change_log.ts";
import { ChangeReplay } from "./change_recovery.ts";
import type { NodeEngine } from "./engine.ts";
import { Store } from "./store.ts";
import { encodeLine } from "../storage/log_format.ts";
import { HybridClock } from "../../shared/version.ts";

const decoder = new TextDecoder();

/** What a watcher reads of a change: its number, key, version, value and the version before. */
function shown(c: Change): string {
  const { seq, key, stored, prev } = c;
  return `${seq} ${key} ${stored.version} ${stored.kind}:${stored.data} after ${prev}`;
}

/** Every change the log holds, as shown to watchers. */
function held(log: ChangeLog): string[] {
  const page = log.read(log.first - 1, 1_000_000, "");
  assert(page !== "gone");
  return page.map(shown);
}

/** A fast write, a delete, an overwrite, a copy-in (ingest) or a drop of a range. */
async function randomChange(engine: NodeEngine, random: () => number, n: number): Promise<void> {
  const key = `k${Math.floor(random() * 40)}`;
  const pick = random();
  if (pick < 0.55) await engine.write([put(key, `v${n}`), put(`other${n % 7}`, `o${n}`)]);
  else if (pick < 0.75) await engine.write([{ op: "delete", key }]);
  else if (pick < 0.97) {
    // A version from a writer far ahead, as a replica gets from another node's proxy.
    const ver = `${(0x0200_0000_0000 + n).toString(16).padStart(12, "0")}-0000-n2`;
    await engine.ingest([{ k: key, v: btoa(`in${n}`), t: "text/plain", ver, h: 7 }]);
  } else await engine.drop([{ start: 0, end: 5 }]);
}

/** The engine's change log (the routes read it as `engine.changes`). */
function changesOf(engine: NodeEngine): ChangeLog {
  return engine.changes;
}

/**
 * Replays `count` text entries over a new store, entry i of key `keyOf(i)` at version i (walls
 * equal, counters rising): the `set` records of a log, as `replayLog` hands them to `replay`.
 */
function replaySets(replay: ChangeReplay, count: number, keyOf: (i: number) => string): void {
  const store = new Store(new HybridClock("n1", () => 1_000), () => 1_000);
  for (let i = 0; i < count; i++) {
    const version = `0000000003e8-${i.toString(16).padStart(4, "0")}-n1`;
    const stored = { kind: "text" as const, data: `v${i}`, hash: 1, contentType: "t", version };
    replay.set(keyOf(i), stored, store);
    store.apply(keyOf(i), stored);
  }
}

/** The log's first line, parsed. */
function markerOf(disk: FakeDisk): Record<string, unknown> {
  return JSON.parse(decoder.decode(disk.bytes("wal.jsonl")!).split("\n")[0]!);
}

Deno.test("change log: a crash keeps its name and numbers, and a restart serves the same changes with the versions they replaced", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk);
  const random = seededRandom(11);
  for (let n = 0; n < 60; n++) await randomChange(engine, random, n);
  const before = changesOf(engine);
  assert(before.last > 60);
  const crashed = disk.crash();
  await engine.close();
  const again = await open(crashed);
  const after = changesOf(again);
  assertEquals([after.boot, after.last, after.first], [before.boot, before.last, before.first]);
  assertEquals(held(after), held(before));
  // Version queries at a position answer as before the crash.
  const keys = ["k1", "k2", "k3", "other1"];
  for (const at of [before.first - 1, Math.floor(before.last / 2), before.last]) {
    assertEquals(
      after.versionsAt(keys, at, (k) => again.peekVersion(k)),
      before.versionsAt(keys, at, (k) => engine.peekVersion(k)),
      `versions at ${at}`,
    );
  }
  // And the numbering goes on.
  await again.write([put("new", "x")]);
  const page = after.read(before.last, 10, "");
  assert(page !== "gone");
  assertEquals(page.map((c) => [c.seq, c.key]), [[before.last + 1, "new"]]);
  await again.close();
});

Deno.test("change log: across snapshots taken while writes go on, crashes and clean restarts, every change a restart still holds is the one served before, under the same number", async () => {
  for (const seed of [1, 2, 3, 4, 5]) {
    let disk = createFakeDisk();
    // Small, so snapshots cut the log often, some of them while writes are under way.
    const options = { snapshotEveryBytes: 600 + seed * 150 };
    let engine = await open(disk, options);
    const random = seededRandom(seed);
    const seen = new Map<number, string>();
    let boot = changesOf(engine).boot;
    let n = 0;
    for (let life = 0; life < 6; life++) {
      const writes: Promise<void>[] = [];
      for (let i = 0; i < 40; i++) {
        const change = randomChange(engine, random, n++);
        // Some concurrent, some one by one: a snapshot's read of the store meets both.
        if (random() < 0.5) await change;
        else writes.push(change);
      }
      await Promise.all(writes);
      const log = changesOf(engine);
      for (const c of held(log)) seen.set(Number(c.split(" ")[0]), c);
      const clean = random() < 0.4;
      const last = log.last;
      if (clean) await engine.close();
      const next = clean ? disk.reopen() : disk.crash();
      if (!clean) await engine.close();
      disk = next;
      const told: string[] = [];
      engine = await open(disk, { ...options, log: (m) => told.push(m) });
      const again = changesOf(engine);
      const where = `seed ${seed}, life ${life} (${clean ? "clean" : "crash"})`;
      assertEquals([again.boot, again.last, told], [boot, last, []], where);
      for (const c of held(again)) {
        assertEquals(c, seen.get(Number(c.split(" ")[0])), `${where}: change ${c}`);
      }
      if (clean) {
        // The shutdown's marker carried the newest changes: a watcher behind finds them.
        assert(again.first <= last - Math.min(last, 40) + 1, `${where}: first ${again.first}`);
      }
      boot = again.boot;
    }
    await engine.close();
  }
});

Deno.test("change log: a log without a numbering (written before 2026-12-07), or whose replay does not match its marker, starts a new one and says why", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk);
  await engine.write([put("a", "1")]);
  const boot = changesOf(engine).boot;
  await engine.write([put("b", "2")]);
  const crashed = disk.crash();
  await engine.close();
  // As an older version wrote it: no marker line.
  const text = decoder.decode(crashed.bytes("wal.jsonl")!);
  const withoutMarker = crashed.reopen();
  withoutMarker.cut("wal.jsonl", 0);
  await withoutMarker.append(
    "wal.jsonl",
    new TextEncoder().encode(text.slice(text.indexOf("\n") + 1)),
  );
  await withoutMarker.sync("wal.jsonl");
  const told: string[] = [];
  const older = await open(withoutMarker, { log: (m) => told.push(m) });
  assertNotEquals(changesOf(older).boot, boot);
  assertEquals([changesOf(older).last, told], [0, []]);
  assertEquals(decoder.decode((await older.get("b"))!.value!), "2");
  await older.close();

  // A marker that claims more changes than the log holds: not continued, and told.
  const claiming = crashed.reopen();
  const marker = markerOf(claiming) as { changes: { exactAfter: number } };
  marker.changes.exactAfter = 5;
  claiming.cut("wal.jsonl", 0);
  const rest = text.slice(text.indexOf("\n") + 1);
  const { snapshot, changes } = marker as unknown as Record<string, unknown>;
  await claiming.append("wal.jsonl", encodeLine({ snapshot, changes }));
  await claiming.append("wal.jsonl", new TextEncoder().encode(rest));
  await claiming.sync("wal.jsonl");
  const broken = await open(claiming, { log: (m) => told.push(m) });
  assertNotEquals(changesOf(broken).boot, boot);
  assertEquals(told.length, 1);
  assert(told[0]!.includes("Starting a new numbering of changes"), told[0]);
  await broken.close();
});

Deno.test("change log: positions past its head are gone (a directory put back from a backup), and waiting there ends at once", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk);
  await engine.write([put("a", "1")]);
  const log = changesOf(engine);
  assertEquals(log.read(log.last + 3, 10, ""), "gone");
  assertEquals(log.versionsAt(["a"], log.last + 3, () => undefined), "gone");
  const started = performance.now();
  await log.wait(log.last + 3, 60_000);
  assert(performance.now() - started < 30_000, "waited past the head");
  assert(log.read(log.last, 10, "") !== "gone");
  await engine.close();
});

Deno.test("change log: a long log's replay rebuilds only the newest changes the log keeps, with the versions they replaced, and numbers all", () => {
  const replay = new ChangeReplay({ generation: 0 }, { maxEntries: 10, maxBytes: 1 << 20 });
  const marker = { snapshot: { bytes: 0, generation: 0 }, changes: JSON.parse(replay.fresh()) };
  replay.first(marker, 50);
  replaySets(replay, 50, (i) => `k${i % 4}`);
  const log = replay.finish();
  assertEquals([log.first, log.last], [41, 50]);
  const page = log.read(40, 100, "");
  assert(page !== "gone");
  assertEquals(page[0]!.seq, 41);
  // Change 41 is k0's (40 % 4), over k0's version 36.
  assertEquals([page[0]!.key, page[0]!.prev], ["k0", "0000000003e8-0024-n1"]);
  assertEquals(log.read(30, 10, ""), "gone");
});

Deno.test("change log: a damaged last record cut at start begins a new numbering (its number would go to the next write); an unfinished one does not", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk);
  for (const key of ["a", "b", "c"]) await engine.write([put(key, `value of ${key}`)]);
  const before = changesOf(engine);
  assertEquals(before.last, 3);
  const crashed = disk.crash();
  await engine.close();
  // Bit rot in c's record, which readers may have been given as change 3.
  const at = decoder.decode(crashed.bytes("wal.jsonl")!).indexOf('"value of c"') + 1;
  crashed.flipBits("wal.jsonl", at, 0x02);
  const told: string[] = [];
  const again = await open(crashed, { log: (m) => told.push(m) });
  assertNotEquals(changesOf(again).boot, before.boot);
  assert(told.some((m) => m.startsWith("Cut a torn last record")), told.join("\n"));
  assert(
    told.some((m) => m.includes("the log's last record was damaged and cut")),
    told.join("\n"),
  );
  await again.close();

  // A line without its newline is an append a crash cut short: never fsync'd, never numbered.
  const replay = new ChangeReplay({ generation: 0 }, undefined, () => {});
  replay.first({ snapshot: { bytes: 0, generation: 0 }, changes: JSON.parse(replay.fresh()) }, 0);
  replay.cut(true);
  const kept = replay.finish();
  replay.cut(false);
  assertNotEquals(replay.finish().boot, kept.boot);
});

Deno.test("change log: a shutdown whose disk has no room for the newest changes in the log's marker snapshots without them, and the restart keeps the numbering", async () => {
  const inner = createFakeDisk();
  const disk = overrideDisk(inner, {
    // No room for a log of more than 2 KiB: the marker with 40 changes of 100 B does not fit.
    writeAtomic: async (name: string, data: Uint8Array | AsyncIterable<Uint8Array>) => {
      if (name === "wal.jsonl" && data instanceof Uint8Array && data.length > 2048) {
        throw new Error("No space left on device (os error 28)");
      }
      await inner.writeAtomic(name, data);
    },
  });
  const engine = await open(disk, { reserveMinBytes: 0 });
  for (let i = 0; i < 40; i++) await engine.write([put(`k${i}`, "x".repeat(100))]);
  const { boot, last } = changesOf(engine);
  await engine.close();
  const marker = markerOf(inner) as { changes: { recent: unknown[]; exactAfter: number } };
  assertEquals([marker.changes.recent.length, marker.changes.exactAfter], [0, 40]);
  const again = await open(inner.reopen());
  assertEquals([changesOf(again).boot, changesOf(again).last], [boot, last]);
  assertEquals(decoder.decode((await again.get("k39"))!.value!), "x".repeat(100));
  await again.close();
});

Deno.test("change log: under a snapshot newer than the log's marker (a crash between its rename and the log's cut), the changes past where that snapshot's read ended are kept; from another numbering's, none", async () => {
  const replayed = (snapshot: { generation: number; changes?: unknown }) => {
    const replay = new ChangeReplay(snapshot, undefined, () => {});
    const changes = { log: "L", from: 10, exactAfter: 10, recent: [] };
    replay.first({ snapshot: { bytes: 9, generation: 1 }, changes }, 8);
    replaySets(replay, 8, (i) => `k${i}`);
    const log = replay.finish();
    return [log.boot, log.first, log.last];
  };
  // The snapshot's read ended at change 15: 16, 17 and 18 were replayed over what it holds.
  assertEquals(replayed({ generation: 2, changes: { log: "L", exactAfter: 15 } }), ["L", 16, 18]);
  // Without what it says (a snapshot from before 2026-12-07), or of another numbering: none kept.
  assertEquals(replayed({ generation: 2 }), ["L", 19, 18]);
  assertEquals(replayed({ generation: 2, changes: { log: "M", exactAfter: 15 } }), ["L", 19, 18]);
  // The marker's own snapshot: every change after its exactAfter.
  assertEquals(replayed({ generation: 1, changes: { log: "L", exactAfter: 15 } }), ["L", 11, 18]);

  // A snapshot says it in its closing line.
  const disk = createFakeDisk();
  const engine = await open(disk);
  for (let i = 0; i < 5; i++) await engine.write([put(`k${i}`, "v")]);
  const boot = changesOf(engine).boot;
  await engine.close();
  const text = decoder.decode(disk.bytes("snapshot.json")!);
  const closing = JSON.parse("{" + text.trimEnd().split("\n").at(-1)!.slice(2));
  assertEquals(closing.changes, { log: boot, exactAfter: 5 });
});

Deno.test("change log: a kill -9 right after a snapshot cut the log still finds the newest changes before the cut (a periodic cut's marker carries some)", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk, { snapshotEveryBytes: 8192 });
  let n = 0;
  while (engine.stats().snapshotBytes === 0 && n < 1000) {
    await engine.write([put(`k${n++ % 50}`, "v".repeat(60))]);
  }
  // The cut after the snapshot: the log's marker names it.
  const cut = () => (markerOf(disk).snapshot as { generation: number }).generation >= 1;
  for (let i = 0; i < 1000 && !cut(); i++) await new Promise((r) => setTimeout(r, 10));
  assert(cut(), "the log was cut");
  const before = changesOf(engine);
  const crashed = disk.crash();
  await engine.close();
  const again = changesOf(await open(crashed));
  assertEquals([again.boot, again.last], [before.boot, before.last]);
  // A quarter of 8 KiB: about 20 changes of 60-byte values, served as they were.
  assert(again.first <= before.last - 10, `first ${again.first}, last ${before.last}`);
  const page = again.read(again.first - 1, 100, "");
  assert(page !== "gone");
  const old = before.read(again.first - 1, 100, "");
  assert(old !== "gone");
  assertEquals(page.map(shown), old.map(shown));
});

Deno.test("change log: a log that cannot be synced at start starts a new numbering, and says why, instead of refusing the start", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk);
  await engine.write([put("a", "1")]);
  const boot = changesOf(engine).boot;
  const crashed = disk.crash();
  await engine.close();
  const failing = overrideDisk(crashed, {
    sync: () => Promise.reject(new Error("Input/output error (os error 5)")),
  });
  const told: string[] = [];
  const again = await open(failing, { log: (m) => told.push(m) });
  assertNotEquals(changesOf(again).boot, boot);
  assert(
    told.some((m) => m.includes("cannot be synced at start (Input/output error")),
    told.join(),
  );
  assertEquals(decoder.decode((await again.get("a"))!.value!), "1");
  await again.close().catch(() => {}); // its disk refuses syncs: its shutdown snapshot fails
});
