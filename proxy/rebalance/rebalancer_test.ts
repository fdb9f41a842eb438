import { assert, assertEquals, assertRejects } from "@std/assert";
import type { Hono } from "hono";
import { RingkvError } from "../../shared/errors.ts";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { hashKeys, Ring } from "../../shared/ring.ts";
import type { ClusterMap, NodeInfo } from "../../shared/wire.ts";
import { createNodeApp } from "../../node/http/node_app.ts";
import type { NodeEngine } from "../../node/engine/engine.ts";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import { openEngine } from "../../node/engine/open_engine.ts";
import { ClusterState } from "../cluster/map_view.ts";
import { createMemoryMapStore, type MapStore } from "../cluster/map_store.ts";
import { initialMap, planRemove, toCleanup } from "../cluster/map_transitions.ts";
import { NodeAdmin } from "../nodes/node_admin.ts";
import { overRequests } from "../../tests/doubles/node_fetch.ts";
import { Rebalancer } from "./rebalancer.ts";

const VNODES = 64;
const SECRET = "cluster-s3cret";

/** In-process nodes at http://<id>.test; `fail` may refuse a request to simulate a crash. */
async function startNodes(ids: string[]) {
  const apps = new Map<string, Hono>();
  const engines = new Map<string, NodeEngine>();
  for (const id of ids) {
    const engine = await openEngine({ disk: createFakeDisk(), id, limits: DEFAULT_LIMITS });
    engines.set(id, engine);
    apps.set(
      `${id}.test`,
      createNodeApp({ engine, limits: DEFAULT_LIMITS, clusterSecret: SECRET }),
    );
  }
  const hooks = { fail: (_req: Request): boolean => false };
  const fetch = overRequests(async (req) => {
    const app = apps.get(new URL(req.url).host);
    if (app === undefined || hooks.fail(req)) throw new TypeError("connection refused");
    return await app.fetch(req);
  });
  const info = (id: string): NodeInfo => ({ id, url: `http://${id}.test`, weight: 1 });
  return { engines, fetch, hooks, info, apps };
}

type Nodes = Awaited<ReturnType<typeof startNodes>>;

async function proxy(nodes: Nodes, map: ClusterMap, store: MapStore = createMemoryMapStore()) {
  const admin = new NodeAdmin({ fetch: nodes.fetch, timeoutMs: 5000, clusterSecret: SECRET });
  const state = await ClusterState.open(map, { store, admin, sleep: () => Promise.resolve() });
  const rebalancer = new Rebalancer({ state, admin, autoRun: false, chunkLines: 100 });
  return { state, rebalancer, store, admin };
}

/** Writes `count` keys to their owners in `map`'s ring; every tenth one is then deleted. */
async function fill(nodes: Nodes, map: ClusterMap, count: number) {
  const keys = Array.from({ length: count }, (_, i) => `key/${i}`);
  const ring = await Ring.build(map.nodes, map.vnodes);
  const points = await hashKeys(keys);
  for (let i = 0; i < keys.length; i++) {
    const engine = nodes.engines.get(ring.ownersOf(points[i]!, 1)[0]!)!;
    const value = new TextEncoder().encode(`value ${i}`);
    await engine.write([{ op: "put", key: keys[i]!, value, contentType: "text/plain" }]);
    if (i % 10 === 0) await engine.write([{ op: "delete", key: keys[i]! }]);
  }
  return { keys, points };
}

/** Where each key is stored now: node ids holding it, with value and version. */
async function placement(nodes: Nodes, keys: string[]) {
  const where = new Map<string, { node: string; value: string | null; version: string }[]>();
  for (const key of keys) {
    const copies = [];
    for (const [id, engine] of nodes.engines) {
      const entry = await engine.get(key);
      if (entry === undefined) continue;
      const value = entry.value === null ? null : new TextDecoder().decode(entry.value);
      copies.push({ node: id, value, version: entry.version });
    }
    where.set(key, copies);
  }
  return where;
}

async function setup(ids: string[], count: number) {
  const nodes = await startNodes(ids);
  const map = initialMap(ids.slice(0, 3).map(nodes.info), 1, VNODES);
  const p = await proxy(nodes, map);
  await p.state.push(map);
  const data = await fill(nodes, map, count);
  const before = await placement(nodes, data.keys);
  return { nodes, map, p, ...data, before };
}

