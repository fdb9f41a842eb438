import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { createDenoDisk } from "./disk.ts";
import { createFakeDisk, type FakeDisk, IO_ERROR } from "../../tests/doubles/fake_disk.ts";
import { open, put, textOf } from "../../tests/doubles/engine_test_helpers.ts";
import { RecoveryError } from "../engine/open_engine.ts";
import { Wal } from "./wal.ts";
import { ShutdownSnapshotError, UnreadableFileError } from "./recovery.ts";

const decoder = new TextDecoder();

/** A disk whose log holds three records (a, b, c), all synced, no snapshot. */
async function threeRecords(): Promise<{ disk: FakeDisk; lastStart: number; end: number }> {
  const disk = createFakeDisk();
  const engine = await open(disk);
  for (const key of ["a", "b", "c"]) await engine.write([put(key, `value of ${key}`)]);
  const log = disk.bytes("wal.jsonl")!;
  const end = log.length;
  const lastStart = log.lastIndexOf(0x0a, end - 2) + 1;
  return { disk: disk.crash(), lastStart, end };
}

Deno.test("recovery: a log cut at every byte of its last record keeps exactly the records before it", async () => {
  const { disk, lastStart, end } = await threeRecords();
  for (let cut = lastStart; cut <= end; cut++) {
    const copy = disk.crash();
    copy.cut("wal.jsonl", cut);
    const engine = await open(copy);
    const keys = [];
    for (const key of ["a", "b", "c"]) {
      if ((await textOf(engine, key)) !== undefined) keys.push(key);
    }
    assertEquals(keys, cut === end ? ["a", "b", "c"] : ["a", "b"], `cut at ${cut}`);
    // The torn tail is cut off, so the next record starts on a clean line.
    assertEquals(copy.bytes("wal.jsonl")!.length, cut === end ? end : lastStart);
    await engine.write([put("d", "after")]);
    const again = await open(copy.crash());
    assertEquals(await textOf(again, "d"), "after", `cut at ${cut}`);
  }
});

Deno.test("recovery: a torn last record cut at start is told in one line naming the file and byte", async () => {
  const { disk, lastStart, end } = await threeRecords();
  const intact: string[] = [];
  await open(disk.crash(), { log: (m) => intact.push(m) });
  assertEquals(intact, []);
  const copy = disk.crash();
  copy.cut("wal.jsonl", end - 5);
  const told: string[] = [];
  await open(copy, { log: (m) => told.push(m) });
  assertEquals(told.length, 1);
  assert(
    told[0]!.startsWith(`Cut a torn last record of wal.jsonl at byte ${lastStart} (`),
    told[0],
  );
  assert(told[0]!.includes(`${end - 5 - lastStart} bytes dropped`), told[0]);
  assert(!told[0]!.includes("\n"), told[0]);
});

Deno.test("recovery: a log that continues a snapshot refuses to start when snapshot.json is gone", async () => {
  const disk = createFakeDisk();
  const first = await open(disk);
  await first.write([put("old", "in the snapshot")]);
  await first.close(); // writes snapshot.json and restarts the log
  const second = await open(disk.reopen());
  await second.write([put("new", "in the log")]);
  const crashed = disk.crash();
  const whole = await open(crashed.crash());
  assertEquals([await textOf(whole, "old"), await textOf(whole, "new")], [
    "in the snapshot",
    "in the log",
  ]);
  await crashed.remove("snapshot.json");
  const err = await assertRejects(() => open(crashed), RecoveryError);
  assert(err.message.includes("snapshot.json is missing"), err.message);
  assertEquals([err.file, err.offset], ["wal.jsonl", 0]);
});

Deno.test("recovery: a log that continues a newer snapshot refuses an older snapshot.json put back", async () => {
  // Found by review: a backup of snapshot.json is older than the log that continues a later one;
  // started on it, the writes between the two snapshots were lost without a word.
  const disk = createFakeDisk();
  const first = await open(disk);
  await first.write([put("a", "first session")]);
  await first.close(); // snapshot generation 1
  const backup = (await disk.read("snapshot.json"))!;
  const second = await open(disk.reopen());
  await second.write([put("b", "second session")]);
  await second.close(); // snapshot generation 2; the log continues it
  await disk.writeAtomic("snapshot.json", backup);
  const err = await assertRejects(() => open(disk.reopen()), RecoveryError);
  assert(err.message.includes("continues snapshot generation 2"), err.message);
  assert(err.message.includes("generation 1, older"), err.message);
  assertEquals([err.file, err.offset], ["wal.jsonl", 0]);
});

