import { assert, assertEquals, assertStrictEquals } from "@std/assert";
import type { ClusterMap } from "../../shared/wire.ts";
import { ClusterState } from "./map_view.ts";
import { createMemoryMapStore } from "./map_store.ts";
import { initialMap, planAdd, planRemove, toCleanup } from "./map_transitions.ts";
import { NodeAdmin } from "../nodes/node_admin.ts";
import type { NodeFetch } from "../nodes/node_client.ts";
import { createFakeMapNodes as mapNodes } from "../../tests/doubles/fake_map_nodes.ts";

async function open(map: ClusterMap, fetch: NodeFetch) {
  const store = createMemoryMapStore();
  const admin = new NodeAdmin({ fetch, timeoutMs: 1000 });
  const state = await ClusterState.open(map, { store, admin, sleep: () => Promise.resolve() });
  return { state, store };
}

Deno.test("ClusterState.install() stores, then swaps a new topology; older epochs are ignored", async () => {
  const { fetch, nodes } = mapNodes(["a", "b", "c"]);
  const { state, store } = await open(initialMap(nodes, 1, 16), fetch);
  const before = state.current();
  const adding = planAdd(before.map, { id: "d", url: "http://d.test", weight: 1 }, 0, 0);
  assert(await state.install(adding, "test"));
  assertEquals((await store.load())!.epoch, 2);
  const after = state.current();
  assertEquals([before.map.epoch, before.nextRing], [1, null]);
  assertEquals(after.nextRing!.nodeIds, ["a", "b", "c", "d"]);
  assertEquals(after.ring.nodeIds, ["a", "b", "c"]);
  assertEquals(after.nodeUrl("d"), "http://d.test");
  assertEquals(await state.install(before.map, "test"), false);
  assertStrictEquals(state.current(), after);
});

Deno.test("two ClusterStates over the same nodes converge on the higher epoch", async () => {
  const { fetch, nodes: all, maps } = mapNodes(["a", "b", "c", "d"]);
  const nodes = all.slice(0, 3);
  const one = await open(initialMap(nodes, 1, 16), fetch);
  const two = await open(initialMap(nodes, 1, 16), fetch);
  await one.state.push(one.state.current().map);
  const adding = planAdd(
    one.state.current().map,
    { id: "d", url: "http://d.test", weight: 1 },
    0,
    0,
  );
  await one.state.install(adding, "test");
  assertEquals((await one.state.push(adding)).failed, []);
  assertEquals([...maps.values()].map((m) => m?.epoch), [2, 2, 2, 2]);
  await two.state.poll();
  assertEquals(two.state.current().map, adding);
  assert(two.state.current().nextRing !== null);
});

Deno.test("a push refused with stale_epoch adopts the node's newer map", async () => {
  const { fetch, nodes } = mapNodes(["a", "b"]);
  const ahead = await open({ ...initialMap(nodes, 1, 16), epoch: 7 }, fetch);
  await ahead.state.push(ahead.state.current().map);
  const behind = await open(initialMap(nodes, 1, 16), fetch);
  const report = await behind.state.push(behind.state.current().map);
  assert(report.superseded);
  assertEquals(behind.state.current().map.epoch, 7);
});

Deno.test("refreshFrom() adopts a node's newer map and keeps a newer own one", async () => {
  const { fetch, nodes, maps } = mapNodes(["a"]);
  const { state } = await open(initialMap(nodes, 1, 16), fetch);
  maps.set("a.test", { ...initialMap(nodes, 1, 16), epoch: 4 });
  await state.refreshFrom("http://a.test");
  assertEquals(state.current().map.epoch, 4);
  maps.set("a.test", { ...initialMap(nodes, 1, 16), epoch: 2 });
  await state.refreshFrom("http://a.test");
  assertEquals(state.current().map.epoch, 4);
});

Deno.test("a push retries an unreachable node a bounded number of times and reports it", async () => {
  const { fetch, nodes, down } = mapNodes(["a", "b"]);
  let calls = 0;
  const counting: NodeFetch = (
    url,
    init,
  ) => (url.startsWith("http://b.") && calls++, fetch(url, init));
  const { state } = await open(initialMap(nodes, 1, 16), counting);
  down.add("b.test");
  const report = await state.push(state.current().map);
  assertEquals(report.failed.map((f) => f.url), ["http://b.test"]);
  assertEquals(calls, 3);
  assert(state.nodeErrors.get("http://b.test")!.includes("http://b.test"));
  down.delete("b.test");
  assertEquals((await state.push(state.current().map)).failed, []);
  assertEquals(state.nodeErrors.size, 0);
});

Deno.test("a push asks a node that let its call time out once, where one that refused is asked again", async () => {
  const { fetch, nodes } = mapNodes(["a", "b"]);
  let calls = 0;
  // b never answers: each call ends at the admin's timeout (100 ms here).
  const silent: NodeFetch = (url, init) => {
    if (!url.startsWith("http://b.")) return fetch(url, init);
    calls++;
    return new Promise((_, reject) => {
      init?.signal?.addEventListener("abort", () => reject(init.signal!.reason), { once: true });
    });
  };
  const store = createMemoryMapStore();
  const admin = new NodeAdmin({ fetch: silent, timeoutMs: 100 });
  const state = await ClusterState.open(initialMap(nodes, 1, 16), {
    store,
    admin,
    sleep: () => Promise.resolve(),
  });
  const report = await state.push(state.current().map);
  assertEquals(report.failed.map((f) => f.url), ["http://b.test"]);
  assertEquals(calls, 1, "a whole timeout waited is not waited again: the polls catch b up");
});

