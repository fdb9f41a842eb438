import { assert, assertEquals, assertMatch } from "@std/assert";
import { DEFAULT_LIMITS, type Limits } from "../../shared/limits.ts";
import type { Hono } from "hono";
import { createNodeApp } from "./node_app.ts";
import type { NodeEngine } from "../engine/engine.ts";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import { openEngine } from "../engine/open_engine.ts";

async function setup(
  options: { secret?: string; limits?: Partial<Limits> } = {},
): Promise<{ app: Hono; engine: NodeEngine }> {
  const limits = { ...DEFAULT_LIMITS, ...options.limits };
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", limits });
  const app = createNodeApp({
    engine,
    limits,
    ...(options.secret ? { clusterSecret: options.secret } : {}),
  });
  return { app, engine };
}

function put(app: Hono, path: string, body: BodyInit, headers: HeadersInit = {}) {
  return app.request(path, { method: "PUT", body, headers });
}

async function errorCode(res: Response): Promise<string> {
  const body = await res.json();
  assertEquals(typeof body.error.message, "string");
  return body.error.code;
}

Deno.test("PUT /kv/{key} answers 201 then 200 with the version as ETag", async () => {
  const { app, engine } = await setup();
  const first = await put(app, "/kv/greeting", "hello", { "content-type": "text/plain" });
  assertEquals(first.status, 201);
  const etag = first.headers.get("etag")!;
  assertMatch(etag, /^"[0-9a-f]{12}-[0-9a-f]{4}-n1"$/);
  // The ETag is the version's one header on answers that have one (docs/internal-api.md).
  assertEquals(first.headers.get("x-ringkv-version"), null);
  assertEquals(first.headers.get("x-ringkv-node"), null, "no node id header: /health has it");
  const second = await put(app, "/kv/greeting", "hi");
  assertEquals(second.status, 200);
  assert(second.headers.get("etag")! > etag, "a replacement gets a newer version");
  await engine.close();
});

Deno.test("GET and HEAD /kv/{key} return the value, its Content-Type and ETag", async () => {
  const { app, engine } = await setup();
  const written = await put(app, "/kv/doc", '{"a":1}', { "content-type": "application/json" });
  const res = await app.request("/kv/doc");
  assertEquals(res.status, 200);
  assertEquals(res.headers.get("content-type"), "application/json");
  assertEquals(res.headers.get("etag"), written.headers.get("etag"));
  assertEquals(await res.text(), '{"a":1}');
  const head = await app.request("/kv/doc", { method: "HEAD" });
  assertEquals(head.status, 200);
  assertEquals(head.headers.get("etag"), written.headers.get("etag"));
  assertEquals(head.headers.get("content-length"), "7");
  assertEquals(await head.text(), "");
  await engine.close();
});

Deno.test("PUT /kv/{key} without Content-Type stores application/octet-stream", async () => {
  const { app, engine } = await setup();
  await put(app, "/kv/raw", new Uint8Array([1, 2, 3]));
  const res = await app.request("/kv/raw");
  assertEquals(res.headers.get("content-type"), "application/octet-stream");
  await engine.close();
});

Deno.test("binary values round-trip byte for byte", async () => {
  const { app, engine } = await setup();
  const value = new Uint8Array(256).map((_, i) => 255 - i);
  assertEquals((await put(app, "/kv/bin", value)).status, 201);
  const res = await app.request("/kv/bin");
  assertEquals(new Uint8Array(await res.arrayBuffer()), value);
  await engine.close();
});

Deno.test("DELETE /kv/{key} answers 204 with the tombstone's ETag, then 404 everywhere", async () => {
  const { app, engine } = await setup();
  await put(app, "/kv/gone", "x");
  const del = await app.request("/kv/gone", { method: "DELETE" });
  assertEquals(del.status, 204);
  const tombstone = del.headers.get("etag")!.slice(1, -1);
  assertMatch(tombstone, /^[0-9a-f]{12}-[0-9a-f]{4}-n1$/);
  const get = await app.request("/kv/gone");
  assertEquals(get.status, 404);
  assertEquals(await errorCode(get), "not_found");
  assertEquals(get.headers.get("x-ringkv-version"), tombstone, "a tombstone's 404 has its version");
  assertEquals((await app.request("/kv/gone", { method: "HEAD" })).status, 404);
  const again = await app.request("/kv/gone", { method: "DELETE" });
  assertEquals(again.status, 404);
  assertEquals(await errorCode(again), "not_found");
  const never = await app.request("/kv/never");
  assertEquals(never.status, 404);
  assertEquals(never.headers.get("x-ringkv-version"), null);
  await never.body?.cancel();
  await engine.close();
});