/** Checks that every key is only at its owner in `map`, with the version it had before. */
async function assertPlaced(s: Awaited<ReturnType<typeof setup>>, map: ClusterMap) {
  const ring = await Ring.build(map.nodes, map.vnodes);
  const after = await placement(s.nodes, s.keys);
  let moved = 0;
  for (let i = 0; i < s.keys.length; i++) {
    const key = s.keys[i]!;
    const [was] = s.before.get(key)!;
    const owner = ring.ownersOf(s.points[i]!, 1)[0]!;
    assertEquals(after.get(key), [{ ...was!, node: owner }], key);
    if (owner !== was!.node) moved++;
  }
  return moved;
}

async function finish(rebalancer: Rebalancer): Promise<string[]> {
  const results: string[] = [];
  for (let i = 0; i < 10; i++) {
    const result = await rebalancer.step();
    if (result === "idle") return results;
    results.push(result);
  }
  throw new Error("the rebalancing did not finish in 10 steps");
}

Deno.test("two proxies removing two nodes at the same moment: at most one change starts, and both proxies end on the map it leads to with every key at its owner (found by QA: both answered 202)", async () => {
  for (let trial = 0; trial < 4; trial++) {
    const ids = ["a", "b", "c", "d", "e"];
    const nodes = await startNodes(ids);
    const map = initialMap(ids.map(nodes.info), 1, VNODES);
    const p1 = await proxy(nodes, map);
    const p2 = await proxy(nodes, map);
    await p1.state.push(map);
    const data = await fill(nodes, map, 500);
    const s = { nodes, map, p: p1, ...data, before: await placement(nodes, data.keys) };
    const started = await Promise.allSettled([
      p1.rebalancer.startRemove("e"),
      p2.rebalancer.startRemove("d"),
    ]);
    const won = started.flatMap((r, i) => r.status === "fulfilled" ? [[p1, p2][i]!] : []);
    assert(won.length <= 1, `trial ${trial}: both changes started`);
    for (const r of started) {
      if (r.status === "rejected") assertEquals((r.reason as RingkvError).code, "conflict");
    }
    if (won.length === 1) assertEquals(await finish(won[0]!.rebalancer), ["copied", "cleaned"]);
    await p1.state.poll();
    await p2.state.poll();
    const final = p1.state.current().map;
    assertEquals(p2.state.current().map, final, `trial ${trial}`);
    assertEquals(final.rebalancing, null);
    assertEquals(final.nodes.length, 5 - won.length);
    await assertPlaced(s, final);
    for (const engine of nodes.engines.values()) await engine.close();
  }
});

Deno.test("removing a node being added cancels its add while its ranges are copied: the old ring stays whole, the node is emptied and may be added again", async () => {
  const s = await setup(["a", "b", "c", "d"], 600);
  await s.p.rebalancer.startAdd("http://d.test", 1);
  // The copy breaks after d took its first chunk (d stops answering ingests).
  let ingests = 0;
  s.nodes.hooks.fail = (req) =>
    req.url.startsWith("http://d.test/internal/ingest") && ++ingests > 1;
  await assertRejects(() => s.p.rebalancer.step(), RingkvError);
  assert(s.nodes.engines.get("d")!.stats().keys > 0, "d got part of its ranges");
  const cancelled = await s.p.rebalancer.startRemove("d");
  assertEquals([cancelled.epoch, cancelled.rebalancing], [3, null]);
  assertEquals(cancelled.nodes.map((n) => n.id), ["a", "b", "c"]);
  assertEquals(await assertPlaced(s, cancelled), 0);
  assertEquals(await s.p.rebalancer.step(), "idle");
  // d was told and emptied: it joins again without a wipe.
  s.nodes.hooks.fail = () => false;
  await s.p.rebalancer.startAdd("http://d.test", 1);
  assertEquals(await finish(s.p.rebalancer), ["copied", "cleaned"]);
  assert((await assertPlaced(s, s.p.state.current().map)) > 0);
});