Deno.test("recovery: a bad checksum in the last record drops just that record", async () => {
  const { disk, lastStart } = await threeRecords();
  disk.flip("wal.jsonl", lastStart + 30);
  const engine = await open(disk);
  assertEquals(await textOf(engine, "b"), "value of b");
  assertEquals(await textOf(engine, "c"), undefined);
});

Deno.test("recovery: a flipped byte in an earlier record refuses to start, naming file and offset", async () => {
  const { disk } = await threeRecords();
  const log = disk.bytes("wal.jsonl")!;
  const second = log.indexOf(0x0a) + 1;
  disk.flip("wal.jsonl", second + 40);
  const err = await assertRejects(() => open(disk), RecoveryError);
  assert(err.message.includes(`wal.jsonl is damaged at byte ${second}`), err.message);
  assertEquals([err.file, err.offset], ["wal.jsonl", second]);
});

/** The offset of the first byte of `key`'s value in the log (its record's "value of <key>"). */
function valueOffset(disk: FakeDisk, key: string): number {
  const at = decoder.decode(disk.bytes("wal.jsonl")!).indexOf(`"value of ${key}"`);
  assert(at > 0, `no value of ${key} in the log`);
  return at + 1; // the log is ASCII: characters are bytes
}

Deno.test("recovery: one flipped bit in an earlier record's value, still valid JSON, refuses to start on its checksum", async () => {
  const { disk } = await threeRecords();
  const at = valueOffset(disk, "b");
  const second = disk.bytes("wal.jsonl")!.lastIndexOf(0x0a, at) + 1; // b's record
  disk.flipBits("wal.jsonl", at, 0x02); // "value of b" -> "talue of b"
  assert(decoder.decode(disk.bytes("wal.jsonl")!).includes('"talue of b"'));
  const err = await assertRejects(() => open(disk), RecoveryError);
  assert(err.message.includes("the checksum does not match"), err.message);
  assertEquals([err.file, err.offset], ["wal.jsonl", second]);
});

Deno.test("recovery: one flipped bit in the last record's value, still valid JSON, drops it as a torn tail", async () => {
  // As recovery.ts documents: a bad last line is cut as a torn tail, even one bit rot made bad.
  const { disk, lastStart, end } = await threeRecords();
  disk.flipBits("wal.jsonl", valueOffset(disk, "c"), 0x02);
  const told: string[] = [];
  const engine = await open(disk, { log: (m) => told.push(m) });
  assertEquals(await Promise.all(["a", "b", "c"].map((k) => textOf(engine, k))), [
    "value of a",
    "value of b",
    undefined,
  ]);
  // And a new numbering of changes: readers may have been given the record cut (change_recovery.ts).
  assertEquals(told.length, 2);
  assert(told[0]!.includes(`at byte ${lastStart} (${end - lastStart} bytes dropped)`), told[0]);
  assert(told[0]!.includes("the checksum does not match"), told[0]);
  assert(told[1]!.includes("Starting a new numbering of changes"), told[1]);
  assertEquals(disk.bytes("wal.jsonl")!.length, lastStart);
  await engine.close();
});

Deno.test("recovery: a damaged snapshot refuses to start, naming snapshot.json and the offset", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk);
  await engine.write([put("a", "1"), put("b", "2")]);
  await engine.close();
  const text = decoder.decode(disk.bytes("snapshot.json")!);
  const secondLine = text.indexOf("\n") + 1;
  disk.flip("snapshot.json", secondLine + 1);
  const err = await assertRejects(() => open(disk.reopen()), RecoveryError);
  assertEquals([err.file, err.offset], ["snapshot.json", secondLine]);
});