Deno.test("If-Match and If-None-Match: * hold or answer 412", async () => {
  const { app, engine } = await setup();
  const created = await put(app, "/kv/cas", "1", { "if-none-match": "*" });
  assertEquals(created.status, 201);
  const etag = created.headers.get("etag")!;
  const taken = await put(app, "/kv/cas", "2", { "if-none-match": "*" });
  assertEquals(taken.status, 412);
  assertEquals(await errorCode(taken), "precondition_failed");
  assertEquals(taken.headers.get("etag"), etag, "the 412 names the current version");
  const stale = await put(app, "/kv/cas", "2", { "if-match": '"000000000001-0000-n1"' });
  assertEquals(stale.status, 412);
  await stale.body?.cancel();
  const ok = await put(app, "/kv/cas", "2", { "if-match": etag });
  assertEquals(ok.status, 200);
  const oldDelete = await app.request("/kv/cas", {
    method: "DELETE",
    headers: { "if-match": etag },
  });
  assertEquals(oldDelete.status, 412);
  await oldDelete.body?.cancel();
  assertEquals(await (await app.request("/kv/cas")).text(), "2");
  await engine.close();
});

Deno.test("If-Match: * needs the key to exist", async () => {
  const { app, engine } = await setup();
  const absent = await put(app, "/kv/star", "1", { "if-match": "*" });
  assertEquals(absent.status, 412);
  await absent.body?.cancel();
  await put(app, "/kv/star", "1");
  assertEquals((await put(app, "/kv/star", "2", { "if-match": "*" })).status, 200);
  await app.request("/kv/star", { method: "DELETE" });
  const deleted = await put(app, "/kv/star", "3", { "if-match": "*" });
  assertEquals(deleted.status, 412, "a tombstone does not exist for If-Match: *");
  await deleted.body?.cancel();
  await engine.close();
});

Deno.test("x-ringkv-min-version makes the new version newer than it", async () => {
  const { app, engine } = await setup();
  const floor = "7fffffffffff-0000-p1";
  const res = await put(app, "/kv/mv", "1", { "x-ringkv-min-version": floor });
  assert(res.headers.get("etag")!.slice(1, -1) > floor);
  await engine.close();
});

Deno.test("keys keep slashes, unicode and encoded percent signs", async () => {
  const { app, engine } = await setup();
  const cases: [string, string][] = [
    ["/kv/users/42/name", "users/42/name"],
    ["/kv/a%2Fb", "a/b"],
    ["/kv/%C3%A9t%C3%A9%20%F0%9F%8C%9E", "été 🌞"],
    ["/kv/100%25", "100%"],
    ["/kv/q%3Fx%23y", "q?x#y"],
  ];
  for (const [path, key] of cases) {
    assertEquals((await put(app, path, key)).status, 201, path);
    assertEquals(await (await app.request(path)).text(), key, path);
  }
  const listed = await (await app.request("/internal/keys?limit=100")).json();
  const keys = listed.entries.map((e: { k: string }) => e.k).sort();
  assertEquals(keys, cases.map(([, key]) => key).sort());
  await engine.close();
});

function chunked(size: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= size) return controller.close();
      controller.enqueue(new Uint8Array(Math.min(100, size - sent)).fill(120));
      sent += 100;
    },
  });
}

type BadCase = [name: string, path: string, init: RequestInit, status: number, code: string];

