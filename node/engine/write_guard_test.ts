import { assert, assertEquals, assertRejects } from "@std/assert";
import { until } from "../../tests/helpers/poll.ts";
import { RingkvError } from "../../shared/errors.ts";
import type { NodeEngine } from "./engine.ts";
import {
  gatedDisk,
  open,
  overrideDisk,
  put,
  settle,
  textOf,
} from "../../tests/doubles/engine_test_helpers.ts";
import { createNodeApp } from "../http/node_app.ts";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { formatVersion } from "../../shared/version.ts";
import {
  createFakeDisk,
  type FakeDisk,
  IO_ERROR,
  NO_SPACE,
} from "../../tests/doubles/fake_disk.ts";
import { scanLines } from "../storage/log_format.ts";
import { WriteGuard } from "./write_guard.ts";

const quiet = () => {};

function used(disk: FakeDisk): number {
  return disk.names().reduce((n, name) => n + disk.bytes(name)!.length, 0);
}

/** An engine over a fake disk that has written `a` and `b`, retrying repairs quickly. */
async function twoWritten(
  options: { reserveMinBytes?: number } = {},
): Promise<{ disk: FakeDisk; engine: NodeEngine }> {
  const disk = createFakeDisk();
  const engine = await open(disk, { firstRetryMs: 5, log: quiet, ...options });
  await engine.write([put("a", "one")]);
  await engine.write([put("b", "two")]);
  return { disk, engine };
}

/** Every byte of the log is a whole, good record (nothing torn left mid-log). */
function assertCleanLog(disk: FakeDisk): void {
  const bytes = disk.bytes("wal.jsonl")!;
  const scan = scanLines(bytes);
  assertEquals([scan.goodLength, scan.damage, scan.torn], [bytes.length, undefined, undefined]);
}

Deno.test("full disk: an append cut short fails its write, the node turns read-only, then recovers once space is freed", async () => {
  // No reserve: its room would let the repair through at once (space_reserve_test.ts).
  const { disk, engine } = await twoWritten({ reserveMinBytes: 0 });
  disk.setCapacity(used(disk) + 20);
  const err = await assertRejects(() => engine.write([put("c", "x".repeat(200))]));
  assert(err.message.includes(NO_SPACE), err.message);
  assertEquals(engine.writeHealth().state, "read-only");
  assert(engine.writeHealth().reason!.includes(NO_SPACE));
  const refused = await assertRejects(() => engine.write([put("d", "later")]), RingkvError);
  assertEquals([refused.code, refused.status], ["unavailable", 503]);
  // The repair cuts the torn bytes off and reloads: the refused write is not visible.
  await until("the torn tail is cut", () => scanLines(disk.bytes("wal.jsonl")!).torn === undefined);
  await until("the retries fail on the full disk", () => engine.writeHealth().retries >= 2);
  assertEquals(await textOf(engine, "c"), undefined);
  assertEquals(engine.writeHealth().state, "read-only");
  assert(!disk.names().some((n) => n.endsWith(".tmp")), `${disk.names()}`);
  disk.setCapacity(undefined);
  await until("the node takes writes", () => engine.writeHealth().state === "writable");
  await engine.write([put("e", "after")]);
  assertCleanLog(disk);
  const again = await open(disk.crash(), { log: quiet });
  assertEquals(
    await Promise.all(["a", "b", "c", "d", "e"].map((k) => textOf(again, k))),
    ["one", "two", undefined, undefined, "after"],
  );
  await again.close();
  await engine.close();
});

Deno.test("full disk: a failed fsync is never acknowledged, and its unsynced record is cut before appends resume", async () => {
  const { disk, engine } = await twoWritten();
  disk.failSyncs(1);
  await assertRejects(() => engine.write([put("c", "unsynced")]));
  assertEquals(engine.writeHealth().state, "read-only");
  await until("the node takes writes", () => engine.writeHealth().state === "writable");
  assertEquals(await textOf(engine, "c"), undefined);
  await engine.write([put("d", "after")]);
  assertCleanLog(disk);
  const again = await open(disk.crash(), { log: quiet });
  assertEquals(
    await Promise.all(["a", "b", "c", "d"].map((k) => textOf(again, k))),
    ["one", "two", undefined, "after"],
  );
  await again.close();
  await engine.close();
});

