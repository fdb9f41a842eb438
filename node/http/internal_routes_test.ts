import { assert, assertEquals } from "@std/assert";
import type { Hono } from "hono";
import { withExpiry } from "../../shared/expiry.ts";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { hashKey } from "../../shared/ring.ts";
import { type BatchResult, INCARNATION_HEADER, type WireEntry } from "../../shared/wire.ts";
import { createNodeApp } from "./node_app.ts";
import type { NodeEngine } from "../engine/engine.ts";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import { openEngine } from "../engine/open_engine.ts";
import { MAX_FIELD_CHARS } from "../engine/packed.ts";

async function setup(): Promise<{ app: Hono; engine: NodeEngine }> {
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", limits: DEFAULT_LIMITS });
  return { app: createNodeApp({ engine, limits: DEFAULT_LIMITS }), engine };
}

const b64 = (text: string) => new TextEncoder().encode(text).toBase64();

async function batch(app: Hono, ops: object[], textValues?: boolean): Promise<BatchResult[]> {
  const res = await app.request("/internal/batch", {
    method: "POST",
    body: JSON.stringify({ ops, textValues }),
  });
  assertEquals(res.status, 200);
  return (await res.json()).results;
}

async function ingest(
  app: Hono,
  entries: WireEntry[],
): Promise<{ applied: number; skipped: number }> {
  const body = entries.map((e) => JSON.stringify(e)).join("\n") + "\n";
  const res = await app.request("/internal/ingest", {
    method: "POST",
    headers: { "content-type": "application/x-ndjson" },
    body,
  });
  assertEquals(res.status, 200);
  return await res.json();
}

async function entry(k: string, v: string | null, ver: string): Promise<WireEntry> {
  return { k, v: v === null ? null : b64(v), t: "text/plain", ver, h: await hashKey(k) };
}

Deno.test("POST /internal/batch answers every op in order, independently", async () => {
  const { app, engine } = await setup();
  const first = await batch(app, [
    { op: "put", key: "a", value: b64("A"), contentType: "text/plain" },
    { op: "put", key: "b", value: b64("B") },
    { op: "get", key: "missing" },
    { op: "put", key: "c", value: b64("C"), ifMatch: "000000000001-0000-n1" },
    { op: "put", key: "", value: b64("x") },
    { op: "put", key: "d", value: "not base64!" },
    { op: "frobnicate", key: "e" },
  ]);
  assertEquals(first.map((r) => r.status), [201, 201, 404, 412, 400, 400, 400]);
  assertEquals(first[4]!.error!.code, "invalid_key");
  const versionA = first[0]!.version!;
  const second = await batch(app, [
    { op: "get", key: "a" },
    { op: "delete", key: "b" },
    { op: "put", key: "a", value: b64("A2"), ifMatch: versionA },
    { op: "put", key: "c", value: b64("C"), ifNoneMatch: "*" },
  ]);
  assertEquals(second.map((r) => r.status), [200, 204, 200, 201]);
  assertEquals([second[0]!.value, second[0]!.contentType, second[0]!.version], [
    b64("A"),
    "text/plain",
    versionA,
  ]);
  const third = await batch(app, [{ op: "get", key: "a" }, { op: "get", key: "b" }]);
  assertEquals(third[0]!.value, b64("A2"));
  assertEquals(third[1]!.status, 404);
  assertEquals(third[1]!.version, second[1]!.version, "a tombstone's 404 has its version");
  await engine.close();
});