Deno.test("a node being added that died is removed by cancelling its add, and added again once back; past the switch its removal is 409", async () => {
  const s = await setup(["a", "b", "c", "d"], 300);
  await s.p.rebalancer.startAdd("http://d.test", 1);
  let ingests = 0;
  s.nodes.hooks.fail = (req) =>
    req.url.startsWith("http://d.test/internal/ingest") && ++ingests > 1;
  await assertRejects(() => s.p.rebalancer.step(), RingkvError);
  s.nodes.hooks.fail = (req) => req.url.startsWith("http://d.test/");
  const cancelled = await s.p.rebalancer.startRemove("d", true);
  assertEquals([cancelled.rebalancing, cancelled.nodes.length], [null, 3]);
  // Back, d holds part of its ranges and the add's map: it is emptied and added again.
  s.nodes.hooks.fail = () => false;
  assert(s.nodes.engines.get("d")!.stats().keys > 0);
  assertEquals((await s.nodes.engines.get("d")!.loadClusterMap())?.rebalancing?.nodeId, "d");
  // Re-added with a smaller weight, d owns less than the copies it held: none stays behind.
  await s.p.rebalancer.startAdd("http://d.test", 0.5);
  assertEquals(await finish(s.p.rebalancer), ["copied", "cleaned"]);
  assert((await assertPlaced(s, s.p.state.current().map)) > 0);

  const t = await setup(["a", "b", "c", "d"], 100);
  await t.p.rebalancer.startAdd("http://d.test", 1);
  assertEquals(await t.p.rebalancer.step(), "copied");
  const err = await assertRejects(() => t.p.rebalancer.startRemove("d"), RingkvError);
  assertEquals(err.code, "conflict");
  assert(err.message.includes("past the switch"), err.message);
});

Deno.test("a proxy that proposes from an old map gets the map the nodes chose instead, through real node apps", async () => {
  const ids = ["a", "b", "c", "d", "e"];
  const nodes = await startNodes(ids);
  const map = initialMap(ids.map(nodes.info), 1, VNODES);
  const p1 = await proxy(nodes, map);
  const p2 = await proxy(nodes, map);
  await p1.state.push(map);
  const chosen = await p1.rebalancer.startRemove("e");
  assertEquals(await p2.state.propose(planRemove(map, "d", 0, 0), "admin"), false);
  assertEquals(p2.state.current().map, chosen);
  for (const engine of nodes.engines.values()) await engine.close();
});

Deno.test("cancelling an add empties only the joining node: a member started at its URL since keeps its keys (found by review)", async () => {
  const s = await setup(["a", "b", "c", "d"], 300);
  await s.p.rebalancer.startAdd("http://d.test", 1);
  s.nodes.hooks.fail = (req) => req.url.startsWith("http://d.test/");
  await assertRejects(() => s.p.rebalancer.step(), RingkvError);
  // d is gone; member c now answers at d's URL too.
  s.nodes.apps.set("d.test", s.nodes.apps.get("c.test")!);
  s.nodes.hooks.fail = () => false;
  const keys = s.nodes.engines.get("c")!.stats().keys;
  const cancelled = await s.p.rebalancer.startRemove("d", true);
  assertEquals([cancelled.rebalancing, cancelled.nodes.length], [null, 3]);
  assertEquals(s.nodes.engines.get("c")!.stats().keys, keys);
  assertEquals(await assertPlaced(s, cancelled), 0);
});

Deno.test("adding a node to 3 moves only the keys whose owner changed, tombstones included", async () => {
  const s = await setup(["a", "b", "c", "d"], 1200);
  await s.p.rebalancer.startAdd("http://d.test", 1);
  assertEquals(await finish(s.p.rebalancer), ["copied", "cleaned"]);
  const map = s.p.state.current().map;
  assertEquals([map.epoch, map.rebalancing, map.nodes.map((n) => n.id)], [4, null, [
    "a",
    "b",
    "c",
    "d",
  ]]);
  const moved = await assertPlaced(s, map);
  assert(moved > 100 && moved < 600, `moved ${moved} of 1200`);
  for (const engine of s.nodes.engines.values()) {
    assertEquals((await engine.loadClusterMap())?.epoch, 4);
  }
});

Deno.test("the add's movedKeys counts the entries copied", async () => {
  const s = await setup(["a", "b", "c", "d"], 300);
  await s.p.rebalancer.startAdd("http://d.test", 1);
  await s.p.rebalancer.step();
  const cleanup = s.p.state.current().map;
  assertEquals(cleanup.rebalancing?.phase, "cleanup");
  const moved = await assertPlacedAfterCleanup(s, cleanup);
  assertEquals(cleanup.rebalancing?.movedKeys, moved);
  await finish(s.p.rebalancer);
});

/** During cleanup the moved keys are at both owners; counts the ones at the new owner only. */
async function assertPlacedAfterCleanup(s: Awaited<ReturnType<typeof setup>>, map: ClusterMap) {
  const ring = await Ring.build(map.nodes, map.vnodes);
  const after = await placement(s.nodes, s.keys);
  let moved = 0;
  for (let i = 0; i < s.keys.length; i++) {
    const [was] = s.before.get(s.keys[i]!)!;
    const owner = ring.ownersOf(s.points[i]!, 1)[0]!;
    if (owner === was!.node) continue;
    moved++;
    assert(after.get(s.keys[i]!)!.some((c) => c.node === owner && c.version === was!.version));
  }
  return moved;
}

