import { assert, assertEquals, assertRejects } from "@std/assert";
import { until } from "../../tests/helpers/poll.ts";
import { RingkvError } from "../../shared/errors.ts";
import { formatVersion } from "../../shared/version.ts";
import {
  atomicWritesGated,
  open,
  overrideDisk,
  put,
  settle,
  textOf,
} from "../../tests/doubles/engine_test_helpers.ts";
import { createFakeDisk, type FakeDisk, NO_SPACE } from "../../tests/doubles/fake_disk.ts";
import { RESERVE_FILE } from "../storage/reserve.ts";
import type { NodeEngine } from "./engine.ts";

const quiet = () => {};
const MIN = 4096;
const VALUE = 200;

function used(disk: FakeDisk): number {
  return disk.names().reduce((n, name) => n + disk.bytes(name)!.length, 0);
}

/** Overwrites k0..k4 until a write is refused: the last acknowledged value of each key, and the refused key. */
async function fillWithLog(
  engine: NodeEngine,
): Promise<{ acked: Map<string, string>; refusedKey: string }> {
  const acked = new Map<string, string>();
  for (let i = 0; i < 10_000; i++) {
    const key = `k${i % 5}`;
    const value = `${i}:`.padEnd(VALUE, "v");
    try {
      await engine.write([put(key, value)]);
    } catch (err) {
      assert((err as Error).message.includes(NO_SPACE), (err as Error).message);
      return { acked, refusedKey: key };
    }
    acked.set(key, value);
  }
  throw new Error("Cannot fill the disk: 10,000 writes all succeeded");
}

Deno.test("full disk: a log that fills the disk is compacted in the reserve's room, and the node takes writes again by itself, losing no acknowledged write", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk, { firstRetryMs: 5, log: quiet, reserveMinBytes: MIN });
  await engine.write([put("k0", "first")]);
  assertEquals(disk.bytes(RESERVE_FILE)?.length, engine.stats().reserveBytes);
  assert(engine.stats().reserveBytes >= MIN);
  // The log (64 MiB before a snapshot) fills the disk long before the data does.
  disk.setCapacity(used(disk) + 20 * VALUE);
  const { acked, refusedKey } = await fillWithLog(engine);
  assert(acked.size === 5, `only ${acked.size} keys acknowledged`);
  assertEquals(engine.writeHealth().state, "read-only");
  const refused = await assertRejects(() => engine.write([put("later", "x")]), RingkvError);
  assertEquals([refused.code, refused.status], ["unavailable", 503]);
  // Reads go on (the refused key's waits on the repair's reload).
  for (const [key, value] of acked) {
    if (key !== refusedKey) assertEquals(await textOf(engine, key), value);
  }
  // Nothing is freed by hand: the repair's snapshot cuts the log in the reserve's room.
  await until("the node takes writes", () => engine.writeHealth().state === "writable");
  for (const [key, value] of acked) assertEquals(await textOf(engine, key), value);
  assert(engine.stats().walBytes < 200, `the log still has ${engine.stats().walBytes} bytes`);
  // Held again for the next snapshot (the data and a quarter of the minimum), with room left
  // for the log: this file system is too small for the whole minimum besides.
  const { reserveBytes, snapshotBytes } = engine.stats();
  assert(reserveBytes >= snapshotBytes + MIN / 4, `the reserve holds ${reserveBytes} bytes`);
  assertEquals(disk.bytes(RESERVE_FILE)?.length, engine.stats().reserveBytes);
  await engine.write([put("after", "taken")]);
  const again = await open(disk.crash(), { log: quiet, reserveMinBytes: MIN });
  for (const [key, value] of acked) assertEquals(await textOf(again, key), value, key);
  assertEquals([await textOf(again, "after"), await textOf(again, "later")], ["taken", undefined]);
  await again.close();
  await engine.close();
});