Deno.test("POST /internal/batch with textValues answers UTF-8 values as text, others as base64", async () => {
  const { app, engine } = await setup();
  const binary = new Uint8Array([0xff, 0x00, 0xfe]).toBase64();
  await batch(app, [
    { op: "put", key: "t", value: b64("h\u00e9llo \u{1F600}") },
    { op: "put", key: "bin", value: binary },
    { op: "put", key: "bom", value: b64("\uFEFFx") },
    { op: "put", key: "nul", value: b64("a\u0000b") },
    { op: "put", key: "lines", value: b64("a\n\tb\r\n") },
  ]);
  const gets = ["t", "bin", "bom", "none", "nul", "lines"].map((key) => ({ op: "get", key }));
  const asText = await batch(app, gets, true);
  assertEquals(asText.map((r) => [r.status, r.text, r.value]), [
    [200, "h\u00e9llo \u{1F600}", undefined],
    [200, undefined, binary],
    [200, "\uFEFFx", undefined], // the BOM is part of the value
    [404, undefined, undefined],
    [200, undefined, b64("a\u0000b")], // JSON would write the NUL as 6 chars: base64
    [200, "a\n\tb\r\n", undefined], // short escapes: text
  ]);
  const asBase64 = await batch(app, gets);
  assertEquals(asBase64.map((r) => [r.text, r.value]), [
    [undefined, b64("h\u00e9llo \u{1F600}")],
    [undefined, binary],
    [undefined, b64("\uFEFFx")],
    [undefined, undefined],
    [undefined, b64("a\u0000b")],
    [undefined, b64("a\n\tb\r\n")],
  ]);
  await engine.close();
});

Deno.test("POST /internal/batch with valueBudget stops its reads before the value that would pass it", async () => {
  const { app, engine } = await setup();
  const kib = (n: number, c: string) => c.repeat(n * 1024);
  const binary = new Uint8Array(3 * 1024).fill(0xff).toBase64(); // 4 KiB as base64
  await batch(app, [
    { op: "put", key: "s", value: b64("s") },
    { op: "put", key: "a", value: b64(kib(4, "a")) },
    { op: "put", key: "b", value: binary },
    { op: "put", key: "c", value: b64(kib(1, "c")) },
    { op: "put", key: "huge", value: b64(kib(20, "h")) },
  ]);
  const call = async (ops: object[], valueBudget?: number) => {
    const res = await app.request("/internal/batch", {
      method: "POST",
      body: JSON.stringify({ ops, textValues: true, valueBudget }),
    });
    return { status: res.status, body: await res.json() };
  };
  const get = (key: string) => ({ op: "get", key });
  // 1 + 4096 + 4096 (as base64) = 8193 bytes: "c" would pass 8200, so it and what follows wait;
  // the write after it is run and answered all the same.
  const { body } = await call(
    [get("s"), get("a"), get("b"), get("c"), { op: "put", key: "w", value: b64("w") }, get("s")],
    8200,
  );
  assertEquals(body.results.map((r: BatchResult | null) => r?.status ?? null), [
    200,
    200,
    200,
    null,
    201,
    null,
  ]);
  // The first value goes whatever its size; without a budget, every read.
  const first = await call([get("missing"), get("huge"), get("s")], 1000);
  assertEquals(first.body.results.map((r: BatchResult | null) => r?.status ?? null), [
    404,
    200,
    null,
  ]);
  const all = await call([get("huge"), get("a"), get("s")]);
  assertEquals(all.body.results.map((r: BatchResult) => r.status), [200, 200, 200]);
  for (const bad of [0, -1, 1.5, "10"]) {
    const refused = await call([get("s")], bad as number);
    assertEquals([refused.status, refused.body.error.code], [400, "invalid_batch"], `${bad}`);
  }
  await engine.close();
});

Deno.test("POST /internal/ingest applies newer versions and never overwrites a newer one", async () => {
  const { app, engine } = await setup();
  const old = "000000000010-0000-x";
  const mid = "000000000020-0000-x";
  const newer = "000000000030-0000-x";
  assertEquals(await ingest(app, [await entry("k1", "v20", mid), await entry("k2", null, mid)]), {
    applied: 2,
    skipped: 0,
  });
  assertEquals(
    await ingest(app, [
      await entry("k1", "v10", old),
      await entry("k2", "v10", old),
      await entry("k1", "v20", mid),
    ]),
    { applied: 0, skipped: 3 },
  );
  assertEquals(await (await app.request("/kv/k1")).text(), "v20");
  assertEquals(
    (await app.request("/kv/k2")).status,
    404,
    "an older value does not resurrect a tombstone",
  );
  assertEquals(
    await ingest(app, [await entry("k1", null, newer), await entry("k2", "v30", newer)]),
    {
      applied: 2,
      skipped: 0,
    },
  );
  assertEquals((await app.request("/kv/k1")).status, 404);
  const k2 = await app.request("/kv/k2");
  assertEquals([await k2.text(), k2.headers.get("etag")], ["v30", `"${newer}"`]);
  await engine.close();
});