Deno.test("full disk: a failed snapshot keeps the old snapshot and the log, and the node is read-only until one succeeds", async () => {
  const disk = createFakeDisk();
  // No reserve: its room would let the repair's snapshot through at once (tested below).
  const engine = await open(disk, {
    firstRetryMs: 5,
    log: quiet,
    snapshotEveryBytes: 400,
    reserveMinBytes: 0,
  });
  for (let i = 0; i < 4; i++) await engine.write([put(`k${i}`, "v".repeat(100))]);
  await until("a first snapshot", () => disk.bytes("snapshot.json") !== null);
  const before = disk.bytes("snapshot.json")!;
  // Room for log records but not for a second snapshot: it fails part-way.
  disk.setCapacity(used(disk) + 700);
  let acked = 4;
  for (; acked < 12 && engine.writeHealth().state === "writable"; acked++) {
    await engine.write([put(`k${acked}`, "v".repeat(100))]);
    await until("no snapshot under way", () => !disk.names().includes("snapshot.json.tmp"));
  }
  assertEquals(engine.writeHealth().state, "read-only");
  assert(engine.writeHealth().reason!.startsWith("write snapshot.json"));
  assertEquals(disk.bytes("snapshot.json"), before);
  const crashed = await open(disk.crash(), { log: quiet });
  for (let i = 0; i < acked; i++) assertEquals(await textOf(crashed, `k${i}`), "v".repeat(100));
  await crashed.close();
  disk.setCapacity(undefined);
  await until("the node takes writes", () => engine.writeHealth().state === "writable");
  assert(disk.bytes("snapshot.json")!.length > before.length);
  await engine.close();
});

Deno.test("full disk: a repair that finds the log damaged stays failed and names the file and offset", async () => {
  const { disk, engine } = await twoWritten();
  disk.failSyncs(1);
  await assertRejects(() => engine.write([put("c", "x")]));
  // Runs before the repair's timer can fire: the rejection resumes us in a microtask.
  disk.flip("wal.jsonl", 30);
  await until("the repair gives up", () => engine.writeHealth().state === "failed");
  const reason = engine.writeHealth().reason!;
  assert(reason.includes("wal.jsonl is damaged at byte 0"), reason);
  const err = await assertRejects(() => engine.write([put("d", "x")]), RingkvError);
  assert(err.message.includes("cannot recover by itself"), err.message);
  await engine.close();
});

Deno.test("WriteGuard retries with doubling delays and stops when closed", async () => {
  const calls: number[] = [];
  const guard = new WriteGuard({
    repair: () => {
      calls.push(Date.now());
      return Promise.reject(new Error("still full"));
    },
    firstRetryMs: 5,
    maxRetryMs: 40,
    log: quiet,
  });
  guard.failed("append to wal.jsonl", new Error(NO_SPACE), true);
  await until("three repairs", () => calls.length >= 3);
  await guard.close();
  const seen = calls.length;
  await new Promise((resolve) => setTimeout(resolve, 100));
  assertEquals(calls.length, seen);
  assertEquals(guard.health.state, "read-only");
  assert(guard.health.retries >= 3);
});

Deno.test("WriteGuard: a log failure during a repair gets a rollback repair of its own before the node takes writes", async () => {
  const rollbacks: boolean[] = [];
  const guard: WriteGuard = new WriteGuard({
    repair: (rollback) => {
      rollbacks.push(rollback);
      if (rollbacks.length === 1) guard.failed("append to wal.jsonl", new Error("EIO"), true);
      return Promise.resolve();
    },
    firstRetryMs: 1,
    log: quiet,
  });
  guard.failed("write snapshot.json", new Error(NO_SPACE), false);
  await until("the node takes writes", () => guard.health.state === "writable");
  assertEquals(rollbacks, [false, true]);
  await guard.close();
});