Deno.test("full disk: once its log has filled the disk, the node snapshots before the log fills it again, and refuses no later write", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk, { firstRetryMs: 5, log: quiet, reserveMinBytes: MIN });
  await engine.write([put("k0", "first")]);
  disk.setCapacity(used(disk) + 20 * VALUE);
  const { acked } = await fillWithLog(engine);
  await until("the node takes writes", () => engine.writeHealth().state === "writable");
  // Five times what the log held when it filled the disk: each time, a snapshot cuts it first.
  for (let i = 0; i < 100; i++) {
    const value = `again${i}:`.padEnd(VALUE, "w");
    await engine.write([put(`k${i % 5}`, value)]);
    acked.set(`k${i % 5}`, value);
    await until("no snapshot under way", () => !disk.names().includes("snapshot.json.tmp"));
  }
  assertEquals(engine.writeHealth(), { state: "writable", retries: 0 });
  const again = await open(disk.crash(), { log: quiet, reserveMinBytes: MIN });
  for (const [key, value] of acked) assertEquals(await textOf(again, key), value, key);
  await again.close();
  await engine.close();
});

/** A fake disk whose writes of `snapshot.json` wait while the gate is held. */
function snapshotGatedDisk() {
  const gated = atomicWritesGated();
  return {
    disk: gated.disk,
    hold: () => gated.hold("snapshot.json"),
    waiting: () => gated.waiting("snapshot.json"),
    release: () => gated.release("snapshot.json"),
  };
}

Deno.test("full disk: writes that arrive while a snapshot uses the reserve's room wait for it, and never take that room (the node was left with no reserve and no room, read-only for good)", async () => {
  const { disk, hold, waiting, release } = snapshotGatedDisk();
  const engine = await open(disk, { firstRetryMs: 5, log: quiet, reserveMinBytes: MIN });
  // 10 kB of data that is not overwritten: its snapshot needs more than a few log records.
  for (let i = 0; i < 5; i++) await engine.write([put(`big${i}`, "b".repeat(10 * VALUE))]);
  disk.setCapacity(used(disk) + 40 * VALUE);
  await fillWithLog(engine);
  await until("the node takes writes", () => engine.writeHealth().state === "writable");
  hold();
  const writes: Promise<unknown>[] = [];
  const latest = new Map<string, number>();
  let n = 0;
  const write = (key: string) => {
    const seq = n++;
    const acknowledged = () => latest.set(key, Math.max(latest.get(key) ?? -1, seq));
    writes.push(engine.write([put(key, `${seq}:`.padEnd(VALUE, "w"))]).then(acknowledged, quiet));
  };
  for (let i = 0; waiting() === 0; i++) {
    assert(i < 1000, "no snapshot started");
    write(`k${i % 5}`);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  // A snapshot in the reserve's room waits on its write: more writes than the room holds
  // arrive, one by one (each its own log round, were rounds not paused).
  for (let i = 0; i < 150; i++) {
    write(`k${i % 5}`);
    await new Promise((resolve) => setTimeout(resolve, 0));
  }
  release();
  await Promise.allSettled(writes);
  await until(
    "writable, holding the reserve",
    () => engine.writeHealth().state === "writable" && engine.stats().reserveBytes > 0,
  );
  const again = await open(disk.crash(), { log: quiet, reserveMinBytes: MIN });
  for (const [key, seq] of latest) {
    // The last acknowledged write, never a refused one (a snapshot never keeps those).
    const now = await textOf(again, key);
    assertEquals(Number(now!.split(":")[0]), seq, `${key}: ${now?.slice(0, 8)}`);
  }
  await again.close();
  await engine.close();
});

Deno.test("full disk: a write queued while a snapshot uses the reserve's room, whose round then fails, is not kept by that snapshot", async () => {
  const { disk, hold, waiting, release } = snapshotGatedDisk();
  const engine = await open(disk, { firstRetryMs: 5, log: quiet, reserveMinBytes: MIN });
  await engine.write([put("k0", "first")]);
  disk.setCapacity(used(disk) + 20 * VALUE);
  const { acked } = await fillWithLog(engine);
  await until("the node takes writes", () => engine.writeHealth().state === "writable");
  hold();
  for (let i = 0; waiting() === 0; i++) {
    assert(i < 1000, "no snapshot started");
    const value = `again${i}:`.padEnd(VALUE, "w");
    await engine.write([put(`k${i % 5}`, value)]);
    acked.set(`k${i % 5}`, value);
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  // The snapshot will read memory, which holds this write; its round (after the snapshot's
  // file is written) fails.
  const refused = assertRejects(() => engine.write([put("k0", "refused".padEnd(VALUE, "r"))]));
  await settle();
  disk.failSyncs(1);
  release();
  await refused;
  await until("the node takes writes", () => engine.writeHealth().state === "writable");
  for (const [key, value] of acked) assertEquals(await textOf(engine, key), value, key);
  const again = await open(disk.crash(), { log: quiet, reserveMinBytes: MIN });
  for (const [key, value] of acked) assertEquals(await textOf(again, key), value, key);
  await again.close();
  await engine.close();
});

Deno.test("full disk: the reserve grows with the data, so it always has room for the snapshot: the node recovers from a log that filled the disk and then refuses no write", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk, { firstRetryMs: 5, log: quiet, reserveMinBytes: MIN });
  const acked = new Map<string, string>();
  for (let i = 0; i < 60; i++) {
    const value = "d".repeat(VALUE);
    await engine.write([put(`grow${i}`, value)]);
    acked.set(`grow${i}`, value);
  }
  // 60 keys of 200 bytes outgrew the first reserve (4 KiB): it grew with them.
  const data = 60 * (VALUE + 60);
  assert(engine.stats().reserveBytes > data, `reserve ${engine.stats().reserveBytes}`);
  disk.setCapacity(used(disk) + 20 * VALUE);
  const { acked: last } = await fillWithLog(engine);
  for (const [key, value] of last) acked.set(key, value);
  await until("writable again", () => engine.writeHealth().state === "writable");
  // Ten times what the log held when it filled the disk: it is cut before it fills it again
  // (writes wait while a snapshot uses the reserve's room; they used to fill it meanwhile).
  for (let i = 0; i < 200; i++) {
    const value = `${i}:`.padEnd(VALUE, "a");
    await engine.write([put(`k${i % 5}`, value)]);
    acked.set(`k${i % 5}`, value);
  }
  assertEquals(engine.writeHealth(), { state: "writable", retries: 0 });
  const again = await open(disk.crash(), { log: quiet, reserveMinBytes: MIN });
  for (const [key, value] of acked) assertEquals(await textOf(again, key), value, key);
  await again.close();
  await engine.close();
});