Deno.test("POST /internal/ingest refuses a content type too long to store with 400 naming its line, and applies none", async () => {
  const { app, engine } = await setup();
  try {
    const ver = "000000000010-0000-x";
    const long = { ...await entry("k2", "v", ver), t: "x".repeat(MAX_FIELD_CHARS + 1) };
    const res = await app.request("/internal/ingest", {
      method: "POST",
      headers: { "content-type": "application/x-ndjson" },
      body: [await entry("k1", "v", ver), long].map((e) => JSON.stringify(e)).join("\n") + "\n",
    });
    const body = await res.json();
    assertEquals([res.status, body.error.code], [400, "invalid_batch"]);
    assert(body.error.message.includes("line 2"), body.error.message);
    assertEquals([engine.peek("k1"), engine.peek("k2")], [undefined, undefined]);
  } finally {
    await engine.close();
  }
});

Deno.test("GET /internal/scan streams every entry in the ranges, tombstones included", async () => {
  const { app, engine } = await setup();
  const keys = Array.from({ length: 200 }, (_, i) => `key${i}`);
  await batch(app, keys.map((key) => ({ op: "put", key, value: b64(key) })));
  await app.request("/kv/key7", { method: "DELETE" });
  const points = new Map(await Promise.all(keys.map(async (k) => [k, await hashKey(k)] as const)));
  const ranges = [[0, 2 ** 30], [2 ** 31, 2 ** 32]];
  const res = await app.request(
    `/internal/scan?ranges=${ranges.map(([s, e]) => `${s}-${e}`).join(",")}`,
  );
  assertEquals(res.headers.get("content-type"), "application/x-ndjson");
  const lines = (await res.text()).split("\n").filter((l) => l !== "");
  const got: WireEntry[] = lines.map((l) => JSON.parse(l));
  const inside = keys.filter((k) =>
    ranges.some(([s, e]) => points.get(k)! >= s! && points.get(k)! < e!)
  );
  assertEquals(got.map((e) => e.k).sort(), inside.sort());
  for (const e of got) {
    assertEquals(e.h, points.get(e.k));
    assertEquals(e.v, e.k === "key7" ? null : b64(e.k));
  }
  assert(inside.length > 50 && inside.length < 200, "the ranges cover part of the keys");
  await engine.close();
});

Deno.test("POST /internal/drop forgets the entries in the ranges, leaving no tombstones", async () => {
  const { app, engine } = await setup();
  const keys = Array.from({ length: 50 }, (_, i) => `d${i}`);
  await batch(app, keys.map((key) => ({ op: "put", key, value: b64(key) })));
  const half = 2 ** 31;
  const res = await app.request("/internal/drop", {
    method: "POST",
    body: JSON.stringify({ ranges: [[0, half]] }),
  });
  const low = [];
  for (const k of keys) if (await hashKey(k) < half) low.push(k);
  assertEquals(await res.json(), { dropped: low.length });
  const listed = await (await app.request("/internal/keys?limit=1000")).json();
  assertEquals(listed.entries.length, keys.length - low.length, "no tombstones are left");
  await engine.close();
});

Deno.test("GET /internal/keys lists in key order with prefix, after, limit and values", async () => {
  const { app, engine } = await setup();
  for (const key of ["b/2", "a/1", "b/1", "b/3", "c"]) {
    await app.request(`/kv/${key}`, { method: "PUT", body: key });
  }
  await app.request("/kv/b/3", { method: "DELETE" });
  const page1 = await (await app.request("/internal/keys?prefix=b/&limit=2")).json();
  assertEquals(page1.entries.map((e: WireEntry) => [e.k, e.v]), [["b/1", ""], ["b/2", ""]]);
  assertEquals(page1.more, true);
  const page2 = await (await app.request("/internal/keys?prefix=b/&limit=2&after=b/2&values=true"))
    .json();
  assertEquals(page2.entries.map((e: WireEntry) => [e.k, e.v]), [["b/3", null]]);
  assertEquals(page2.more, false);
  const withValues = await (await app.request("/internal/keys?values=true")).json();
  assertEquals(withValues.entries.find((e: WireEntry) => e.k === "c").v, b64("c"));
  await engine.close();
});