Deno.test("recovery: a crash loses nothing acknowledged, across background snapshots", async () => {
  for (const crashAfter of [7, 40, 93]) {
    const disk = createFakeDisk();
    const engine = await open(disk, { snapshotEveryBytes: 2_000 });
    const acked = new Map<string, string>();
    let crashed: FakeDisk | undefined;
    let frozen = new Map<string, string>();
    const writes = [];
    for (let i = 0; i < 120; i++) {
      const key = `k${i % 30}`;
      const value = `v${i}`;
      writes.push(
        engine.write([put(key, value)]).then(() => {
          acked.set(key, value);
          if (acked.size + i >= crashAfter && !crashed) {
            crashed = disk.crash();
            frozen = new Map(acked);
          }
        }),
      );
      if (i % 10 === 0) await Promise.resolve();
    }
    await Promise.all(writes);
    assert(crashed && engine.stats().snapshotBytes > 0);
    const restarted = await open(crashed);
    for (const [key, value] of frozen) {
      const now = await textOf(restarted, key);
      // A later unacknowledged write may also have survived; an older value may not.
      assert(
        typeof now === "string" && Number(now.slice(1)) >= Number(value.slice(1)),
        `${key}: ${now}`,
      );
    }
    await engine.close();
  }
});

Deno.test("recovery: a crash at any disk operation of a session keeps what was acknowledged", async () => {
  const base = createFakeDisk();
  const first = await open(base, { snapshotEveryBytes: 300 });
  for (let i = 0; i < 6; i++) await first.write([put(`base${i}`, "x".repeat(40))]);
  await first.close();
  let completed = 0;
  for (let limit = 0; limit < 60; limit++) {
    const disk = base.crash({ failAfterOps: limit });
    const acked: string[] = [];
    try {
      const engine = await open(disk, { snapshotEveryBytes: 300 });
      for (let i = 0; i < 4; i++) {
        await engine.write([put(`new${i}`, "y".repeat(60)), { op: "delete", key: `base${i}` }]);
        acked.push(`new${i}`);
      }
      await engine.close();
      completed++;
    } catch (err) {
      if (!(err as Error).message.includes("fake disk stopped")) throw err;
    }
    const restarted = await open(disk.crash());
    for (const key of acked) {
      assertEquals(await textOf(restarted, key), "y".repeat(60), `limit ${limit}`);
    }
    assertEquals(await textOf(restarted, "base5"), "x".repeat(40), `limit ${limit}`);
    for (let i = 0; i < acked.length; i++) assertEquals(await textOf(restarted, `base${i}`), null);
  }
  // The last limits let whole sessions finish: every operation of one was a crash point.
  assert(completed > 0 && completed < 60, `${completed} of 60 sessions completed`);
});

Deno.test("recovery: a torn snapshot temp file is ignored", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk);
  await engine.write([put("a", "1")]);
  await engine.close();
  const torn = disk.reopen();
  await torn.append("snapshot.json.tmp", new TextEncoder().encode('{"format":"ringkv-snap'));
  await torn.sync("snapshot.json.tmp");
  await torn.writeAtomic("cluster.json", new TextEncoder().encode("null\n"));
  const restarted = await open(torn.crash());
  assertEquals(await textOf(restarted, "a"), "1");
  await restarted.close();
});