Deno.test("full disk: when the data leaves no room for the reserve, the node stays read-only, its repair naming snapshot.reserve, and takes writes once room is freed", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk, { firstRetryMs: 5, log: quiet, reserveMinBytes: MIN });
  disk.setCapacity(used(disk) + 12_000);
  const writes = () => engine.writeHealth();
  /** The reason or the last repair's error: the reserve's ENOSPC. */
  const shortWhy = () =>
    [writes().reason, writes().repairError].find((why) => why?.includes(RESERVE_FILE));
  const short = () => shortWhy() !== undefined;
  const acked: string[] = [];
  // New keys until the data leaves no room: a log that fills the disk first is compacted.
  for (let i = 0; i < 400 && !short(); i++) {
    await until("writable, or short of room", () => writes().state === "writable" || short());
    if (short()) break;
    await engine.write([put(`n${i}`, "z".repeat(VALUE))]).then(() => acked.push(`n${i}`), quiet);
  }
  assert(short(), "the data never outgrew the room");
  const why = shortWhy()!;
  assert(why.includes("the next snapshot needs") && why.includes("No space left on device"), why);
  await until("a repair failed", () => writes().retries >= 1);
  assertEquals(engine.writeHealth().state, "read-only");
  for (const key of acked) assertEquals(await textOf(engine, key), "z".repeat(VALUE), key);
  disk.setCapacity(undefined);
  await until("the node takes writes", () => engine.writeHealth().state === "writable");
  await engine.write([put("after", "taken")]);
  const again = await open(disk.crash(), { log: quiet, reserveMinBytes: MIN });
  for (const key of [...acked, "after"]) assert(await textOf(again, key), key);
  await again.close();
  await engine.close();
});