Deno.test("full disk: a cluster map that cannot be stored answers 503 and makes the node read-only until a repair succeeds", async () => {
  const { disk, engine } = await twoWritten();
  const map = { epoch: 3, replicas: 1, vnodes: 8, nodes: [], rebalancing: null };
  disk.setCapacity(used(disk));
  const err = await assertRejects(() => engine.saveClusterMap(map), RingkvError);
  assertEquals([err.code, engine.writeHealth().state], ["unavailable", "read-only"]);
  assertEquals(await engine.loadClusterMap(), null);
  disk.setCapacity(undefined);
  await until("the node takes writes", () => engine.writeHealth().state === "writable");
  await engine.saveClusterMap(map);
  assertEquals((await engine.loadClusterMap())?.epoch, 3);
  await engine.close();
});

/**
 * "a" and "b" durable, then "c" refused by a failed fsync; the repair that follows fails (twice
 * so far) because reading the snapshot it reloads fails with EIO.
 */
async function repairFailingOnEio() {
  const first = await twoWritten();
  await first.engine.close(); // writes the snapshot the repair will reload
  const disk = first.disk.reopen();
  const engine = await open(disk, { firstRetryMs: 5, log: quiet });
  disk.failReads("snapshot.json", true);
  disk.failSyncs(1);
  await assertRejects(() => engine.write([put("c", "refused")]));
  await until("the repair failed twice", () => engine.writeHealth().retries >= 2);
  return { disk, engine };
}

Deno.test("failing disk: a snapshot that cannot be read (EIO) during the repair keeps the node read-only with the error; it never serves an empty store", async () => {
  const { disk, engine } = await repairFailingOnEio();
  const health = engine.writeHealth();
  assertEquals(health.state, "read-only");
  assert(health.repairError?.includes("reading snapshot.json failed"), health.repairError);
  assert(health.repairError?.includes(IO_ERROR), health.repairError);
  // Reads answer what is durable, never an empty store, and never the refused write.
  assertEquals([await textOf(engine, "a"), await textOf(engine, "b")], ["one", "two"]);
  await assertRejects(() => textOf(engine, "c"), RingkvError);
  assertEquals(
    (await assertRejects(() => engine.write([put("d", "x")]), RingkvError)).code,
    "unavailable",
  );
  disk.failReads("snapshot.json", false);
  await until("the node takes writes", () => engine.writeHealth().state === "writable");
  assertEquals(await textOf(engine, "c"), undefined);
  assertEquals([await textOf(engine, "a"), await textOf(engine, "b")], ["one", "two"]);
  await engine.close();
});