const BAD_INPUTS: BadCase[] = [
  [
    "key over the limit",
    "/kv/" + "k".repeat(65),
    { method: "PUT", body: "x" },
    414,
    "key_too_long",
  ],
  ["multi-byte key over the limit", "/kv/" + "%C3%A9".repeat(33), {}, 414, "key_too_long"],
  [
    "value over the limit (Content-Length)",
    "/kv/big",
    {
      method: "PUT",
      body: "x".repeat(1001),
      headers: { "content-length": "1001" },
    },
    413,
    "value_too_large",
  ],
  [
    "Content-Length announcing too much",
    "/kv/big",
    {
      method: "PUT",
      body: "x",
      headers: { "content-length": "99999999999" },
    },
    413,
    "value_too_large",
  ],
  [
    "value over the limit (chunked)",
    "/kv/big",
    {
      method: "PUT",
      body: chunked(5000),
      duplex: "half",
    } as RequestInit,
    413,
    "value_too_large",
  ],
  [
    "bad JSON in a batch",
    "/internal/batch",
    { method: "POST", body: "{ops:" },
    400,
    "invalid_json",
  ],
  [
    "non-UTF-8 JSON",
    "/internal/batch",
    {
      method: "POST",
      body: new Uint8Array([0x7b, 0xff, 0x7d]),
    },
    400,
    "invalid_json",
  ],
  ["batch without ops", "/internal/batch", { method: "POST", body: "[]" }, 400, "invalid_batch"],
  [
    "batch over maxBatchOps",
    "/internal/batch",
    {
      method: "POST",
      body: JSON.stringify({
        ops: Array.from({ length: 11 }, (_, i) => ({ op: "get", key: `${i}` })),
      }),
    },
    413,
    "batch_too_large",
  ],
  ["bad JSON import", "/import", { method: "POST", body: '{"a": ' }, 400, "invalid_json"],
  ["import of a non-object", "/import", { method: "POST", body: "[1]" }, 400, "bad_request"],
  ["PATCH on a key", "/kv/x", { method: "PATCH", body: "x" }, 405, "method_not_allowed"],
  ["POST on /health", "/health", { method: "POST" }, 405, "method_not_allowed"],
  ["invalid percent-encoding", "/kv/%ZZ", {}, 400, "invalid_key"],
  [
    "percent-encoding that is not UTF-8",
    "/kv/%C3",
    { method: "PUT", body: "x" },
    400,
    "invalid_key",
  ],
  ["empty key", "/kv/", { method: "PUT", body: "x" }, 400, "invalid_key"],
  ["NUL in a key", "/kv/a%00b", { method: "PUT", body: "x" }, 400, "invalid_key"],
  ["newline in a key", "/kv/a%0Ab", {}, 400, "invalid_key"],
  ["unknown route", "/nope", {}, 404, "no_route"],
  [
    "If-None-Match other than *",
    "/kv/x",
    {
      method: "PUT",
      body: "x",
      headers: { "if-none-match": '"abc"' },
    },
    400,
    "invalid_header",
  ],
  [
    "unquoted If-Match",
    "/kv/x",
    { method: "PUT", body: "x", headers: { "if-match": "abc" } },
    400,
    "invalid_header",
  ],
  [
    "bad min-version",
    "/kv/x",
    {
      method: "PUT",
      body: "x",
      headers: { "x-ringkv-min-version": "yesterday" },
    },
    400,
    "invalid_header",
  ],
  ["bad epoch header", "/kv/x", { headers: { "x-ringkv-epoch": "soon" } }, 400, "invalid_header"],
  [
    "ingest line that is not JSON",
    "/internal/ingest",
    { method: "POST", body: "{\n" },
    400,
    "invalid_json",
  ],
  [
    "ingest entry without a version",
    "/internal/ingest",
    {
      method: "POST",
      body: '{"k":"a","v":null,"h":1}\n',
    },
    400,
    "invalid_batch",
  ],
  [
    "ingest over maxBatchOps lines",
    "/internal/ingest",
    {
      method: "POST",
      body: Array.from(
        { length: 11 },
        (_, i) => JSON.stringify({ k: `i${i}`, v: "", ver: "000000000001-0000-x", h: 1 }),
      ).join("\n"),
    },
    413,
    "batch_too_large",
  ],
  ["scan without ranges", "/internal/scan", {}, 400, "bad_request"],
  ["scan with a backwards range", "/internal/scan?ranges=10-5", {}, 400, "bad_request"],
  ["scan past the ring", "/internal/scan?ranges=0-4294967297", {}, 400, "bad_request"],
  [
    "drop of a non-range",
    "/internal/drop",
    { method: "POST", body: '{"ranges":[[1]]}' },
    400,
    "bad_request",
  ],
  ["listing with limit 0", "/internal/keys?limit=0", {}, 400, "bad_request"],
  ["listing over maxListLimit", "/internal/keys?limit=100000", {}, 400, "bad_request"],
  [
    "cluster map without epoch",
    "/internal/cluster",
    { method: "PUT", body: "{}" },
    400,
    "bad_request",
  ],
  ["export with an unknown binary mode", "/export?binary=hex", {}, 400, "bad_request"],
];

Deno.test("bad input gets its 4xx and error body, and the node still serves the same data", async () => {
  const { app, engine } = await setup({
    limits: { maxKeyBytes: 64, maxValueBytes: 1000, maxBatchOps: 10 },
  });
  await put(app, "/kv/keep", "safe", { "content-type": "text/plain" });
  const before = engine.exportFlat("base64");
  for (const [name, path, init, status, code] of BAD_INPUTS) {
    const res = await app.request(path, init);
    assertEquals(res.status, status, name);
    assertEquals(res.headers.get("content-type"), "application/json", name);
    assertEquals(await errorCode(res), code, name);
    assertEquals(res.headers.get("x-ringkv-node"), null, `${name}: no id header (/health has it)`);
    if (status === 405) assert(res.headers.get("allow")!.length > 0, `${name}: Allow`);
    const check = await app.request("/kv/keep");
    assertEquals([check.status, await check.text()], [200, "safe"], `${name}: still serves`);
    assertEquals(engine.exportFlat("base64"), before, `${name}: data unchanged`);
  }
  await engine.close();
});

Deno.test("405 lists the allowed methods in Allow", async () => {
  const { app, engine } = await setup();
  const res = await app.request("/kv/x", { method: "POST" });
  assertEquals(res.status, 405);
  assertEquals(res.headers.get("allow"), "GET, HEAD, PUT, DELETE");
  await res.body?.cancel();
  await engine.close();
});

