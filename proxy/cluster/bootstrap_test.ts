import { assertEquals, assertMatch, assertRejects } from "@std/assert";
import {
  createPoller,
  describeStart,
  ignoredReplicas,
  recordMovedNodes,
  StartupError,
  startupMap,
} from "./bootstrap.ts";
import { ClusterState } from "./map_view.ts";
import { createFakeMapNodes } from "../../tests/doubles/fake_map_nodes.ts";
import { createMemoryMapStore } from "./map_store.ts";
import { initialMap, planAdd } from "./map_transitions.ts";
import { NodeAdmin } from "../nodes/node_admin.ts";
import { Rebalancer } from "../rebalance/rebalancer.ts";
import type { NodeFetch } from "../nodes/node_client.ts";
import { overRequests } from "../../tests/doubles/node_fetch.ts";
import { stepWall } from "../../tests/doubles/wall_step.ts";
import { startingGate } from "../../shared/starting_gate.ts";

function setup() {
  const fake = createFakeMapNodes(["a", "b", "c"]);
  const admin = new NodeAdmin({ fetch: fake.fetch, timeoutMs: 1000 });
  const urls = fake.nodes.map((n) => n.url);
  return { fake, admin, urls, base: { admin, replicas: 1, vnodes: 16 } };
}

Deno.test("startupMap() gives a new cluster 3 replicas, or as many as it has nodes, unless told", async () => {
  for (
    const [count, replicas, want] of [
      [3, undefined, 3],
      [5, undefined, 3],
      [2, undefined, 2],
      [
        1,
        undefined,
        1,
      ],
      [5, 1, 1],
      [5, 5, 5],
    ] as const
  ) {
    const fake = createFakeMapNodes(["a", "b", "c", "d", "e"].slice(0, count));
    const admin = new NodeAdmin({ fetch: fake.fetch, timeoutMs: 1000 });
    const start = await startupMap({
      admin,
      vnodes: 16,
      ...(replicas === undefined ? {} : { replicas }),
      store: createMemoryMapStore(),
      nodes: fake.nodes.map((n) => n.url),
    });
    assertEquals(start.map.replicas, want, `${count} nodes, --replicas ${replicas}`);
  }
});

Deno.test("startupMap() prefers the proxy's stored map", async () => {
  const { urls, base, fake } = setup();
  const stored = { ...initialMap(fake.nodes, 1, 16), epoch: 9 };
  const start = await startupMap({ ...base, store: createMemoryMapStore(stored), nodes: urls });
  assertEquals([start.source, start.map.epoch], ["stored", 9]);
});

Deno.test("startupMap() with --nodes learns ids from /health and starts at epoch 1", async () => {
  const { urls, base } = setup();
  const start = await startupMap({ ...base, store: createMemoryMapStore(), nodes: urls });
  assertEquals(start.source, "new");
  assertEquals(
    start.map,
    initialMap(
      [
        { id: "a", url: "http://a.test", weight: 1 },
        { id: "b", url: "http://b.test", weight: 1 },
        { id: "c", url: "http://c.test", weight: 1 },
      ],
      1,
      16,
    ),
  );
});

Deno.test("startupMap() with --nodes adopts the highest map the nodes already hold", async () => {
  const { urls, base, fake } = setup();
  fake.maps.set("b.test", { ...initialMap(fake.nodes, 1, 16), epoch: 6 });
  fake.maps.set("c.test", { ...initialMap(fake.nodes, 1, 16), epoch: 4 });
  const start = await startupMap({ ...base, store: createMemoryMapStore(), nodes: urls });
  assertEquals([start.source, start.map.epoch, start.ignored], ["nodes", 6, undefined]);
});