/** Status and body of every node route that reads the store without waiting on the log. */
async function storeReads(engine: NodeEngine): Promise<Record<string, [number, string]>> {
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
  const json = (body: unknown) => ({
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const ballot = formatVersion(Date.now() + 60_000, 0, "p1");
  const calls: Record<string, [string, RequestInit?]> = {
    export: ["/export"],
    scan: ["/internal/scan?ranges=0-4294967296"],
    digest: ["/internal/digest", json({ buckets: [[[0, 2 ** 32]]] })],
    expired: [`/internal/expired?before=${Date.now() + 10 ** 9}&limit=10`],
    prepare: ["/internal/prepare", json({ ops: [{ key: "c", ballot }] })],
  };
  const out: Record<string, [number, string]> = {};
  for (const [name, [path, init]] of Object.entries(calls)) {
    const res = await app.request(path, init);
    out[name] = [res.status, await res.text()];
  }
  return out;
}

Deno.test("failing disk: while the repair fails on EIO, scan, digest, export, expired and prepare answer 503 and never show the refused write", async () => {
  const { disk, engine } = await repairFailingOnEio();
  assertEquals(engine.writeHealth().state, "read-only");
  for (const [name, [status, body]] of Object.entries(await storeReads(engine))) {
    assertEquals(status, 503, `${name}: ${body}`);
    assert(body.includes("refused") && body.includes(IO_ERROR), `${name}: ${body}`);
    assert(!body.includes(btoa("refused")), `${name} shows the refused value: ${body}`);
  }
  assertEquals((await assertRejects(() => Promise.resolve(engine.peek("c")))).name, "RingkvError");
  assertEquals(await textOf(engine, "a"), "one"); // durable keys still read
  disk.failReads("snapshot.json", false);
  await until("the node takes writes", () => engine.writeHealth().state === "writable");
  const after = await storeReads(engine);
  assertEquals(Object.values(after).map(([status]) => status), [200, 200, 200, 200, 200]);
  assertEquals(JSON.parse(after.export![1]), { a: "one", b: "two" });
  await engine.close();
});

Deno.test("failing disk: a scan that meets a write whose log round then fails never sends it", async () => {
  const { disk, release, hold, held } = gatedDisk();
  const engine = await open(disk, { firstRetryMs: 60_000, log: quiet });
  release();
  await engine.write([put("a", "one")]);
  hold();
  const refused = assertRejects(() => engine.write([put("c", "refused")]));
  await until("the write's round waits on its fsync", () => held() === 1);
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
  const res = await app.request("/internal/scan?ranges=0-4294967296");
  assertEquals(res.status, 200);
  const body = res.text().catch((err: Error) => `stream broke: ${err.message}`);
  disk.failSyncs(1);
  release();
  await refused;
  const text = await body;
  assert(!text.includes(btoa("refused")), `the scan sent the refused write: ${text}`);
  await engine.close();
});

Deno.test("full disk: a node that took writes again and has had none since closes cleanly (the refused round is not flushed)", async () => {
  const { disk, engine } = await twoWritten();
  disk.failSyncs(1);
  await assertRejects(() => engine.write([put("c", "refused")]));
  await until("the node takes writes", () => engine.writeHealth().state === "writable");
  await engine.close(); // was: rejected with the refused round's error (a stack on SIGTERM)
  const again = await open(disk.crash(), { log: quiet });
  assertEquals(
    await Promise.all(["a", "b", "c"].map((k) => textOf(again, k))),
    ["one", "two", undefined],
  );
  await again.close();
});

/**
 * A fake disk whose snapshot writes wait for `startSnapshot()` and whose log fsyncs wait
 * while `holdLog()` is in force, so a test can put a log round in flight under a snapshot.
 */
function snapshotGatedDisk() {
  const inner = createFakeDisk();
  const snapshotGate = Promise.withResolvers<void>();
  let snapshotsWaiting = 0;
  let logGate: PromiseWithResolvers<void> | null = null;
  let logSyncsWaiting = 0;
  const disk = overrideDisk(inner, {
    writeAtomic: async (name, data) => {
      if (name === "snapshot.json") {
        snapshotsWaiting++;
        await snapshotGate.promise;
      }
      return inner.writeAtomic(name, data);
    },
    sync: async (name) => {
      if (name === "wal.jsonl" && logGate) {
        logSyncsWaiting++;
        await logGate.promise;
      }
      return inner.sync(name);
    },
  });
  return {
    disk,
    snapshotsWaiting: () => snapshotsWaiting,
    startSnapshot: () => snapshotGate.resolve(),
    holdLog: () => logGate = Promise.withResolvers<void>(),
    logSyncsWaiting: () => logSyncsWaiting,
    releaseLog: () => logGate?.resolve(),
  };
}

Deno.test("full disk: a snapshot taken while a log round is in flight never keeps that round's write when the round fails", async () => {
  const gated = snapshotGatedDisk();
  const engine = await open(gated.disk, { firstRetryMs: 5, log: quiet, snapshotEveryBytes: 300 });
  for (let i = 0; gated.snapshotsWaiting() === 0; i++) {
    assert(i < 20, "no snapshot began");
    await engine.write([put(`k${i}`, "v".repeat(100))]);
  }
  gated.holdLog();
  const refused = assertRejects(() => engine.write([put("w", "refused")]));
  await until("the write's round waits on its fsync", () => gated.logSyncsWaiting() === 1);
  // The snapshot now reads memory, which holds the write; then its round fails.
  gated.startSnapshot();
  await settle();
  gated.disk.failSyncs(1);
  gated.releaseLog();
  const err = await refused;
  assert(err instanceof RingkvError && err.status === 503, String(err));
  await until("the node takes writes", () => engine.writeHealth().state === "writable");
  assertEquals(await textOf(engine, "w"), undefined);
  const snapshot = new TextDecoder().decode(gated.disk.bytes("snapshot.json") ?? new Uint8Array());
  assert(!snapshot.includes(btoa("refused")), "the snapshot holds the refused write");
  const again = await open(gated.disk.crash(), { log: quiet });
  assertEquals(await textOf(again, "w"), undefined);
  assertEquals(await textOf(again, "k0"), "v".repeat(100));
  await again.close();
  await engine.close();
});
