import { assert, assertEquals } from "@std/assert";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { formatVersion } from "../../shared/version.ts";
import { INCARNATION_HEADER, type WireEntry } from "../../shared/wire.ts";
import { createNodeApp } from "./node_app.ts";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import { openEngine } from "../engine/open_engine.ts";
import { MAX_FIELD_CHARS } from "../engine/packed.ts";
import type { Disk } from "../storage/disk.ts";

async function setup() {
  const disk = createFakeDisk();
  // Born at time 0, so the hand-written ballots below are not older than the directory.
  const engine = await openEngine({ disk, id: "n1", limits: DEFAULT_LIMITS, now: () => 0 });
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
  return { app, engine, disk };
}

function entry(key: string, wall: number, text: string): WireEntry {
  return { k: key, v: btoa(text), t: "text/plain", ver: formatVersion(wall, 0, "px"), h: 0 };
}

async function accept(app: ReturnType<typeof createNodeApp>, entries: WireEntry[]) {
  const res = await app.request("/internal/accept", {
    method: "POST",
    body: JSON.stringify({ entries }),
    headers: { "content-type": "application/json" },
  });
  assertEquals(res.status, 200);
  return (await res.json()).results as { ok: boolean }[];
}

Deno.test("POST /internal/accept stores a batch of entries under one fsync, not one each", async () => {
  const { app, engine, disk } = await setup();
  const before = disk.syncs();
  const entries = Array.from({ length: 50 }, (_, i) => entry(`k${i}`, 1_000_000 + i, `v${i}`));
  const results = await accept(app, entries);
  assertEquals(results.every((r) => r.ok), true);
  const syncs = disk.syncs() - before;
  assertEquals(syncs, 1, `${syncs} fsyncs for 50 accepted entries`);
  for (let i = 0; i < 50; i++) {
    assertEquals(new TextDecoder().decode((await engine.get(`k${i}`))!.value!), `v${i}`);
  }
});

Deno.test("POST /internal/accept applies two entries of one key in their order", async () => {
  const { app, engine } = await setup();
  // Older then newer: both accepted, the newer stays.
  assertEquals(
    (await accept(app, [entry("a", 2_000_000, "old"), entry("a", 2_000_001, "new")])).map((r) =>
      r.ok
    ),
    [true, true],
  );
  assertEquals(new TextDecoder().decode((await engine.get("a"))!.value!), "new");
  // Newer then older: the older one is refused, as it would be one call after the other.
  assertEquals(
    (await accept(app, [entry("b", 3_000_001, "new"), entry("b", 3_000_000, "old")])).map((r) =>
      r.ok
    ),
    [true, false],
  );
  assertEquals(new TextDecoder().decode((await engine.get("b"))!.value!), "new");
});

async function call(
  app: ReturnType<typeof createNodeApp>,
  path: string,
  body: unknown,
  inc?: string,
) {
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (inc !== undefined) headers[INCARNATION_HEADER] = inc;
  const res = await app.request(path, { method: "POST", body: JSON.stringify(body), headers });
  return { status: res.status, body: await res.json() };
}

Deno.test("read, prepare and accept refuse with 503 node_recovering when the map records another incarnation", async () => {
  const { app, engine } = await setup();
  const e = entry("k", 1_000, "v");
  const calls: [string, unknown][] = [
    ["/internal/read", { keys: ["k"] }],
    ["/internal/prepare", { ops: [{ key: "k", ballot: formatVersion(2_000, 0, "px") }] }],
    ["/internal/accept", { entries: [e] }],
  ];
  for (const [path, body] of calls) {
    const refused = await call(app, path, body, "i000000000000");
    assertEquals(refused.status, 503, path);
    assertEquals(refused.body.error.code, "node_recovering");
    assertEquals(refused.body.error.incarnation, engine.incarnation);
  }
  assertEquals(await engine.get("k"), undefined); // the refused accept stored nothing
  // The prepare was refused before any promise: an accept at a lower ballot still goes in.
  for (const [path, body] of calls.toReversed()) {
    assertEquals((await call(app, path, body, engine.incarnation)).status, 200, path);
  }
  assertEquals((await call(app, "/internal/read", { keys: ["k"] })).status, 200);
});