Deno.test("startupMap() with --nodes of two clusters says which nodes the adopted map leaves out", async () => {
  // c serves a cluster of its own; a and b another, at a higher epoch (found by QA: the
  // proxy served a and b's cluster and said nothing about c).
  const { urls, base, fake } = setup();
  const ab = { ...initialMap(fake.nodes.slice(0, 2), 1, 16), epoch: 54 };
  fake.maps.set("a.test", ab);
  fake.maps.set("b.test", ab);
  fake.maps.set("c.test", initialMap(fake.nodes.slice(2), 1, 16));
  const start = await startupMap({ ...base, store: createMemoryMapStore(), nodes: urls });
  assertEquals([start.source, start.map, start.ignored], ["nodes", ab, ["http://c.test (node c)"]]);
  assertMatch(
    describeStart(start, "./data/proxy"),
    /held by the --nodes: epoch 54, .*; --nodes not in it, ignored: http:\/\/c\.test \(node c\)/,
  );
});

/** `fetch` of `fake` behind each node's starting gate, opened after `polls` requests to it. */
function gatedFetch(fake: NodeFetch, polls: number): NodeFetch {
  const seen = new Map<string, number>();
  const gates = new Map<string, ReturnType<typeof startingGate>>();
  return overRequests((req) => {
    const host = new URL(req.url).host;
    if (!gates.has(host)) gates.set(host, startingGate(`node ${host} is loading its data`));
    const count = (seen.get(host) ?? 0) + 1;
    seen.set(host, count);
    if (count > polls) gates.get(host)!.open((r) => fake(r.url, r));
    return gates.get(host)!.handler(req, {});
  });
}

Deno.test("startupMap() waits for nodes still loading their data, then adopts their map", async () => {
  const fake = createFakeMapNodes(["a", "b", "c"]);
  fake.maps.set("b.test", { ...initialMap(fake.nodes, 3, 16), epoch: 7 });
  const admin = new NodeAdmin({ fetch: gatedFetch(fake.fetch, 3), timeoutMs: 1000 });
  const told: string[] = [];
  const urls = fake.nodes.map((n) => n.url);
  const start = await startupMap({
    admin,
    vnodes: 16,
    store: createMemoryMapStore(),
    nodes: urls,
    onWait: (m) => told.push(m),
  });
  // Without the wait, the gated nodes held no map and refused /health: the start failed.
  assertEquals([start.source, start.map.epoch], ["nodes", 7]);
  assertEquals(told.length, 3);
  assertMatch(told[0]!, /waiting for node http:\/\/a\.test: it is still loading its data/);
});

Deno.test("startupMap() waits its whole start wait for loading nodes when the wall clock steps forward meanwhile", async () => {
  const fake = createFakeMapNodes(["a", "b", "c"]);
  fake.maps.set("b.test", { ...initialMap(fake.nodes, 3, 16), epoch: 7 });
  const gated = gatedFetch(fake.fetch, 3);
  let putBack: (() => void) | undefined;
  const fetch: NodeFetch = (url, init) => {
    putBack ??= stepWall(3 * 3_600_000); // NTP steps the clock 3 h forward after the first poll
    return gated(url, init);
  };
  try {
    const admin = new NodeAdmin({ fetch, timeoutMs: 1000 });
    const nodes = fake.nodes.map((n) => n.url);
    const options = {
      admin,
      vnodes: 16,
      store: createMemoryMapStore(),
      nodes,
      startWaitMs: 60_000,
    };
    const start = await startupMap(options);
    assertEquals([start.source, start.map.epoch], ["nodes", 7]);
  } finally {
    putBack?.();
  }
});

Deno.test("startupMap() gives up on nodes that stay loading, saying which", async () => {
  const fake = createFakeMapNodes(["a", "b"]);
  const admin = new NodeAdmin({ fetch: gatedFetch(fake.fetch, Infinity), timeoutMs: 1000 });
  const store = createMemoryMapStore();
  const options = { admin, vnodes: 16, store, startWaitMs: 300 };
  await assertRejects(
    () => startupMap({ ...options, nodes: fake.nodes.map((n) => n.url) }),
    StartupError,
    "http://a.test, http://b.test still loading their data after 0 s",
  );
  await assertRejects(
    () => startupMap({ ...options, nodes: [], join: "http://a.test" }),
    StartupError,
    "http://a.test still loading",
  );
});

