import { assert, assertEquals, assertMatch } from "@std/assert";
import type { ClusterMap } from "../../shared/wire.ts";
import { formatVersion } from "../../shared/version.ts";
import { ClusterState, type ClusterStateDeps } from "./map_view.ts";
import { createMemoryMapStore } from "./map_store.ts";
import { initialMap, planAdd } from "./map_transitions.ts";
import { UnpushedWatch } from "./unpushed_map.ts";
import { NodeAdmin } from "../nodes/node_admin.ts";
import { Rebalancer } from "../rebalance/rebalancer.ts";
import { createAdminRoutes } from "../http/admin_routes.ts";
import type { Hono } from "hono";
import { createFakeMapNodes } from "../../tests/doubles/fake_map_nodes.ts";

const NOW = 1_700_000_000_000;
const TOKEN = "admin-s3cret";
const AUTH = { authorization: `Bearer ${TOKEN}` };

/**
 * Nodes a, b, c on epoch 1 (d and e not members yet), and the add of d that a proxy got
 * accepted for epoch 2 by the votes of `voters` under a ballot made at `madeAt`, then died
 * before pushing it: no node holds epoch 2.
 */
async function zombieAdd(voters: string[], madeAt = NOW - 60_000) {
  const fake = createFakeMapNodes(["a", "b", "c", "d", "e"]);
  const base = initialMap(fake.nodes.slice(0, 3), 1, 16);
  for (const host of ["a.test", "b.test", "c.test"]) fake.maps.set(host, base);
  const addD = planAdd(base, fake.nodes[3]!, madeAt, 0);
  const ballot = formatVersion(madeAt, 0, "pgone");
  for (const id of voters) {
    await fake.votes.get(`${id}.test`)!.prepare(2, ballot);
    await fake.votes.get(`${id}.test`)!.accept(2, ballot, addD);
  }
  return { fake, base, addD };
}

/** A fresh proxy over the fake nodes, from its stored map `base`, with a rebalancer whose runs are counted. */
async function freshProxy(
  fake: ReturnType<typeof createFakeMapNodes>,
  base: ClusterMap,
  deps: Partial<ClusterStateDeps> = {},
) {
  const admin = new NodeAdmin({ fetch: fake.fetch, timeoutMs: 200 });
  const store = createMemoryMapStore(base);
  // One fake clock for both: the tests move it by hand.
  const now = deps.now ?? (() => NOW);
  const state = await ClusterState.open(base, {
    store,
    admin,
    sleep: () => Promise.resolve(),
    now,
    monotonic: now,
    ...deps,
  });
  const rebalancer = new Rebalancer({ state, admin });
  const runs = { count: 0 };
  rebalancer.run = () => (runs.count++, Promise.resolve());
  const app = createAdminRoutes({
    state,
    rebalancer,
    admin,
    adminToken: TOKEN,
    bodyTimeoutMs: 10_000,
  });
  return { state, store, app, runs };
}

const epochs = (fake: ReturnType<typeof createFakeMapNodes>) =>
  [...fake.maps.values()].map((m) => m?.epoch ?? null);

/** The 409 message of adding node e through `app`'s admin API. */
async function refusedAdd(app: { request: Hono["request"] }): Promise<string> {
  const res = await app.request("/cluster/nodes", {
    method: "POST",
    headers: AUTH,
    body: JSON.stringify({ url: "http://e.test" }),
  });
  assertEquals(res.status, 409);
  return (await res.json()).error.message;
}

Deno.test("a map accepted by a majority for the next epoch that no node holds (its proxy died right after): a fresh proxy's first poll installs and pushes it, GET /cluster shows its rebalancing, and the rebalancer starts", async () => {
  const { fake, base, addD } = await zombieAdd(["a", "b"]);
  assertEquals(epochs(fake), [1, 1, 1, null, null]);
  const { state, store, app, runs } = await freshProxy(fake, base);
  await state.poll();
  assertEquals(state.current().map, addD);
  assertEquals((await store.load())?.epoch, 2);
  assertEquals(epochs(fake), [2, 2, 2, 2, null]);
  assertEquals(runs.count, 1, "the rebalancer starts at once");
  const view = await (await app.request("/cluster", { headers: AUTH })).json();
  assertEquals([view.epoch, view.rebalancing.kind, view.rebalancing.nodeId], [2, "add", "d"]);
  assertEquals(view.rebalancing.phase, "copying");
  // The next change is refused, saying which change this proxy found and finished.
  const message = await refusedAdd(app);
  assertMatch(message, /node d is being added/);
  assertMatch(message, /finished an earlier change chosen by another proxy, .*epoch 2, node d/);
  assertMatch(message, /kv remove d/);
});

Deno.test("a map accepted by one member only is finished too: the finishing round waits for every member's answer", async () => {
  const { fake, base, addD } = await zombieAdd(["c"]);
  const { state } = await freshProxy(fake, base);
  await state.poll();
  assertEquals(state.current().map, addD);
  assertEquals(epochs(fake), [2, 2, 2, 2, null]);
});