Deno.test("a node holding another cluster's newer map is not followed by poll, refresh or push", async () => {
  // Found by QA: n3 restarted on the directory of another cluster's n3 (one node, at another
  // URL, epoch 67); the proxy adopted that map and served the other cluster.
  const { fetch, nodes, maps } = mapNodes(["a", "b", "c", "z"]);
  const ours = initialMap(nodes.slice(0, 3), 1, 16);
  const theirs = { ...initialMap([{ ...nodes[3]!, id: "c" }], 1, 16), epoch: 67 };
  const { state, store } = await open(ours, fetch);
  maps.set("c.test", theirs);
  await state.poll();
  await state.refreshFrom("http://c.test");
  assert(await state.install({ ...ours, epoch: 2 }, "test"));
  const report = await state.push(state.current().map);
  assertEquals(state.current().map.epoch, 2); // our own next map, taken by a and b
  assertEquals(report.superseded, false);
  assertEquals(report.failed.map((f) => f.url), ["http://c.test"]);
  assertEquals((await store.load())!.epoch, 2);
  assert(state.nodeErrors.get("http://c.test")!.includes("another cluster's (epoch 67"));
  assertEquals(maps.get("c.test"), theirs);
});

Deno.test("poll does not write our map over another cluster's older one, and catches ours up", async () => {
  // Found by QA: c restarted on the directory of another cluster's c (at epoch 1); the poll
  // pushed it our map, and the rejoin then made it a voter with that cluster's keys.
  const { fetch, nodes, maps } = mapNodes(["a", "b", "c", "z"]);
  const ours = { ...initialMap(nodes.slice(0, 3), 1, 16), epoch: 5 };
  const theirs = initialMap([{ ...nodes[3]!, id: "c" }], 1, 16);
  const behind = { ...initialMap(nodes.slice(0, 3), 1, 16), epoch: 4 };
  const { state } = await open(ours, fetch);
  maps.set("a.test", behind);
  maps.set("c.test", theirs);
  await state.poll();
  assertEquals([maps.get("a.test"), maps.get("c.test")], [ours, theirs]);
  assert(state.nodeErrors.get("http://c.test")!.includes("another cluster's (epoch 1"));
  // Nor does a push (a membership change made meanwhile): c would then pass for a wiped node.
  const report = await state.push(ours);
  assertEquals([report.failed.map((f) => f.url), maps.get("c.test")], [["http://c.test"], theirs]);
  assertEquals(maps.get("b.test"), ours);
});

Deno.test("ClusterState.propose() installs the map the nodes chose: its own, a later one, or another proxy's (pushed on)", async () => {
  const { fetch, nodes, maps, votes } = mapNodes(["a", "b", "c", "d"]);
  const base = initialMap(nodes.slice(0, 3), 1, 16);
  for (const host of maps.keys()) maps.set(host, base);
  const one = await open(base, fetch);
  const addD = planAdd(base, nodes[3]!, 0, 0);
  assert(await one.state.propose(addD, "test"));
  assertEquals([one.state.current().map, (await one.store.load())?.epoch], [addD, 2]);
  // A proxy still on epoch 1 (epoch 2 not pushed yet) learns it from the votes' refusal.
  await one.state.push(addD);
  const two = await open(base, fetch);
  assertEquals(await two.state.propose(planRemove(base, "c", 0, 0), "test"), false);
  assertEquals(two.state.current().map, addD);
  // A map another proxy got accepted for epoch 3, never pushed: finished, installed, pushed.
  const theirs = toCleanup(addD, 5);
  await votes.get("a.test")!.accept(3, "018c00000000-0000-pother", theirs);
  const mine = toCleanup(addD, 7);
  assertEquals(await two.state.propose(mine, "test"), false);
  assertEquals(two.state.current().map, theirs);
  assertEquals([...maps.values()].map((m) => m?.epoch), [3, 3, 3, 3]);
  // A map that does not follow the current one is not proposed.
  assertEquals(await two.state.propose({ ...theirs, epoch: 9 }, "test"), false);
});

Deno.test("a node holding another map of this proxy's epoch wins, and the proxy says so (a cluster whose majority lost its votes)", async () => {
  const { fetch, nodes, maps } = mapNodes(["a", "b", "c"]);
  const ours = initialMap(nodes, 1, 16);
  const theirs = { ...ours, replicas: 2 };
  for (const host of maps.keys()) maps.set(host, theirs);
  const logged: Record<string, unknown>[] = [];
  const state = await ClusterState.open(ours, {
    store: createMemoryMapStore(),
    admin: new NodeAdmin({ fetch, timeoutMs: 1000 }),
    log: (o) => logged.push(o),
  });
  await state.poll();
  assertEquals(state.current().map, theirs);
  assert(logged.some((o) => o.msg === "two cluster maps of one epoch"), JSON.stringify(logged));
  assert([...state.nodeErrors.values()].some((m) => m.includes("another cluster map of epoch 1")));
  // A push of our old map is refused by every node (counted as failed), and the poll settles.
  const again = await open(ours, fetch);
  const report = await again.state.push(ours);
  assertEquals([report.superseded, report.failed.length], [false, 3]);
  assert(report.failed[0]!.message.includes("another cluster map of epoch 1"));
  await again.state.poll();
  assertEquals(again.state.current().map, theirs);
});

Deno.test("of two maps of one epoch on the nodes, every poll follows the copy most nodes hold, whatever their order", async () => {
  const { fetch, nodes, maps } = mapNodes(["a", "b", "c"]);
  const one = initialMap(nodes, 1, 16);
  const two = { ...one, replicas: 2 };
  for (const order of [[one, two, two], [two, one, two], [two, two, one]]) {
    [...maps.keys()].forEach((host, i) => maps.set(host, order[i]!));
    const { state } = await open(one, fetch);
    await state.poll();
    await state.poll();
    assertEquals(state.current().map, two);
  }
});