Deno.test("removing a node moves its keys to their new owners and leaves it empty", async () => {
  const s = await setup(["a", "b", "c"], 1000);
  await s.p.rebalancer.startRemove("b");
  assertEquals(await finish(s.p.rebalancer), ["copied", "cleaned"]);
  const map = s.p.state.current().map;
  assertEquals([map.epoch, map.nodes.map((n) => n.id)], [4, ["a", "c"]]);
  const moved = await assertPlaced(s, map);
  assertEquals(moved, [...s.before.values()].filter((c) => c[0]!.node === "b").length);
  assertEquals(s.nodes.engines.get("b")!.stats().keys, 0);
});

Deno.test("a deleted key does not come back after its range moves", async () => {
  const s = await setup(["a", "b", "c", "d"], 400);
  await s.p.rebalancer.startAdd("http://d.test", 1);
  await finish(s.p.rebalancer);
  const after = await placement(s.nodes, s.keys);
  for (let i = 0; i < s.keys.length; i += 10) {
    const copies = after.get(s.keys[i]!)!;
    assertEquals(copies.map((c) => c.value), [null], s.keys[i]);
  }
});

Deno.test("a rebalancing resumes after a crash at each step, from the stored map", async () => {
  for (const crashAt of ["push", "copy", "cleanup-push", "drop"]) {
    const s = await setup(["a", "b", "c", "d"], 500);
    let ingests = 0;
    s.nodes.hooks.fail = (req) => {
      const path = new URL(req.url).pathname;
      if (crashAt === "copy" && path === "/internal/ingest") return ++ingests > 2;
      if (crashAt === "drop" && path === "/internal/drop") return true;
      if (crashAt === "push" && req.method === "PUT" && req.url.startsWith("http://b.")) {
        return true;
      }
      const cleanup = s.p.state.current().map.rebalancing?.phase === "cleanup";
      return crashAt === "cleanup-push" && cleanup && req.url.startsWith("http://c.");
    };
    await s.p.rebalancer.startAdd("http://d.test", 1);
    await assertRejects(() => finish(s.p.rebalancer), RingkvError);
    s.nodes.hooks.fail = () => false;
    const stored = (await s.p.store.load())!;
    const restarted = await proxy(s.nodes, stored, createMemoryMapStore(stored));
    await finish(restarted.rebalancer);
    const map = restarted.state.current().map;
    assertEquals([map.epoch, map.rebalancing], [4, null], crashAt);
    await assertPlaced(s, map);
  }
});

Deno.test("a proxy joining with an empty disk finishes a rebalancing from a node's map", async () => {
  const s = await setup(["a", "b", "c", "d"], 300);
  await s.p.rebalancer.startAdd("http://d.test", 1);
  const fromNode = await s.p.admin.getMap("http://a.test");
  assertEquals(fromNode?.rebalancing?.phase, "copying");
  const other = await proxy(s.nodes, fromNode!);
  assertEquals(await finish(other.rebalancer), ["copied", "cleaned"]);
  await assertPlaced(s, other.state.current().map);
  assertEquals(await finish(s.p.rebalancer), ["superseded"]);
  assertEquals(s.p.state.current().map.epoch, 4);
});

Deno.test("two proxies driving the same add at once end on the same map, nothing lost", async () => {
  const s = await setup(["a", "b", "c", "d"], 500);
  await s.p.rebalancer.startAdd("http://d.test", 1);
  const other = await proxy(s.nodes, (await s.p.admin.getMap("http://a.test"))!);
  await Promise.all([s.p.rebalancer.run(), other.rebalancer.run()]);
  await Promise.all([s.p.state.poll(), other.state.poll()]);
  assertEquals(s.p.state.current().map, other.state.current().map);
  assertEquals(s.p.state.current().map.epoch, 4);
  await assertPlaced(s, s.p.state.current().map);
});