Deno.test("a map accepted moments ago is left to its proposer (nothing promised) until the grace has passed since its ballot or since first seen", async () => {
  let now = NOW;
  const { fake, base, addD } = await zombieAdd(["a", "b"], NOW - 100);
  const promised = async () =>
    await Promise.all(["a", "b", "c"].map(async (id) => {
      return (await fake.votes.get(`${id}.test`)!.peek())?.promised ?? "";
    }));
  const before = await promised();
  const { state } = await freshProxy(fake, base, { now: () => now, unpushedGraceMs: 1000 });
  await state.poll();
  assertEquals([state.current().map.epoch, await promised()], [1, before]);
  now += 800;
  await state.poll();
  assertEquals([state.current().map.epoch, await promised()], [1, before]);
  now += 100; // 1000 ms since the ballot
  await state.poll();
  assertEquals(state.current().map, addD);

  // A ballot from a clock far ahead: the grace counts from when this proxy first saw it.
  const ahead = await zombieAdd(["a", "b"], NOW + 3_600_000);
  now = NOW;
  const second = await freshProxy(ahead.fake, ahead.base, { now: () => now });
  await second.state.poll();
  assertEquals(second.state.current().map.epoch, 1);
  now += 1000;
  await second.state.poll();
  assertEquals(second.state.current().map, ahead.addD);
});

Deno.test("a change that finishes another proxy's unpushed map instead of its own: the rebalancer starts at once, and the 409 names the change it finished", async () => {
  const { fake, base } = await zombieAdd(["a", "b"]);
  // The poll leaves the map alone here, so that the add below is the proposal that finds it.
  const { state, app, runs } = await freshProxy(fake, base, { unpushedGraceMs: Infinity });
  await state.poll();
  assertEquals(state.current().map.epoch, 1);
  const message = await refusedAdd(app);
  assertMatch(
    message,
    /finished an earlier change chosen by another proxy, .*epoch 2, node d being added/,
  );
  assertEquals(
    runs.count,
    1,
    "the rebalancer starts at once, not after the poller's takeover wait",
  );
  assertEquals(epochs(fake), [2, 2, 2, 2, null]);
  assert(state.lastFinished !== null);
});

Deno.test("at startup a map accepted moments ago is waited for, at most the grace, then finished, so that the proxy serves with it shown", async () => {
  let now = NOW;
  const waits: number[] = [];
  const sleep = (ms: number) => (waits.push(ms), now += ms, Promise.resolve());
  const { fake, base, addD } = await zombieAdd(["a", "b"], NOW - 300);
  const { state } = await freshProxy(fake, base, { now: () => now, sleep });
  await state.poll();
  assertEquals(state.current().map.epoch, 1);
  await state.awaitUnpushed();
  assertEquals([state.current().map, waits], [addD, [700]]);
  assertEquals(epochs(fake), [2, 2, 2, 2, null]);
  // Nothing accepted: no wait.
  await state.awaitUnpushed();
  assertEquals(waits, [700]);
});

Deno.test("a vote for another cluster's map, or one answered by another node at a member's URL, is not finished", async () => {
  const { fake, base } = await zombieAdd([]);
  // a and b accepted, for epoch 2, a map of nodes that are not this cluster's.
  const theirs = { ...initialMap(fake.nodes.slice(3), 1, 16), epoch: 2 };
  const ballot = formatVersion(NOW - 60_000, 0, "pother");
  for (const host of ["a.test", "b.test"]) {
    await fake.votes.get(host)!.prepare(2, ballot);
    await fake.votes.get(host)!.accept(2, ballot, theirs);
  }
  const foreign = await freshProxy(fake, base);
  await foreign.state.poll();
  assertEquals(foreign.state.current().map.epoch, 1);
  // Our add accepted, but the vote answered as if by node z: not the member at that URL.
  const ours = await zombieAdd(["a", "b"]);
  const fetch: typeof ours.fake.fetch = async (url, init) => {
    const res = await ours.fake.fetch(url, init);
    if (!String(url).endsWith("/internal/cluster/vote")) return res;
    return Response.json({ ...(await res.json()), id: "z" });
  };
  const impostor = await freshProxy({ ...ours.fake, fetch }, ours.base);
  await impostor.state.poll();
  assertEquals(impostor.state.current().map.epoch, 1);
});

Deno.test("UnpushedWatch: a wall clock stepped back after a map was first seen delays it at most the grace", () => {
  let wall = NOW;
  let mono = 0;
  const watch = new UnpushedWatch(1000, () => wall, () => mono);
  const ballot = formatVersion(NOW - 100, 0, "pother");
  assertEquals(watch.waitFor(ballot), 900);
  wall -= 3_600_000;
  assertEquals(watch.waitFor(ballot), 1000);
  mono += 1000;
  assertEquals(watch.due(ballot), true);
});