Deno.test("failing disk: a failed read of acceptor.json answers 503 naming it, and the next round reads it again", async () => {
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", log: () => {} });
  let failing = true;
  const floorStore = {
    load: () =>
      failing
        ? Promise.reject(new Error("reading acceptor.json failed (Input/output error)"))
        : Promise.resolve(null),
    save: () => Promise.resolve(),
  };
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS, floorStore });
  const ballot = formatVersion(Date.now() + 60_000, 0, "p1");
  const prepare = async () => {
    const res = await app.request("/internal/prepare", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ops: [{ key: "k", ballot }] }),
    });
    return [res.status, await res.text()] as const;
  };
  try {
    const [status, body] = await prepare();
    assertEquals(status, 503, body);
    assertEquals(JSON.parse(body).error.code, "unavailable");
    assert(body.includes("acceptor.json") && body.includes("Input/output error"), body);
    failing = false; // the disk reads again
    assertEquals((await prepare())[0], 200);
  } finally {
    await engine.close();
  }
});

Deno.test("POST /internal/accept refuses a content type too long to store with 400 and stores none of the call", async () => {
  const { app, engine } = await setup();
  const long = { ...entry("b", 1_000_000, "v"), t: "x".repeat(MAX_FIELD_CHARS + 1) };
  const refused = await call(app, "/internal/accept", {
    entries: [entry("a", 1_000_000, "v"), long],
  });
  assertEquals(refused.status, 400);
  assertEquals(refused.body.error.code, "invalid_batch");
  assert(refused.body.error.message.includes("entry 2"), refused.body.error.message);
  assertEquals([engine.peek("a"), engine.peek("b")], [undefined, undefined]);
  // The longest type that fits is stored.
  const fits = { ...long, t: "x".repeat(MAX_FIELD_CHARS) };
  assertEquals((await accept(app, [fits])).map((r) => r.ok), [true]);
  assertEquals((await engine.get("b"))?.contentType.length, MAX_FIELD_CHARS);
});

Deno.test("POST /internal/accept refuses a value over the value limit by its decoded bytes, not its base64 length", async () => {
  const limits = { ...DEFAULT_LIMITS, maxValueBytes: 10 }; // 16 base64 characters hold 12 bytes
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", limits, now: () => 0 });
  const app = createNodeApp({ engine, limits });
  const over = { ...entry("a", 1_000_000, ""), v: new Uint8Array(11).fill(65).toBase64() };
  const refused = await call(app, "/internal/accept", { entries: [over] });
  assertEquals([refused.status, refused.body.error.code], [413, "value_too_large"]);
  assertEquals(engine.peek("a"), undefined);
  const fits = { ...over, v: new Uint8Array(10).fill(65).toBase64() };
  assertEquals((await accept(app, [fits])).map((r) => r.ok), [true]);
});

/** A fake disk whose fsyncs of the log wait until the test lets each one go. */
function heldSyncDisk() {
  const disk = createFakeDisk();
  const held: (() => void)[] = [];
  const wrapped: Disk = {
    read: (name, range) => disk.read(name, range),
    append: (name, bytes) => disk.append(name, bytes),
    sync: async (name) => {
      if (name === "wal.jsonl") await new Promise<void>((go) => held.push(go));
      await disk.sync(name);
    },
    writeAtomic: (name, data) => disk.writeAtomic(name, data),
    truncate: (name, size) => disk.truncate(name, size),
    remove: (name) => disk.remove(name),
    size: (name) => disk.size(name),
    freeBytes: () => disk.freeBytes(),
    close: () => disk.close(),
  };
  return { disk, wrapped, held };
}

/** Whether `p` has settled after pending callbacks and timers of 0 ms ran. */
async function settledYet(p: Promise<unknown>): Promise<boolean> {
  let done = false;
  p.then(() => (done = true), () => (done = true));
  for (let i = 0; i < 5; i++) await new Promise((r) => setTimeout(r, 0));
  return done;
}

/** Polls `ready` every few ms, up to a deadline. */
async function until(ready: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!ready()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 2));
  }
}