Deno.test("full disk: a node started on a disk its log filled (reserve in place) compacts and takes writes", async () => {
  const disk = createFakeDisk();
  const first = await open(disk, { firstRetryMs: 60_000, log: quiet, reserveMinBytes: MIN });
  await first.write([put("k0", "first")]);
  disk.setCapacity(used(disk) + 20 * VALUE);
  const { acked } = await fillWithLog(first);
  const crashed = disk.crash();
  crashed.setCapacity(used(disk));
  await first.close();
  const engine = await open(crashed, { firstRetryMs: 5, log: quiet, reserveMinBytes: MIN });
  for (const [key, value] of acked) assertEquals(await textOf(engine, key), value, key);
  await assertRejects(() => fillWithLog(engine).then(() => engine.write([put("x", "y")])));
  await until("the node takes writes", () => engine.writeHealth().state === "writable");
  await engine.write([put("after", "taken")]);
  assertEquals(await textOf(engine, "after"), "taken");
  await engine.close();
});

Deno.test("no reserve (reserveMinBytes 0): no snapshot.reserve is written, and a log that fills the disk keeps the node read-only", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk, { firstRetryMs: 5, log: quiet, reserveMinBytes: 0 });
  await engine.write([put("k0", "first")]);
  assertEquals([disk.bytes(RESERVE_FILE), engine.stats().reserveBytes], [null, 0]);
  disk.setCapacity(used(disk) + 20 * VALUE);
  await fillWithLog(engine);
  await until("two repairs failed", () => engine.writeHealth().retries >= 2);
  assertEquals(engine.writeHealth().state, "read-only");
  await engine.close();
});

Deno.test("full disk: writes that arrive while a snapshot uses the reserve's room and while it cuts the log do not take the room its repair needs: the node never stays read-only (found by review)", async () => {
  for (const [during, cutting] of [[14, 0], [12, 6], [14, 5]] as const) {
    const gated = atomicWritesGated();
    const engine = await open(gated.disk, { firstRetryMs: 5, log: quiet, reserveMinBytes: MIN });
    for (let i = 0; i < 5; i++) await engine.write([put(`k${i}`, "s".repeat(VALUE))]);
    gated.disk.setCapacity(used(gated.disk) + 4000);
    const acked = new Map<string, number>();
    await fillWithLog(engine);
    await until("the node takes writes", () => engine.writeHealth().state === "writable");
    gated.hold("snapshot.json");
    let n = 0;
    const writes: Promise<void>[] = [];
    // Each key's last acknowledged write (writes of one key are applied in the order sent).
    const write = () => {
      const seq = n++;
      const key = `k${seq % 5}`;
      const done = () => void acked.set(key, Math.max(acked.get(key) ?? -1, seq));
      writes.push(engine.write([put(key, `${seq}:`.padEnd(VALUE, "w"))]).then(done, quiet));
    };
    // One write at a time until one sets a snapshot off in the reserve's room (it then waits).
    for (let i = 0; gated.waiting("snapshot.json") === 0; i++) {
      assert(i < 1000, "no snapshot started");
      write();
      await Promise.race([writes.at(-1), new Promise((resolve) => setTimeout(resolve, 20))]);
    }
    for (let i = 0; i < during; i++) write();
    gated.hold("wal.jsonl");
    gated.release("snapshot.json");
    if (cutting > 0) {
      await until("the log's cut waits", () => gated.waiting("wal.jsonl") === 1);
      for (let i = 0; i < cutting; i++) write();
    }
    gated.release("wal.jsonl");
    await Promise.all(writes);
    await until(
      `writable again (${during}, ${cutting})`,
      () => engine.writeHealth().state === "writable",
    );
    await engine.write([put("after", "taken")]);
    const again = await open(gated.disk.crash(), { log: quiet, reserveMinBytes: MIN });
    for (const [key, seq] of acked) {
      const now = await textOf(again, key);
      assertEquals(Number(now!.split(":")[0]), seq, `${key}: ${now?.slice(0, 8)}`);
    }
    await again.close();
    await engine.close();
  }
});

