import { assert, assertEquals, assertMatch } from "@std/assert";
import type { Hono } from "hono";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { createNodeApp } from "./node_app.ts";
import type { NodeEngine } from "../engine/engine.ts";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import { openEngine } from "../engine/open_engine.ts";
import { newChallenge, provesSecret } from "../../shared/node_proof.ts";
import { formatVersion } from "../../shared/version.ts";

async function setup(clusterSecret?: string): Promise<{ app: Hono; engine: NodeEngine }> {
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", limits: DEFAULT_LIMITS });
  return { app: createNodeApp({ engine, limits: DEFAULT_LIMITS, clusterSecret }), engine };
}

/** hex(HMAC-SHA256(secret, "ringkv-node-proof\n" + challenge)), worked out here on its own. */
async function expectedProof(secret: string, challenge: string): Promise<string> {
  const bytes = (text: string) => new TextEncoder().encode(text);
  const algorithm = { name: "HMAC", hash: "SHA-256" };
  const key = await crypto.subtle.importKey("raw", bytes(secret), algorithm, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, bytes(`ringkv-node-proof\n${challenge}`));
  return Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("GET /health answers ok with the id, incarnation, epoch, number of keys, limits and its clock", async () => {
  const engine = await openEngine({
    disk: createFakeDisk(),
    id: "n1",
    now: () => 1_700_000_000_000,
  });
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
  await app.request("/kv/a", { method: "PUT", body: "1" });
  assertEquals(await (await app.request("/health")).json(), {
    status: "ok",
    id: "n1",
    incarnation: engine.incarnation,
    epoch: 0,
    keys: 1,
    tombstones: 0,
    limits: {
      maxKeyBytes: DEFAULT_LIMITS.maxKeyBytes,
      maxValueBytes: DEFAULT_LIMITS.maxValueBytes,
    },
    now: 1_700_000_000_000,
    // Nothing saved: the acceptor promises nothing older than its data directory.
    promiseFloor: formatVersion(engine.createdAt, 0, "0"),
  });
  // A deleted key is no key, but the node remembers its deletion: a join check counts it.
  await app.request("/kv/a", { method: "DELETE" });
  const after = await (await app.request("/health")).json();
  assertEquals([after.keys, after.tombstones], [0, 1]);
  await engine.close();
});

Deno.test("GET /health reports the promise watermark a restart loaded as promiseFloor, before any round opened the acceptor", async () => {
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", limits: DEFAULT_LIMITS });
  const saved = formatVersion(engine.createdAt + 60_000, 0, "0");
  const floorStore = {
    persistent: true as const,
    load: () => Promise.resolve(saved),
    save: () => Promise.resolve(),
  };
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS, floorStore });
  assertEquals((await (await app.request("/health")).json()).promiseFloor, saved);
  const broken = createNodeApp({
    engine,
    limits: DEFAULT_LIMITS,
    floorStore: { load: () => Promise.reject(new Error("EIO")), save: () => Promise.resolve() },
  });
  const res = await broken.request("/health");
  assertEquals([res.status, (await res.json()).promiseFloor], [200, null]);
  await engine.close();
});

Deno.test("GET /health?challenge= answers, without the secret, a proof of the node's secret that verifies", async () => {
  const { app, engine } = await setup("s3cret");
  const challenge = newChallenge();
  const res = await app.request(`/health?challenge=${challenge}`);
  const body = await res.json();
  assertEquals([res.status, body.id], [200, "n1"]);
  assertEquals(body.proof, await expectedProof("s3cret", challenge));
  assert(await provesSecret("s3cret", challenge, body.proof));
  assert(!(await provesSecret("another", challenge, body.proof)));
  assert(!(await provesSecret("s3cret", newChallenge(), body.proof)), "bound to the challenge");
  // Without a challenge the answer is as it was; the secret itself is never in it.
  const plain = await (await app.request("/health")).json();
  assertEquals("proof" in plain, false);
  assert(!JSON.stringify(body).includes("s3cret"));
  await engine.close();
});

Deno.test("GET /health?challenge= of a node without a cluster secret says so: proof null", async () => {
  const { app, engine } = await setup();
  const res = await app.request(`/health?challenge=${newChallenge()}`);
  assertEquals([res.status, (await res.json()).proof], [200, null]);
  await engine.close();
});

Deno.test("GET /health answers 400 to a challenge that is not 16-128 of [A-Za-z0-9_-] or given twice", async () => {
  const { app, engine } = await setup("s3cret");
  const good = newChallenge();
  const junk = [
    "challenge=",
    "challenge=short",
    `challenge=${"a".repeat(129)}`,
    `challenge=${good.slice(0, 20)}%20${good.slice(20)}`,
    `challenge=${good}.`,
    `challenge=${encodeURIComponent("é".repeat(16))}`,
    `challenge=${good}&challenge=${good}`,
  ];
  for (const query of junk) {
    const res = await app.request(`/health?${query}`);
    const body = await res.json();
    assertEquals([res.status, body.error.code], [400, "bad_request"], query);
    assertEquals(body.proof, undefined, query);
  }
  const edges = [good.slice(0, 16), "A-_z".repeat(32)];
  for (const challenge of edges) {
    const res = await app.request(`/health?challenge=${challenge}`);
    assert(await provesSecret("s3cret", challenge, (await res.json()).proof), challenge);
  }
  await engine.close();
});