Deno.test("adding a node that refuses the cluster secret is refused (409) and the map stays", async () => {
  const s = await setup(["a", "b", "c"], 10);
  const engine = await openEngine({ disk: createFakeDisk(), id: "d", limits: DEFAULT_LIMITS });
  const stranger = createNodeApp({ engine, limits: DEFAULT_LIMITS, clusterSecret: "another-one" });
  const fetch = overRequests((req) =>
    new URL(req.url).host === "d.test" ? stranger.fetch(req) : s.nodes.fetch(req.url, req)
  );
  const p = await proxy({ ...s.nodes, fetch }, s.map);
  // Accepted, its copy would be refused at every retry: a rebalancing that never ends.
  const err = await assertRejects(
    () => p.rebalancer.startAdd("http://d.test", 1),
    RingkvError,
    "Cannot add node http://d.test: it refuses this cluster's secret",
  );
  assertEquals(err.code, "conflict");
  assertEquals(p.state.current().map, s.map);
  assertEquals(await p.admin.getMap("http://a.test"), s.map);
});

Deno.test("adding a live node of another cluster is refused (409): neither cluster changes", async () => {
  const s = await setup(["a", "b", "c", "x"], 10);
  // "x" serves a one-node cluster of its own, under the same secret, with a key of ours.
  const theirs = initialMap([s.nodes.info("x")], 1, VNODES);
  await s.p.admin.putMap("http://x.test", theirs);
  const x = s.nodes.engines.get("x")!;
  const value = new TextEncoder().encode("theirs");
  await x.write([{ op: "put", key: s.keys[1]!, value, contentType: "text/plain" }]);
  const owner = s.nodes.engines.get(s.before.get(s.keys[1]!)![0]!.node)!;
  const ours = (await owner.get(s.keys[1]!))?.version;
  const err = await assertRejects(
    () => s.p.rebalancer.startAdd("http://x.test", 1),
    RingkvError,
    "Cannot add node http://x.test: it is a member of a cluster (its map: epoch 1, nodes x)",
  );
  assertEquals(err.code, "conflict");
  assertEquals(s.p.state.current().map, s.map);
  assertEquals(await s.p.admin.getMap("http://x.test"), theirs);
  assertEquals(await s.p.admin.getMap("http://a.test"), s.map);
  assertEquals((await owner.get(s.keys[1]!))?.version, ours);
  assertEquals(new TextDecoder().decode((await x.get(s.keys[1]!))?.value ?? undefined), "theirs");
});

Deno.test("a drained node joins again; one that still holds keys is refused (409)", async () => {
  const s = await setup(["a", "b", "c", "d"], 300);
  await s.p.rebalancer.startAdd("http://d.test", 1);
  await finish(s.p.rebalancer);
  await s.p.rebalancer.startRemove("d");
  await finish(s.p.rebalancer);
  await s.p.rebalancer.startAdd("http://d.test", 1);
  await finish(s.p.rebalancer);
  assertEquals(s.p.state.current().map.nodes.map((n) => n.id), ["a", "b", "c", "d"]);
  await assertPlaced(s, s.p.state.current().map);
  // A fresh node that was given keys (an import, a stray client) would mix them in.
  const nodes = await startNodes(["e"]);
  const value = new TextEncoder().encode("stray");
  await nodes.engines.get("e")!.write([{ op: "put", key: "k", value, contentType: "text/plain" }]);
  const fetch = overRequests((req) =>
    new URL(req.url).host === "e.test" ? nodes.fetch(req.url, req) : s.nodes.fetch(req.url, req)
  );
  const p = await proxy({ ...s.nodes, fetch }, s.p.state.current().map);
  const err = await assertRejects(
    () => p.rebalancer.startAdd("http://e.test", 1),
    RingkvError,
    "Cannot add node http://e.test: it holds 1 key(s)",
  );
  assertEquals(err.code, "conflict");
});

Deno.test("adding a node drained from another cluster is refused (409): this proxy keeps its map", async () => {
  const s = await setup(["a", "b", "c", "x"], 10);
  // "x" left a cluster of its own (same secret) at a higher epoch than ours: pushed our next
  // map, it answered with its own, which this proxy adopted and then served (found by QA).
  const theirs = { ...initialMap([s.nodes.info("x"), s.nodes.info("y")], 2, VNODES), epoch: 5 };
  const drained = toCleanup(planRemove(theirs, "x", 1, 0, false, true), 0);
  await s.p.admin.putMap("http://x.test", drained);
  const err = await assertRejects(
    () => s.p.rebalancer.startAdd("http://x.test", 1),
    RingkvError,
    "Cannot add node http://x.test: it was drained from another cluster (its map: epoch 7",
  );
  assertEquals(err.code, "conflict");
  assertEquals(s.p.state.current().map, s.map);
  assertEquals(await s.p.admin.getMap("http://a.test"), s.map);
  assertEquals(await s.p.admin.getMap("http://x.test"), drained);
});