Deno.test("full disk: a snapshot.reserve deleted by hand is written again by the next snapshot, at its full size (it was counted as held, never written again)", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk, {
    firstRetryMs: 5,
    log: quiet,
    reserveMinBytes: MIN,
    snapshotEveryBytes: 2000,
  });
  await engine.write([put("k0", "first")]);
  const held = engine.stats().reserveBytes;
  assertEquals(disk.bytes(RESERVE_FILE)?.length, held);
  await disk.remove(RESERVE_FILE);
  const generation = () => disk.bytes("snapshot.json")?.length ?? 0;
  for (let i = 0; generation() === 0; i++) {
    assert(i < 100, "no snapshot");
    await engine.write([put(`k${i % 5}`, "v".repeat(VALUE))]);
  }
  await until("the reserve is written again", () => disk.bytes(RESERVE_FILE) !== null);
  await until("no snapshot under way", () => !disk.names().includes("snapshot.json.tmp"));
  assertEquals(disk.bytes(RESERVE_FILE)!.length, engine.stats().reserveBytes);
  assert(engine.stats().reserveBytes >= held, `${engine.stats().reserveBytes} < ${held}`);
  await engine.close();
});

Deno.test("full disk: a write larger than the reserve's margin on a nearly full disk grows the reserve first, or is refused alone: the node never stays read-only (found by review)", async () => {
  for (const big of [3000, 7000, 20_000]) {
    const disk = createFakeDisk();
    const engine = await open(disk, { firstRetryMs: 5, log: quiet, reserveMinBytes: MIN });
    for (let i = 0; i < 5; i++) await engine.write([put(`k${i}`, "s".repeat(VALUE))]);
    disk.setCapacity(used(disk) + 30_000);
    // The log grows (overwrites) until 8 kB are left.
    for (let i = 0; (await disk.freeBytes())! >= 8000; i++) {
      assert(i < 10_000, "the disk never filled");
      await engine.write([put(`k${i % 5}`, `${i}:`.padEnd(VALUE, "o"))]);
    }
    const answer = await engine.write([put("big", "b".repeat(big))]).then(
      () => "acked",
      (err) => (err as Error).message,
    );
    assert(
      answer === "acked" || answer.includes("would leave no room for the next snapshot"),
      `${big}: ${answer}`,
    );
    await until(`writable (${big}: ${answer})`, () => engine.writeHealth().state === "writable");
    await engine.write([put("after", "small")]);
    const again = await open(disk.crash(), { log: quiet, reserveMinBytes: MIN });
    assertEquals(await textOf(again, "after"), "small");
    assertEquals(await textOf(again, "big"), answer === "acked" ? "b".repeat(big) : undefined);
    await again.close();
    await engine.close();
  }
});

Deno.test("full disk: a large value overwritten again and again on a disk 4 times its size is taken every time (an overwrite was counted as growth and refused, found by QA)", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk, { firstRetryMs: 5, log: quiet });
  disk.setCapacity(4 * 1024 * 1024);
  const big = (i: number) => `${i}:`.padEnd(900_000, "v");
  for (let i = 0; i < 6; i++) {
    await engine.write([put("big", big(i))]);
    await engine.write([put(`small${i}`, "s")]);
  }
  assertEquals(engine.writeHealth(), { state: "writable", retries: 0 });
  const again = await open(disk.crash(), { log: quiet });
  assertEquals(await textOf(again, "big"), big(5));
  await again.close();
  await engine.close();
});