Deno.test("POST /import then GET /export round-trips the flat image", async () => {
  const { app, engine } = await setup();
  const image = { greeting: "hello", "users/42": "Ada", "été": "☀" };
  const res = await app.request("/import", { method: "POST", body: JSON.stringify(image) });
  assertEquals(await res.json(), { imported: 3 });
  const got = await app.request("/kv/users/42");
  assertEquals([await got.text(), got.headers.get("content-type")], [
    "Ada",
    "text/plain; charset=utf-8",
  ]);
  assertEquals(await (await app.request("/export")).json(), image);
  await engine.close();
});

Deno.test("GET /export refuses binary values unless ?binary=base64, and they import back", async () => {
  const { app, engine } = await setup();
  await app.request("/kv/text", { method: "PUT", body: "plain" });
  await app.request("/kv/bin", { method: "PUT", body: new Uint8Array([0xff, 0x00, 0xfe]) });
  await app.request("/kv/gone", { method: "PUT", body: "x" });
  await app.request("/kv/gone", { method: "DELETE" });
  const refused = await app.request("/export");
  assertEquals(refused.status, 409);
  assertEquals((await refused.json()).error.code, "conflict");
  const image = await (await app.request("/export?binary=base64")).json();
  assertEquals(image, { text: "plain", bin: { base64: "/wD+" } });
  const other = await setup();
  const res = await other.app.request("/import", { method: "POST", body: JSON.stringify(image) });
  assertEquals(await res.json(), { imported: 2 });
  const bin = await other.app.request("/kv/bin");
  assertEquals(new Uint8Array(await bin.arrayBuffer()), new Uint8Array([0xff, 0x00, 0xfe]));
  await engine.close();
  await other.engine.close();
});

Deno.test("POST /import refuses a bad pair and imports nothing", async () => {
  const { app, engine } = await setup();
  for (
    const image of [{ ok: "1", "": "empty key" }, { ok: "1", n: 5 }, {
      ok: "1",
      b: { base64: "!!" },
    }]
  ) {
    const res = await app.request("/import", { method: "POST", body: JSON.stringify(image) });
    assertEquals(res.status, 400, JSON.stringify(image));
    await res.body?.cancel();
  }
  assertEquals((await app.request("/kv/ok")).status, 404);
  await engine.close();
});

Deno.test("GET /metrics has the sizes and requests by route and status", async () => {
  const { app, engine } = await setup();
  await app.request("/kv/a", { method: "PUT", body: "12345" });
  await app.request("/kv/b", { method: "PUT", body: "1" });
  await app.request("/kv/b", { method: "DELETE" });
  await (await app.request("/kv/zzz")).body?.cancel();
  const res = await app.request("/metrics");
  assertMatch(res.headers.get("content-type")!, /^text\/plain/);
  const text = await res.text();
  assertMatch(text, /^ringkv_node_keys\{node="n1"\} 1$/m);
  assertMatch(text, /^ringkv_node_tombstones\{node="n1"\} 1$/m);
  assertMatch(text, /^ringkv_node_value_bytes\{node="n1"\} 5$/m);
  assertMatch(text, /^ringkv_node_wal_bytes\{node="n1"\} \d+$/m);
  assertMatch(text, /^ringkv_node_snapshot_bytes\{node="n1"\} \d+$/m);
  assertMatch(
    text,
    /^ringkv_node_requests_total\{method="PUT",route="\/kv\/\{key\}",status="201"\} 2$/m,
  );
  assertMatch(
    text,
    /^ringkv_node_requests_total\{method="GET",route="\/kv\/\{key\}",status="404"\} 1$/m,
  );
  assert(!text.includes("zzz"), "keys never become labels");
  await engine.close();
});

Deno.test("GET /health answers 503 read-only with the disk error, and /metrics says writable 0, until the disk takes writes again", async () => {
  const disk = createFakeDisk();
  const engine = await openEngine({
    disk,
    id: "n1",
    limits: DEFAULT_LIMITS,
    firstRetryMs: 5,
    log: () => {},
  });
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
  const writable = async () =>
    (await (await app.request("/metrics")).text()).match(
      /^ringkv_node_writable\{node="n1"\} (\d)$/m,
    )?.[1];
  assertEquals(await writable(), "1");
  disk.setCapacity(0);
  assertEquals((await app.request("/kv/a", { method: "PUT", body: "1" })).status, 503);
  const res = await app.request("/health");
  const body = await res.json();
  assertEquals([res.status, body.status, body.id, body.writes.state], [
    503,
    "read-only",
    "n1",
    "read-only",
  ]);
  assert(body.writes.reason.includes("No space left on device"), body.writes.reason);
  assertEquals(await writable(), "0");
  const refused = await app.request("/kv/b", { method: "PUT", body: "2" });
  assertEquals([refused.status, (await refused.json()).error.code], [503, "unavailable"]);
  disk.setCapacity(undefined);
  const deadline = Date.now() + 10_000;
  while ((await app.request("/health")).status !== 200) {
    assert(Date.now() < deadline, "the node did not take writes again");
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
  assertEquals(await writable(), "1");
  assertEquals((await app.request("/kv/b", { method: "PUT", body: "2" })).status, 201);
  await engine.close();
});