Deno.test("two accept calls in flight: each is answered only after its own fsync, and a prepare sent meanwhile sees the accepted entry", async () => {
  const { disk, wrapped, held } = heldSyncDisk();
  const engine = await openEngine({
    disk: wrapped,
    id: "n1",
    limits: DEFAULT_LIMITS,
    now: () => 0,
  });
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
  try {
    const first = accept(app, [entry("k1", 5_000_000, "one")]);
    await until(() => held.length === 1, "the first accept's fsync");
    // A second call and a prepare of the first call's key (another proxy's, or a lane's next batch).
    const second = accept(app, [entry("k2", 5_000_001, "two")]);
    const prepare = call(app, "/internal/prepare", {
      ops: [{ key: "k1", ballot: formatVersion(5_000_002, 0, "py") }],
    });
    assertEquals(await settledYet(first), false);
    assertEquals(await settledYet(second), false);
    assertEquals(await settledYet(prepare), false); // k1's entry is not durable yet
    held.shift()!();
    assertEquals((await first).map((r) => r.ok), [true]);
    const vote = (await prepare).body.results[0];
    assertEquals([vote.ok, vote.entry?.ver], [true, formatVersion(5_000_000, 0, "px")]);
    await until(() => held.length === 1, "the second accept's fsync");
    assertEquals(await settledYet(second), false);
    // A crash now keeps what was answered and nothing the second call wrote.
    const crashed = await openEngine({ disk: disk.crash(), id: "n1", now: () => 0 });
    assertEquals([crashed.peek("k1")?.version, crashed.peek("k2")], [
      formatVersion(5_000_000, 0, "px"),
      undefined,
    ]);
    await crashed.close();
    held.shift()!();
    assertEquals((await second).map((r) => r.ok), [true]);
  } finally {
    for (const go of held.splice(0)) go();
    await engine.close();
  }
});

Deno.test("POST /internal/accept stores ASCII, other UTF-8 and binary values byte for byte, and reads them back the same", async () => {
  const { app, engine } = await setup();
  const values = [
    new TextEncoder().encode("plain ascii\u0000\u007f"),
    new TextEncoder().encode("héllo wörld ✓"),
    new Uint8Array([0xff, 0x00, 0x80, 0xc3]),
    new Uint8Array(0),
  ];
  const entries = values.map((bytes, i): WireEntry => ({
    k: `v${i}`,
    v: bytes.toBase64(),
    t: "application/octet-stream",
    ver: formatVersion(4_000_000 + i, 0, "px"),
    h: 0,
  }));
  assertEquals((await accept(app, entries)).map((r) => r.ok), [true, true, true, true]);
  for (const [i, bytes] of values.entries()) {
    assertEquals((await engine.get(`v${i}`))!.value, bytes);
  }
  const { body } = await call(app, "/internal/prepare", {
    ops: values.map((_, i) => ({ key: `v${i}`, ballot: formatVersion(5_000_000, 0, "px") })),
  });
  assertEquals(body.results.map((r: { entry: WireEntry }) => r.entry.v), entries.map((e) => e.v));
  const read = await call(app, "/internal/read", { keys: values.map((_, i) => `v${i}`) });
  assertEquals(read.body.entries, entries);
});

Deno.test("POST /internal/accept refuses a batch with one value that is not base64 with 400 and stores none of it", async () => {
  const { app, engine } = await setup();
  const entries = [entry("a", 6_000_000, "one"), { ...entry("b", 6_000_001, "x"), v: "QQ=" }];
  const { status, body } = await call(app, "/internal/accept", { entries });
  assertEquals([status, body.error.code], [400, "bad_request"]);
  assertEquals([engine.peek("a"), engine.peek("b")], [undefined, undefined]);
});