Deno.test("startupMap() with --join reads the node's map, and says why it cannot", async () => {
  const { base, fake } = setup();
  const store = createMemoryMapStore();
  await assertRejects(
    () => startupMap({ ...base, store, nodes: [], join: "http://a.test" }),
    StartupError,
    "no cluster map",
  );
  fake.maps.set("a.test", { ...initialMap(fake.nodes, 1, 16), epoch: 3 });
  const start = await startupMap({ ...base, store, nodes: [], join: "http://a.test" });
  assertEquals([start.source, start.map.epoch], ["join", 3]);
  await assertRejects(
    () => startupMap({ ...base, store, nodes: [], join: "http://zz.test" }),
    StartupError,
    "http://zz.test",
  );
  await assertRejects(() => startupMap({ ...base, store, nodes: [] }), StartupError, "--nodes");
});

Deno.test("the poller drives another proxy's rebalancing only once its epoch stops moving", async () => {
  const { fake, admin } = setup();
  const map = planAdd(initialMap(fake.nodes.slice(0, 2), 1, 16), fake.nodes[2]!, 0, 0);
  const store = createMemoryMapStore();
  const state = await ClusterState.open(map, { store, admin, sleep: () => Promise.resolve() });
  let runs = 0;
  const rebalancer = new Rebalancer({ state, admin, autoRun: false });
  rebalancer.run = () => (runs++, Promise.resolve());
  const poller = createPoller({ state, rebalancer, takeoverPolls: 3 });
  for (let i = 0; i < 3; i++) await poller.tick();
  assertEquals(runs, 0);
  await poller.tick();
  assertEquals(runs, 1);
});

Deno.test("startupMap() refuses --nodes none of which is in the stored map, naming the directory and its map", async () => {
  const { base, fake } = setup();
  const stored = { ...initialMap(fake.nodes.slice(0, 2), 1, 16), epoch: 7 };
  const store = createMemoryMapStore(stored);
  const err = await assertRejects(
    () => startupMap({ ...base, store, nodes: ["http://c.test", "http://x.test"], data: "./d/p" }),
    StartupError,
  );
  assertMatch(err.message, /--nodes http:\/\/c\.test,http:\/\/x\.test: \.\/d\/p holds the map/);
  assertMatch(err.message, /epoch 7: a http:\/\/a\.test, b http:\/\/b\.test/);
  assertMatch(err.message, /http:\/\/c\.test \(node c\), http:\/\/x\.test \(does not answer\)/);
  assertMatch(err.message, /another --data directory/);
  assertEquals(err.exitCode, 2);
});

Deno.test("startupMap() refuses a new cluster with fewer nodes than --replicas unless forced", async () => {
  const fake = createFakeMapNodes(["a", "b"]);
  const admin = new NodeAdmin({ fetch: fake.fetch, timeoutMs: 1000 });
  const urls = fake.nodes.map((n) => n.url);
  const store = createMemoryMapStore();
  const options = { admin, vnodes: 16, replicas: 3, store, nodes: urls.slice(0, 1) };
  const err = await assertRejects(() => startupMap(options), StartupError);
  assertMatch(err.message, /keeping 3 replicas of each key on 1 node\(s\): give --nodes of at/);
  assertMatch(err.message, /--replicas 1, or --force/);
  assertEquals(err.exitCode, 2);
  await assertRejects(() => startupMap({ ...options, nodes: urls }), StartupError);
  assertEquals(await store.load(), null);
  const forced = await startupMap({ ...options, force: true });
  assertEquals([forced.source, forced.map.replicas], ["new", 3]);
});