Deno.test("the cluster secret is needed on every route but /health", async () => {
  const { app, engine } = await setup({ secret: "s3cret" });
  const routes = ["/kv/a", "/internal/keys", "/internal/cluster", "/export", "/metrics", "/nope"];
  const headerSets: [Record<string, string>, number][] = [
    [{}, 401],
    [{ authorization: "Bearer wrong" }, 401],
    [{ authorization: "Bearer s3cret-and-more" }, 401],
    [{ authorization: "Bearer s3cre" }, 401],
    [{ authorization: "s3cret" }, 401],
    [{ authorization: "Basic s3cret" }, 401],
  ];
  for (const path of routes) {
    for (const [headers, status] of headerSets) {
      const res = await app.request(path, { headers });
      assertEquals(res.status, status, `${path} ${JSON.stringify(headers)}`);
      assertEquals(res.headers.get("www-authenticate"), 'Bearer realm="ringkv-node"');
      assertEquals(await errorCode(res), "unauthorized");
    }
  }
  const ok = { authorization: "Bearer s3cret" };
  assertEquals((await put(app, "/kv/a", "1", ok)).status, 201);
  assertEquals(await (await app.request("/kv/a", { headers: ok })).text(), "1");
  const unauthorizedPut = await put(app, "/kv/a", "2");
  assertEquals(unauthorizedPut.status, 401);
  await unauthorizedPut.body?.cancel();
  assertEquals(await (await app.request("/kv/a", { headers: ok })).text(), "1");
  const health = await app.request("/health");
  assertEquals(health.status, 200);
  assertEquals((await health.json()).id, "n1");
  await engine.close();
});

const MAP = {
  epoch: 5,
  replicas: 1,
  vnodes: 8,
  nodes: [{ id: "n1", url: "http://a", weight: 1 }],
  rebalancing: null,
};

Deno.test("PUT /internal/cluster stores maps of the same or a newer epoch only", async () => {
  const { app, engine } = await setup();
  const none = await app.request("/internal/cluster");
  assertEquals(none.status, 404);
  await none.body?.cancel();
  const putMap = (map: object) =>
    app.request("/internal/cluster", { method: "PUT", body: JSON.stringify(map) });
  assertEquals((await putMap(MAP)).status, 200);
  assertEquals((await putMap(MAP)).status, 200, "the same epoch again is fine");
  const older = await putMap({ ...MAP, epoch: 4 });
  assertEquals(older.status, 409);
  const body = await older.json();
  assertEquals(body.error.code, "stale_epoch");
  assertEquals(body.map, MAP);
  assertEquals(body.epoch, 5);
  assertEquals((await putMap({ ...MAP, epoch: 6 })).status, 200);
  assertEquals(await (await app.request("/internal/cluster")).json(), { ...MAP, epoch: 6 });
  assertEquals((await (await app.request("/health")).json()).epoch, 6);
  assertEquals(await engine.loadClusterMap(), { ...MAP, epoch: 6 }, "stored by the engine");
  await engine.close();
});

Deno.test("a request routed by an older epoch gets 409 stale_epoch and changes nothing", async () => {
  const { app, engine } = await setup();
  await app.request("/internal/cluster", { method: "PUT", body: JSON.stringify(MAP) });
  const stale = await put(app, "/kv/e", "1", { "x-ringkv-epoch": "4" });
  assertEquals(stale.status, 409);
  const body = await stale.json();
  assertEquals([body.error.code, body.error.epoch, body.epoch], ["stale_epoch", 5, 5]);
  assertEquals((await app.request("/kv/e")).status, 404);
  assertEquals((await put(app, "/kv/e", "1", { "x-ringkv-epoch": "5" })).status, 201);
  assertEquals((await put(app, "/kv/e", "2", { "x-ringkv-epoch": "9" })).status, 200);
  const batch = await app.request("/internal/batch", {
    method: "POST",
    headers: { "x-ringkv-epoch": "1" },
    body: JSON.stringify({ ops: [{ op: "delete", key: "e" }] }),
  });
  assertEquals(batch.status, 409);
  await batch.body?.cancel();
  assertEquals(await (await app.request("/kv/e")).text(), "2");
  await engine.close();
});

Deno.test("a stored map's epoch is known to a new app on the same engine", async () => {
  const { app, engine } = await setup();
  await app.request("/internal/cluster", { method: "PUT", body: JSON.stringify(MAP) });
  const again = createNodeApp({ engine, limits: DEFAULT_LIMITS });
  const stale = await again.request("/kv/x", { headers: { "x-ringkv-epoch": "2" } });
  assertEquals(stale.status, 409);
  await stale.body?.cancel();
  await engine.close();
});