Deno.test("recovery: snapshot plus log replay restores every key, on a real directory", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-engine-" });
  try {
    const first = await open(await createDenoDisk(dir));
    for (let i = 0; i < 50; i++) await first.write([put(`key-${i}`, `value-${i}`)]);
    await first.close();
    const snapshot = JSON.parse(await Deno.readTextFile(`${dir}/snapshot.json`));
    assertEquals([snapshot.entries.length, snapshot.generation], [50, 1]);
    // The log restarts with just the marker naming the snapshot it continues.
    const { size } = await Deno.stat(`${dir}/snapshot.json`);
    const log = await Deno.readTextFile(`${dir}/wal.jsonl`);
    assertEquals(log.split("\n").length, 2, "one line");
    const marker = JSON.parse(log);
    assertEquals(marker.snapshot, { bytes: size, generation: 1 });
    // With the change log's newest changes, for watchers behind at the shutdown.
    assertEquals(marker.changes.recent.length, 50);
    // The second session ends like kill -9: files released, no close(), no snapshot.
    const disk = await createDenoDisk(dir);
    const second = await open(disk);
    for (let i = 50; i < 100; i++) await second.write([put(`key-${i}`, `value-${i}`)]);
    await second.write([{ op: "delete", key: "key-7" }]);
    await disk.close();
    const third = await open(await createDenoDisk(dir));
    assertEquals(await textOf(third, "key-0"), "value-0");
    assertEquals(await textOf(third, "key-99"), "value-99");
    assertEquals(await textOf(third, "key-7"), null);
    assertEquals(third.stats().keys, 99);
    await third.close();
    const fourth = await open(await createDenoDisk(dir));
    assertEquals(fourth.stats().keys, 99);
    assertEquals(fourth.stats().tombstones, 1);
    await fourth.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const hasDevFull = await Deno.stat("/dev/full").then(() => true, () => false);

Deno.test({
  name: "a log round whose (synchronous) write fails fails its writers and refuses later writes",
  ignore: !hasDevFull,
  async fn() {
    // /dev/full fails every write with ENOSPC: the real disk's writeSync path for small rounds.
    const disk = await createDenoDisk("/dev");
    const wal = new Wal(disk, "full", 0);
    const seq = wal.append(new TextEncoder().encode('{"set":[]}\n'));
    const err = await assertRejects(() => wal.durable(seq));
    assert(String(err).includes("No space left"), String(err));
    assertThrows(() => wal.append(new Uint8Array([0x0a])), Error, "later writes are refused");
    await disk.close();
  },
});

Deno.test("recovery: a file that cannot be read (EIO) stops the start, naming the file and the error in one line, never an empty node", async () => {
  const written = createFakeDisk();
  const engine = await open(written);
  await engine.write([put("a", "one")]);
  await engine.close(); // a snapshot holds a, the log is empty
  const reopened = written.reopen();
  const { disk } = await threeRecords(); // the log holds a, b, c; no snapshot
  for (
    const [source, file] of [[reopened, "snapshot.json"], [disk, "wal.jsonl"], [
      disk,
      "node.json",
    ]] as const
  ) {
    const broken = source.reopen();
    broken.failReads(file, true);
    const err = await assertRejects(() => open(broken), UnreadableFileError);
    assertEquals(err.file, file);
    assert(err.message.includes(`reading ${file} failed`), err.message);
    assert(err.message.includes(IO_ERROR), err.message);
    assert(!err.message.includes("\n"), err.message);
    broken.failReads(file, false);
    const again = await open(broken);
    assert((await textOf(again, "a")) !== undefined, `${file}: the data is still there`);
    await again.close();
  }
});

Deno.test("recovery: a snapshot that fails at close says the log keeps every write, and none is lost", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk);
  await engine.write([put("kept", "in the log")]);
  disk.setCapacity(1);
  const err = await assertRejects(() => engine.close(), ShutdownSnapshotError);
  assert(
    err.message.startsWith("Cannot write snapshot.json at shutdown: "),
    err.message,
  );
  assert(err.message.includes("No space left on device"), err.message);
  assert(err.message.includes("wal.jsonl keeps every acknowledged write"), err.message);
  disk.setCapacity(undefined);
  const again = await open(disk.crash());
  assertEquals(await textOf(again, "kept"), "in the log");
});

Deno.test("recovery: a purge in the log is replayed (the tombstone stays gone), after a snapshot too, and a torn purge leaves the tombstone", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk);
  await engine.write([put("a", "1"), put("b", "2"), put("c", "3")]);
  await engine.write([{ op: "delete", key: "a" }, { op: "delete", key: "b" }]);
  const version = (await engine.get("a"))!.version;
  assertEquals(await engine.purge([{ key: "a", version }], Date.now()), ["a"]);
  const deletedBy = Date.now();
  await new Promise((r) => setTimeout(r, 5));
  const crashed = disk.crash();
  const afterCrash = await open(crashed);
  assertEquals(await afterCrash.get("a"), undefined);
  assertEquals(await textOf(afterCrash, "b"), null, "b's tombstone stays");
  assertEquals(afterCrash.stats().tombstones, 1);
  // When b's tombstone was stored is kept: a restart does not start its grace again.
  const stored = (e: typeof engine) => e.oldTombstones(deletedBy, 9).map((t) => t.key);
  assertEquals(stored(afterCrash), ["b"]);
  await afterCrash.close(); // a snapshot without a
  const afterSnapshot = await open(crashed.crash());
  assertEquals([await afterSnapshot.get("a"), afterSnapshot.stats().tombstones], [undefined, 1]);
  assertEquals(stored(afterSnapshot), ["b"], "and from a snapshot");
  // The purge's record cut short: the tombstone is back, as before the purge.
  const log = disk.bytes("wal.jsonl")!;
  const torn = disk.crash();
  torn.cut("wal.jsonl", log.length - 2);
  const afterTorn = await open(torn);
  assertEquals(await textOf(afterTorn, "a"), null);
});