Deno.test("scan and digest refuse with 503 node_recovering when the map records another incarnation", async () => {
  const { app, engine } = await setup();
  await batch(app, [{ op: "put", key: "k", value: b64("v") }]);
  const scan = (inc?: string) =>
    app.request("/internal/scan?ranges=0-4294967296", {
      headers: inc === undefined ? {} : { [INCARNATION_HEADER]: inc },
    });
  const digest = (inc?: string) =>
    app.request("/internal/digest", {
      method: "POST",
      headers: inc === undefined ? {} : { [INCARNATION_HEADER]: inc },
      body: JSON.stringify({ buckets: [[[0, 4294967296]]] }),
    });
  for (const send of [scan, digest]) {
    const refused = await send("i000000000000");
    assertEquals(refused.status, 503);
    const body = await refused.json();
    assertEquals([body.error.code, body.error.incarnation], [
      "node_recovering",
      engine.incarnation,
    ]);
    const answered = [await send(engine.incarnation), await send()];
    assertEquals(answered.map((r) => r.status), [200, 200]);
    const text = await answered[0]!.text();
    assert(text.includes(send === scan ? `"k":"k"` : `"count":1`), `[${text}]`);
    await answered[1]!.body?.cancel();
  }
});

Deno.test("every body-reading node route answers 408 at --body-timeout-ms, not the 10 s default", async () => {
  const limits = { ...DEFAULT_LIMITS, bodyTimeoutMs: 50 };
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", limits });
  const app = createNodeApp({ engine, limits });
  const routes: [string, string][] = [
    ...["batch", "ingest", "drop", "digest", "read", "prepare", "accept"].map((
      r,
    ): [string, string] => ["POST", `/internal/${r}`]),
    ["PUT", "/internal/cluster"],
    ["POST", "/import"],
    ["PUT", "/kv/a"],
  ];
  for (const [method, path] of routes) {
    // A body that starts and then never ends, like a client that stops sending.
    const body = new ReadableStream<Uint8Array>({
      start: (c) => c.enqueue(new TextEncoder().encode("{")),
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<"late">((ok) => timer = setTimeout(() => ok("late"), 5_000));
    try {
      const res = await Promise.race([app.request(path, { method, body }), late]);
      assert(res !== "late", `${method} ${path}: no answer within 5 s`);
      assertEquals([res.status, (await res.json()).error.code], [408, "request_timeout"], path);
    } finally {
      clearTimeout(timer);
    }
  }
});

Deno.test("/internal/changes and /internal/changes/at answer 400 to a position that is not a whole number", async () => {
  const { app, engine } = await setup();
  const boot = engine.changes.boot;
  for (const at of [{ toString: 1 }, [], [5], "7", "", null, -1, 1.5]) {
    const res = await app.request("/internal/changes/at", {
      method: "POST",
      body: JSON.stringify({ boot, at, keys: ["a"] }),
    });
    assertEquals(res.status, 400, JSON.stringify(at));
    assertEquals((await res.json()).error.code, "bad_request");
  }
  for (const query of ["after=", "limit=", "limit=0", "wait=", "after=1e3", "after=%20"]) {
    const res = await app.request(`/internal/changes?${query}`);
    assertEquals(res.status, 400, query);
    await res.body?.cancel();
  }
  const ok = await app.request("/internal/changes/at", {
    method: "POST",
    body: JSON.stringify({ boot, at: 0, keys: ["a"] }),
  });
  assertEquals([ok.status, (await ok.json()).versions], [200, { a: null }]);
});

Deno.test("POST /internal/cluster/prepare|accept: the vote on the next map is kept in map_vote.json across a restart, and bad calls are 400", async () => {
  const disk = createFakeDisk();
  const map = { epoch: 2, replicas: 1, vnodes: 8, nodes: [], rebalancing: null };
  const post = (app: Hono, step: string, body: unknown) =>
    app.request(`/internal/cluster/${step}`, { method: "POST", body: JSON.stringify(body) });
  let engine = await openEngine({ disk, id: "n1", limits: DEFAULT_LIMITS });
  let app: Hono = createNodeApp({ engine, limits: DEFAULT_LIMITS });
  const first = await post(app, "prepare", { epoch: 2, ballot: "018c00000000-0000-pa" });
  assertEquals(await first.json(), { accepted: null, id: "n1", incarnation: engine.incarnation });
  const accepted = await post(app, "accept", { epoch: 2, ballot: "018c00000000-0000-pa", map });
  assertEquals((await accepted.json()).epoch, 2);
  for (
    const [step, body] of [
      ["prepare", { epoch: 0, ballot: "018c00000000-0000-pa" }],
      ["prepare", { epoch: 2, ballot: "yes" }],
      ["accept", { epoch: 3, ballot: "018c00000000-0000-pa", map }],
      ["accept", { epoch: 2, ballot: "018c00000000-0000-pa", map: { epoch: 2 } }],
    ] as const
  ) {
    const res = await post(app, step, body);
    assertEquals(res.status, 400, JSON.stringify(body));
    assertEquals((await res.json()).error.code, "bad_request");
  }
  await engine.close();
  engine = await openEngine({ disk, id: "n1", limits: DEFAULT_LIMITS });
  app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
  const lower = await post(app, "prepare", { epoch: 2, ballot: "018c00000000-0000-p0" });
  assertEquals(lower.status, 409);
  assertEquals((await lower.json()).error.promised, "018c00000000-0000-pa");
  const again = await post(app, "prepare", { epoch: 2, ballot: "018c00000000-0001-pb" });
  assertEquals((await again.json()).accepted, { ballot: "018c00000000-0000-pa", map });
  await engine.close();
});

Deno.test("GET /internal/cluster/vote reads the vote on the next map and promises nothing", async () => {
  const disk = createFakeDisk();
  const map = { epoch: 2, replicas: 1, vnodes: 8, nodes: [], rebalancing: null };
  const engine = await openEngine({ disk, id: "n1", limits: DEFAULT_LIMITS });
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
  const read = async () => await (await app.request("/internal/cluster/vote")).json();
  assertEquals(await read(), { vote: null, id: "n1", incarnation: engine.incarnation });
  const ballot = "018c00000000-0000-pa";
  await app.request("/internal/cluster/accept", {
    method: "POST",
    body: JSON.stringify({ epoch: 2, ballot, map }),
  });
  const vote = { epoch: 2, promised: ballot, accepted: { ballot, map } };
  assertEquals((await read()).vote, vote);
  assertEquals((await read()).vote, vote); // read again: nothing promised meanwhile
  await engine.close();
});

Deno.test("GET /internal/expired lists a key only once both the asking proxy's clock and the node's passed its expiry", async () => {
  const T0 = 1_700_000_000_000;
  let now = T0;
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", now: () => now });
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
  const expiresAt = T0 + 600_000;
  const contentType = withExpiry("text/plain", expiresAt);
  await batch(app, [{ op: "put", key: "a", value: b64("A"), contentType }]);
  const listed = async (before: number) => {
    const res = await app.request(`/internal/expired?before=${before}&limit=10`);
    return ((await res.json()).keys as { k: string }[]).map((e) => e.k);
  };
  // The proxy an hour ahead: the node's clock has not passed the expiry yet.
  assertEquals(await listed(T0 + 3_600_000), []);
  now = expiresAt;
  assertEquals(await listed(expiresAt - 1), []); // the node's clock alone does not list it either
  assertEquals(await listed(T0 + 3_600_000), ["a"]);
  await engine.close();
});