Deno.test("full disk: a large write that asks statfs holds writes and compactions until its line is logged: no second snapshot starts beside one under way, no acknowledged write is lost (found by review)", async () => {
  const inner = createFakeDisk();
  inner.setCapacity(200 * 1024 * 1024);
  const statfs = Promise.withResolvers<void>();
  let holdStatfs = false;
  const snapshot = Promise.withResolvers<void>();
  let snapshotsAtOnce = 0;
  let mostAtOnce = 0;
  const disk = overrideDisk(inner, {
    freeBytes: async () => {
      if (holdStatfs) await statfs.promise;
      return await inner.freeBytes();
    },
    writeAtomic: async (name, data) => {
      if (name !== "snapshot.json") return await inner.writeAtomic(name, data);
      mostAtOnce = Math.max(mostAtOnce, ++snapshotsAtOnce);
      try {
        await snapshot.promise;
        return await inner.writeAtomic(name, data);
      } finally {
        snapshotsAtOnce--;
      }
    },
  });
  const engine = await open(disk, { firstRetryMs: 5, log: quiet, snapshotEveryBytes: 20_000 });
  holdStatfs = true;
  const acked = new Map<string, string>();
  const writes: Promise<void>[] = [];
  const write = (key: string, value: string) =>
    writes.push(engine.write([put(key, value)]).then(() => void acked.set(key, value), quiet));
  write("large", "L".repeat(70_000)); // waits in statfs
  for (let i = 0; i < 40; i++) {
    write(`u${i % 5}`, `${i}:`.padEnd(1000, "u"));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  holdStatfs = false;
  statfs.resolve();
  for (let i = 40; i < 80; i++) {
    write(`u${i % 5}`, `${i}:`.padEnd(1000, "u"));
    await new Promise((resolve) => setTimeout(resolve, 1));
  }
  snapshot.resolve();
  await Promise.all(writes);
  await until("no snapshot under way", () => snapshotsAtOnce === 0);
  assertEquals(mostAtOnce, 1, "two snapshots ran at once");
  const again = await open(disk.crash(), { log: quiet });
  for (const [key, value] of acked) assertEquals(await textOf(again, key), value, key);
  await again.close();
  await engine.close();
});

Deno.test("full disk: concurrent large overwrites and overwrites copied in (ingest) on a disk 4 times the data are all taken (found by review)", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk, { firstRetryMs: 5, log: quiet });
  disk.setCapacity(4 * 1024 * 1024);
  const big = (i: number) => `${i}:`.padEnd(600_000, "v");
  for (let round = 0; round < 6; round++) {
    await Promise.all([
      engine.write([put("a", big(round))]),
      engine.write([put("b", big(round))]),
    ]);
  }
  for (let round = 0; round < 4; round++) {
    const version = formatVersion(Date.now() + 1000 * (round + 1), 0, "ingest");
    const v = btoa(`c${round}:`.padEnd(600_000, "c"));
    await engine.ingest([{ k: "a", v, t: "text/plain", ver: version, h: 1 }]);
  }
  assertEquals(engine.writeHealth(), { state: "writable", retries: 0 });
  const again = await open(disk.crash(), { log: quiet });
  assertEquals((await textOf(again, "a"))?.slice(0, 3), "c3:");
  assertEquals(await textOf(again, "b"), big(5));
  await again.close();
  await engine.close();
});

Deno.test("full disk: growing the reserve for a write leaves room for that write's log line (the reserve took it, the line's append failed and the node went read-only, found by review)", async () => {
  for (const [free, big] of [[9000, 4000], [12_000, 5000], [20_000, 7000]] as const) {
    const disk = createFakeDisk();
    const engine = await open(disk, { firstRetryMs: 5, log: quiet, reserveMinBytes: MIN });
    for (let i = 0; i < 3; i++) await engine.write([put(`k${i}`, "s".repeat(VALUE))]);
    disk.setCapacity(used(disk) + free);
    const answer = await engine.write([put("big", "b".repeat(big))]).then(
      () => "acked",
      (err) => (err as Error).message,
    );
    // Acknowledged, or refused as planned before it was applied: never the log's ENOSPC.
    assert(
      answer === "acked" || answer.includes("would leave no room for the next snapshot"),
      `${free}/${big}: ${answer}`,
    );
    if (answer === "acked") assertEquals(engine.writeHealth().state, "writable", `${free}/${big}`);
    await until(`writable (${free}/${big})`, () => engine.writeHealth().state === "writable");
    const again = await open(disk.crash(), { log: quiet, reserveMinBytes: MIN });
    assertEquals(await textOf(again, "big"), answer === "acked" ? "b".repeat(big) : undefined);
    await again.close();
    await engine.close();
  }
});
