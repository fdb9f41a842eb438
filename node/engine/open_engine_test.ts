import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { isWriterId } from "../../shared/version.ts";
import type { ClusterMap } from "../../shared/wire.ts";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import {
  durablyLogged,
  gatedDisk,
  open,
  put,
  settle,
  testHash,
  textOf,
} from "../../tests/doubles/engine_test_helpers.ts";
import { openEngine } from "./open_engine.ts";

const decoder = new TextDecoder();

/** The log's records after its first line, the marker every log starts with (recovery.ts). */
function logLines(bytes: Uint8Array | null): string[] {
  const lines = decoder.decode(bytes ?? new Uint8Array()).split("\n").filter((l) => l !== "");
  assertMatch(lines[0] ?? "", /"snapshot":/, "the log starts with its marker");
  return lines.slice(1);
}

Deno.test("openEngine() makes and keeps a node id, and refuses another one", async () => {
  const disk = createFakeDisk();
  const first = await openEngine({ disk, hashKey: testHash });
  assert(isWriterId(first.id) && /^n[0-9a-f]{8}$/.test(first.id), first.id);
  await first.close();
  const again = await openEngine({ disk: disk.reopen(), hashKey: testHash });
  assertEquals(again.id, first.id);
  await again.close();
  await assertRejects(
    () => openEngine({ disk: disk.reopen(), id: "other", hashKey: testHash }),
    Error,
    `belongs to node ${first.id}`,
  );
});

Deno.test("NodeEngine.write() applies ops in order as ONE log record fsync'd once", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk);
  const syncs = disk.syncs("wal.jsonl");
  const outcomes = await engine.write([
    put("a", "1"),
    put("a", "2"),
    { op: "delete", key: "b" },
    put("b", "x", { ifMatch: "000000000001-0000-n1" }),
    { op: "delete", key: "a" },
  ]);
  assertEquals(outcomes.map((o) => o.status), [201, 200, 404, 412, 204]);
  assert(outcomes[1]!.version! > outcomes[0]!.version!);
  assertEquals(disk.syncs("wal.jsonl"), syncs + 1);
  const lines = logLines(disk.bytes("wal.jsonl"));
  assertEquals(lines.length, 1);
  assertMatch(lines[0]!, /^\{"crc":"[0-9a-f]{8}","set":\[/);
  assertEquals(await textOf(engine, "a"), null);
  assertEquals(await textOf(engine, "b"), undefined);
  await engine.close();
});

Deno.test("NodeEngine.write() that changes nothing adds no record", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk);
  await engine.write([put("a", "1")]);
  const bytes = engine.stats().walBytes;
  const outcomes = await engine.write([
    { op: "delete", key: "zz" },
    put("a", "2", { ifNoneMatch: "*" }),
  ]);
  assertEquals(outcomes.map((o) => o.status), [404, 412]);
  assertEquals(engine.stats().walBytes, bytes);
  await engine.close();
});

Deno.test("NodeEngine.write() group-commits concurrent calls, each resolved after its sync", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk);
  const before = disk.syncs("wal.jsonl");
  const writes = Array.from(
    { length: 50 },
    (_, i) =>
      engine.write([put(`key-${i}`, `value-${i}`)]).then(() => {
        assert(durablyLogged(disk, `"key-${i}"`), `key-${i} resolved before it was durable`);
      }),
  );
  await Promise.all(writes);
  const syncs = disk.syncs("wal.jsonl") - before;
  assert(syncs < 50 && syncs >= 1, `50 writes took ${syncs} fsyncs`);
  assertEquals(logLines(disk.bytes("wal.jsonl")).length, 50);
  await engine.close();
});