Deno.test("startupMap() keeps the stored map for --nodes of its members (moved ones too) and reports strangers", async () => {
  const { base, fake } = setup();
  const stored = initialMap(
    [{ id: "a", url: "http://old-a.test", weight: 1 }, fake.nodes[1]!],
    1,
    16,
  );
  const store = createMemoryMapStore(stored);
  const moved = await startupMap({ ...base, store, nodes: ["http://a.test"] });
  assertEquals([moved.source, moved.ignored], ["stored", undefined]);
  const none = await startupMap({ ...base, store, nodes: [] });
  assertEquals([none.source, none.ignored], ["stored", undefined], "no --nodes: the stored map");
  const some = await startupMap({ ...base, store, nodes: ["http://b.test", "http://c.test"] });
  assertEquals(some.ignored, ["http://c.test (node c)"]);
  const line = describeStart(some, "./data/proxy");
  assertMatch(line, /cluster map stored in \.\/data\/proxy: epoch 1, 1 replica\(s\), nodes a /);
  assertMatch(line, /ignored: http:\/\/c\.test \(node c\)/);
  assertMatch(
    describeStart({ map: stored, source: "new" }, "x"),
    /cluster map new, of the --nodes/,
  );
  assertEquals(
    ignoredReplicas(some, 5),
    "ringkv proxy: --replicas 5 is ignored: the cluster keeps the 1 replica(s) it started with " +
      "(give another --data and new nodes for a new cluster)",
  );
  assertEquals(ignoredReplicas(some, 1), undefined, "the same count: nothing ignored");
  assertEquals(ignoredReplicas(some, undefined), undefined, "none given");
  assertEquals(ignoredReplicas({ map: stored, source: "new" }, 5), undefined, "a new map's own");
});

/** `fetch` of `fake` where `host` refuses `/internal/cluster` as a node given another secret. */
function wrongSecretAt(fake: NodeFetch, host: string): NodeFetch {
  return overRequests((req) => {
    const url = new URL(req.url);
    if (url.host !== host || url.pathname !== "/internal/cluster") return fake(req.url, req);
    const error = { code: "unauthorized", message: "the cluster secret sent is wrong" };
    return Response.json({ error }, { status: 401 });
  });
}

Deno.test("startupMap() with --nodes refuses a new cluster when a node does not give its map", async () => {
  const fake = createFakeMapNodes(["a", "b", "c"]);
  const admin = new NodeAdmin({ fetch: wrongSecretAt(fake.fetch, "b.test"), timeoutMs: 1000 });
  const options = { admin, vnodes: 16, store: createMemoryMapStore() };
  const urls = fake.nodes.map((n) => n.url);
  // b may hold another cluster's map: a new epoch-1 cluster over it would fight that map.
  await assertRejects(
    () => startupMap({ ...options, nodes: urls }),
    StartupError,
    "Cannot start a new cluster: node http://b.test did not give its cluster map " +
      "(Node http://b.test refused /internal/cluster: 401 the cluster secret sent is wrong)",
  );
  // A map another node holds still wins, as when a node is down.
  fake.maps.set("c.test", { ...initialMap(fake.nodes, 3, 16), epoch: 5 });
  const start = await startupMap({ ...options, nodes: urls });
  assertEquals([start.source, start.map.epoch], ["nodes", 5]);
});

Deno.test("recordMovedNodes() records a node found at another --nodes URL through the nodes' vote, and the poller retries it until enough nodes vote", async () => {
  const { fake, admin } = setup();
  // The map has b at an old URL; b now answers at http://b.test.
  const nodes = fake.nodes.map((n) => n.id === "b" ? { ...n, url: "http://old-b.test" } : n);
  const map = initialMap(nodes, 1, 16);
  for (const host of fake.maps.keys()) fake.maps.set(host, map);
  const state = await ClusterState.open(map, { store: createMemoryMapStore(), admin });
  const logged: Record<string, unknown>[] = [];
  const record = () => recordMovedNodes(state, admin, ["http://b.test"], (o) => logged.push(o));
  fake.down.add("a.test");
  fake.down.add("c.test");
  assertEquals(await record(), false);
  assertEquals(state.current().map.epoch, 1);
  assertMatch(String(logged.at(-1)?.error), /1 of 3 nodes took the prepare/);
  const rebalancer = new Rebalancer({ state, admin, autoRun: false });
  const poller = createPoller({ state, rebalancer, pending: record });
  await poller.tick();
  assertEquals(state.current().map.epoch, 1);
  fake.down.clear();
  await poller.tick();
  const moved = state.current().map;
  assertEquals([moved.epoch, moved.nodes.find((n) => n.id === "b")?.url], [2, "http://b.test"]);
  assertEquals([...fake.maps.values()].map((m) => m?.epoch), [2, 2, 2]);
  assertEquals(await record(), true, "nothing left to record");
});