Deno.test("a rebalancing's error is gone once a retry has copied every range", async () => {
  const s = await setup(["a", "b", "c", "d"], 300);
  s.nodes.hooks.fail = (req) => req.url.startsWith("http://d.test/internal/ingest");
  await s.p.rebalancer.startAdd("http://d.test", 1);
  await s.p.rebalancer.run();
  const paused = s.p.rebalancer.lastError;
  assert(paused?.includes("http://d.test"), String(paused));
  // d is back: GET /cluster showed the old error through the retried copy and the cleanup.
  s.nodes.hooks.fail = () => false;
  const seen: (string | null)[] = [];
  s.p.state.onChange((map) => {
    if (map.rebalancing?.phase === "cleanup") seen.push(s.p.rebalancer.lastError);
  });
  await s.p.rebalancer.run();
  assertEquals([seen, s.p.rebalancer.lastError, s.p.state.current().map.rebalancing], [
    [null],
    null,
    null,
  ]);
});

Deno.test("adding a node that takes smaller values than the proxy is refused (409) and the map stays", async () => {
  const s = await setup(["a", "b", "c"], 10);
  const limits = { ...DEFAULT_LIMITS, maxValueBytes: 1000 };
  const engine = await openEngine({ disk: createFakeDisk(), id: "d", limits });
  const small = createNodeApp({ engine, limits, clusterSecret: SECRET });
  const fetch = overRequests((req) =>
    new URL(req.url).host === "d.test" ? small.fetch(req) : s.nodes.fetch(req.url, req)
  );
  const admin = new NodeAdmin({ fetch, timeoutMs: 5000, clusterSecret: SECRET });
  const state = await ClusterState.open(s.map, { store: createMemoryMapStore(), admin });
  const rebalancer = new Rebalancer({ state, admin, autoRun: false, limits: DEFAULT_LIMITS });
  // Added, the copy of a value over 1000 bytes would be refused (413) at every retry.
  const err = await assertRejects(
    () => rebalancer.startAdd("http://d.test", 1),
    RingkvError,
    "Cannot add node http://d.test: it takes values up to 1000 bytes and this cluster 1048576",
  );
  assertEquals(err.code, "conflict");
  assertEquals(state.current().map, s.map);
  assertEquals(await admin.getMap("http://a.test"), s.map);
});

Deno.test("cancelling an add through a second proxy as the first proxy switches it to cleanup: 409 saying the add is past the switch, not that another change was made (found by QA)", async () => {
  const s = await setup(["a", "b", "c", "d"], 200);
  const started = await s.p.rebalancer.startAdd("http://d.test", 1);
  const p2 = await proxy(s.nodes, started);
  // The first proxy's cleanup map is chosen, but its push is lost: the nodes still route by
  // the copying map, so the second proxy plans the cancel from it and meets the chosen map.
  // (The step first pushes the copying map again, to the 4 nodes: those calls go through.)
  let puts = 0;
  s.nodes.hooks.fail = (req) =>
    req.method === "PUT" && req.url.endsWith("/internal/cluster") && ++puts > 4;
  assertEquals(await s.p.rebalancer.step(), "copied");
  s.nodes.hooks.fail = () => false;
  assertEquals(p2.state.current().map.rebalancing?.phase, "copying");
  const err = await assertRejects(() => p2.rebalancer.startRemove("d"), RingkvError);
  assertEquals(err.code, "conflict");
  assert(err.message.includes("past the switch"), err.message);
  assert(!err.message.includes("another change"), err.message);
  assertEquals(p2.state.current().map.rebalancing?.phase, "cleanup");
  assertEquals(await finish(s.p.rebalancer), ["cleaned"]);
});

Deno.test("removing a node that does not answer is refused with the forced removal to use, by API and by kv", async () => {
  // QA: `kv remove n4` of a dead node named only DELETE /cluster/nodes/n4?force=true, where
  // the refusal for too few nodes also names `kv remove --force`.
  const s = await setup(["a", "b", "c"], 20);
  s.nodes.hooks.fail = (req) => new URL(req.url).host === "c.test";
  const err = await assertRejects(() => s.p.rebalancer.startRemove("c"), RingkvError);
  assertEquals(err.code, "node_unavailable");
  assert(err.message.includes("DELETE /cluster/nodes/c?force=true"), err.message);
  assert(err.message.includes("kv remove c --force"), err.message);
});