Deno.test("NodeEngine.get(), held(), settled() and list() wait for a pending fsync; peek(), peekHeld() and peekVersion() do not", async () => {
  const { disk, release, held } = gatedDisk();
  const engine = await open(disk);
  let written = false;
  let read = false;
  let listed = false;
  let heldRead = false;
  const write = engine.write([put("a", "1")]).then(() => written = true);
  for (let i = 0; i < 100 && engine.peek("a") === undefined; i++) await Promise.resolve();
  assertEquals(decoder.decode(engine.peek("a")!.value!), "1");
  const get = engine.get("a").then((entry) => {
    read = true;
    return entry;
  });
  const list = engine.list({ prefix: "", limit: 10 }).then((page) => {
    listed = true;
    return page;
  });
  const pending = engine.held("a");
  assert(pending instanceof Promise, "held() of a key with a write awaiting its fsync");
  let settled = false;
  const settling = engine.settled("a");
  assert(settling instanceof Promise, "settled() of a key with a write awaiting its fsync");
  void settling.then(() => settled = true);
  assertEquals(engine.peekVersion("a"), engine.peek("a")!.version);
  assertEquals(engine.peekHeld("a")?.data, "1");
  const heldEntry = pending.then((stored) => {
    heldRead = true;
    return stored;
  });
  await settle();
  assert(held() > 0);
  assert(!written && !read && !listed && !heldRead, "a read returned before the write was durable");
  assert(!settled, "settled() resolved before the write was durable");
  assertEquals(await textOf(engine, "never"), undefined);
  release();
  await write;
  assertEquals(decoder.decode((await get)!.value!), "1");
  assertEquals((await list).entries.map(([k]) => k), ["a"]);
  assertEquals((await heldEntry)?.data, "1");
  const durable = engine.held("a");
  assert(!(durable instanceof Promise), "held() of a durable key answers at once");
  assertEquals([durable?.kind, durable?.data], ["text", "1"]);
  assertEquals(engine.held("never"), undefined);
  assertEquals([settled, engine.settled("a"), engine.settled("never")], [
    true,
    undefined,
    undefined,
  ]);
  assertEquals(engine.peekVersion("never"), undefined);
  await engine.close();
});

Deno.test("NodeEngine.ingest() applies only newer versions, durably, tombstones included", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk);
  const v = (n: number) => `0000000000${n}0-0000-n2`;
  assertEquals(
    await engine.ingest([
      { k: "a", v: btoa("new"), t: "text/x", ver: v(5), h: 1 },
      { k: "b", v: null, ver: v(5), h: 2 },
    ]),
    { applied: 2, skipped: 0 },
  );
  assertEquals(
    await engine.ingest([
      { k: "a", v: btoa("old"), ver: v(4), h: 1 },
      { k: "b", v: btoa("old"), ver: v(5), h: 2 },
      { k: "c", v: btoa("\xff"), ver: v(1), h: 3 },
    ]),
    { applied: 1, skipped: 2 },
  );
  const crashed = await open(disk.crash());
  assertEquals(await crashed.get("a"), {
    value: new TextEncoder().encode("new"),
    contentType: "text/x",
    version: v(5),
    hash: 1,
  });
  assertEquals(await textOf(crashed, "b"), null);
  assertEquals((await crashed.get("c"))!.value, new Uint8Array([0xff]));
  // The clock saw the ingested versions: local writes come after them.
  const [outcome] = await crashed.write([put("b", "mine")]);
  assert(outcome!.version! > v(5));
  await crashed.close();
  await engine.close();
});

Deno.test("NodeEngine.drop() forgets a range durably; scanKeys() sees the rest", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk, { hashKey: (key) => Promise.resolve(Number(key.slice(1))) });
  await engine.write([put("k10", "a"), put("k20", "b"), put("k30", "c"), {
    op: "delete",
    key: "k30",
  }]);
  assertEquals(engine.scanKeys([{ start: 15, end: 31 }]).sort(), ["k20", "k30"]);
  assertEquals(await engine.drop([{ start: 15, end: 31 }]), 2);
  assertEquals(await engine.drop([{ start: 15, end: 31 }]), 0);
  assertEquals(engine.stats().tombstones, 0);
  const crashed = await open(disk.crash(), { hashKey: () => Promise.reject(new Error("no")) });
  assertEquals(await crashed.get("k20"), undefined);
  assertEquals(await crashed.get("k30"), undefined);
  assertEquals(await textOf(crashed, "k10"), "a");
  await crashed.close();
  await engine.close();
});