Deno.test("POST /internal/read with valueBudget answers the first keys whose base64 values fit it, at least one", async () => {
  const { app } = await setup();
  const big = "x".repeat(3000); // 4000 chars of base64
  const entries = ["a", "b", "c"].map((k, i) => entry(k, 7_000_000 + i, big));
  assertEquals((await accept(app, entries)).map((r) => r.ok), [true, true, true]);
  const keys = ["a", "missing", "b", "c"];
  const read = (valueBudget?: number) => call(app, "/internal/read", { keys, valueBudget });
  assertEquals((await read(8000)).body.entries, [entries[0], null, entries[1]]);
  assertEquals((await read(10)).body.entries, [entries[0]]);
  assertEquals((await read()).body.entries, [entries[0], null, entries[1], entries[2]]);
  const refused = await read(0);
  assertEquals([refused.status, refused.body.error.code], [400, "bad_request"]);
});

Deno.test("POST /internal/purge forgets old tombstones under a stable map only, by the node's clock too; GET /internal/tombstones lists them", async () => {
  let wall = 1_000_000;
  const engine = await openEngine({
    disk: createFakeDisk(),
    id: "n1",
    limits: DEFAULT_LIMITS,
    now: () => wall,
  });
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
  const json = { "content-type": "application/json" };
  const purge = (body: unknown) =>
    app.request("/internal/purge", { method: "POST", headers: json, body: JSON.stringify(body) });
  const map = (rebalancing: unknown) => ({
    epoch: 2,
    replicas: 1,
    vnodes: 8,
    nodes: [{ id: "n1", url: "http://n1", weight: 1 }],
    rebalancing,
  });
  try {
    const tombstone = (k: string, at: number) => ({
      k,
      v: null,
      ver: formatVersion(at, 0, "px"),
      h: 0,
    });
    const [old, young] = [tombstone("old", 1_000_000), tombstone("young", 1_500_000)];
    await accept(app, [old, entry("live", 1_000_000, "v")]);
    wall = 1_500_000; // young is stored 500 s later (its arrival, by this node's clock, counts)
    await accept(app, [young]);
    wall = 1_000_000 + 600_000;
    const listed = await app.request(`/internal/tombstones?graceMs=600000&limit=9`);
    assertEquals((await listed.json()).tombstones.map((t: { k: string }) => t.k), ["old"]);
    const noGrace = await app.request(`/internal/tombstones?limit=9`);
    assertEquals(noGrace.status, 400);
    const entries = [old, young, { k: "live", ver: formatVersion(1_000_000, 0, "px") }]
      .map(({ k, ver }) => ({ k, ver }));
    // No map (no cluster), then a map moving ranges: refused.
    assertEquals((await purge({ graceMs: 600_000, entries })).status, 409);
    const next = [{ id: "n1", url: "http://n1", weight: 1 }, {
      id: "n2",
      url: "http://n2",
      weight: 1,
    }];
    const moving = map({
      kind: "add",
      nodeId: "n2",
      phase: "copying",
      next,
      startedAt: 0,
      movedKeys: 0,
      totalKeys: 0,
    });
    const put = (m: unknown) =>
      app.request("/internal/cluster", { method: "PUT", headers: json, body: JSON.stringify(m) });
    assertEquals((await put(moving)).status, 200);
    const refused = await purge({ graceMs: 600_000, entries });
    assertEquals(refused.status, 409);
    assertEquals((await refused.json()).error.code, "conflict");
    assertEquals((await put({ ...map(null), epoch: 3 })).status, 200);
    assertEquals((await purge({ graceMs: 1000, entries })).status, 400, "a grace under a minute");
    const check = await purge({ graceMs: 600_000, entries, check: true });
    assertEquals(await check.json(), { purged: 0, kept: ["young", "live"] });
    assertEquals((await engine.get("old"))?.value, null, "a check purges nothing");
    const res = await purge({ graceMs: 600_000, entries });
    assertEquals(res.status, 200);
    // young was stored 100 s ago by the node's clock; live is no tombstone.
    assertEquals(await res.json(), { purged: 1, kept: ["young", "live"] });
    assertEquals(await engine.get("old"), undefined);
    assertEquals((await engine.get("young"))?.value, null);
    // The absent-key floor now refuses a stale accept on the purged key.
    const stale = await accept(app, [entry("old", 999_000, "back")]);
    assertEquals(stale[0]!.ok, false);
  } finally {
    await engine.close();
  }
});