Deno.test("NodeEngine.importFlat() and exportFlat() round-trip text and base64", async () => {
  const engine = await open(createFakeDisk());
  assertEquals(
    await engine.importFlat({ a: "text", b: { base64: "/wA=" }, c: { base64: "aGk=" } }),
    3,
  );
  assertEquals((await engine.get("a"))!.contentType, "text/plain; charset=utf-8");
  assertEquals((await engine.get("b"))!.value, new Uint8Array([0xff, 0]));
  assertEquals(engine.exportFlat("base64"), { a: "text", b: { base64: "/wA=" }, c: "hi" });
  let refused = false;
  try {
    engine.exportFlat("refuse");
  } catch (err) {
    refused = (err as { status?: number }).status === 409;
  }
  assert(refused, "exportFlat('refuse') did not refuse a binary value with 409");
  await assertRejects(() => engine.importFlat({ x: { base64: "***" } }), Error, "not base64");
  await engine.close();
});

Deno.test("NodeEngine stores the cluster map and counts keys, tombstones and bytes", async () => {
  const disk = createFakeDisk();
  const engine = await open(disk);
  assertEquals(await engine.loadClusterMap(), null);
  const map: ClusterMap = { epoch: 3, replicas: 1, vnodes: 10, nodes: [], rebalancing: null };
  await engine.saveClusterMap(map);
  await engine.write([put("a", "12345"), put("b", "1"), { op: "delete", key: "b" }]);
  const stats = engine.stats();
  assertEquals([stats.keys, stats.tombstones, stats.valueBytes], [1, 1, 5]);
  assert(stats.walBytes > 0);
  await engine.close();
  const again = await open(disk.crash());
  assertEquals(await again.loadClusterMap(), map);
  assert(again.stats().snapshotBytes > 0);
  // The log holds only the marker of the snapshot it continues (and of its changes).
  const lines = decoder.decode(disk.crash().bytes("wal.jsonl")!).split("\n").filter(Boolean);
  assertEquals(lines.length, 1);
  const marker = JSON.parse(lines[0]!);
  assertEquals(marker.snapshot, { bytes: again.stats().snapshotBytes, generation: 1 });
  assertEquals(again.stats().walBytes, lines[0]!.length + 1);
  await again.close();
});

Deno.test("NodeEngine refuses writes after close()", async () => {
  const engine = await open(createFakeDisk());
  await engine.close();
  await assertRejects(() => engine.write([put("a", "1")]), Error, "closed");
});

Deno.test("openEngine() gives a new directory an incarnation that a reopen keeps and a wiped one does not", async () => {
  const disk = createFakeDisk();
  const first = await openEngine({ disk, id: "n1", now: () => 5_000 });
  const incarnation = first.incarnation;
  assertEquals([/^i[0-9a-f]{12}$/.test(incarnation), first.createdAt], [true, 5_000]);
  await first.close();
  const again = await openEngine({ disk: disk.reopen(), id: "n1" });
  assertEquals([again.incarnation, again.createdAt], [incarnation, 5_000]);
  await again.close();
  const wiped = await openEngine({ disk: createFakeDisk(), id: "n1" });
  assertEquals(wiped.id, "n1");
  assertEquals(wiped.incarnation === incarnation, false);
  await wiped.close();
});

Deno.test("openEngine() gives a directory from before incarnations one, once", async () => {
  const disk = createFakeDisk();
  await disk.writeAtomic("node.json", new TextEncoder().encode('{"id":"n7"}\n'));
  const first = await openEngine({ disk, now: () => 9_000 });
  assertEquals([first.id, first.createdAt], ["n7", 9_000]);
  await first.close();
  const again = await openEngine({ disk: disk.reopen() });
  assertEquals(again.incarnation, first.incarnation);
  await again.close();
});
