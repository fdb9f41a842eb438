import { assert, assertEquals } from "@std/assert";
import { hashKey, Ring } from "../../shared/ring.ts";
import type { ClusterMap } from "../../shared/wire.ts";
import { ClusterState } from "./map_view.ts";
import { createMemoryMapStore } from "./map_store.ts";
import { initialMap, planAdd, planRemove, toCleanup } from "./map_transitions.ts";
import { gainersOf, pushOrder } from "./switch_order.ts";
import { NodeAdmin } from "../nodes/node_admin.ts";
import { Rebalancer } from "../rebalance/rebalancer.ts";
import { createProxyApp } from "../http/proxy_app.ts";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import {
  nodeInfos,
  startCluster,
  TEST_VNODES,
  topologyOf,
} from "../../tests/doubles/test_cluster.ts";

const infos = nodeInfos(4);
const urls = (ids: string[]) => ids.map((id) => `http://${id}.test`);

Deno.test("gainersOf(): the nodes a map ending a copy gives ranges to; none for other maps", async () => {
  for (const replicas of [1, 3]) {
    const base = initialMap(infos.slice(0, 3), replicas, TEST_VNODES);
    const adding = planAdd(base, infos[3]!, 0, 0);
    assertEquals([...await gainersOf(adding)], [], "copying: nothing is served from new owners");
    assertEquals([...await gainersOf(toCleanup(adding, 0))], ["n4"], `add, ${replicas}`);
    const four = initialMap(infos, replicas, TEST_VNODES);
    const removal = toCleanup(planRemove(four, "n2", 0, 0, false, false), 0);
    const gainers = await gainersOf(removal);
    assert(gainers.size > 0 && !gainers.has("n2"), `remove, ${replicas}: ${[...gainers]}`);
    assertEquals([...await gainersOf(four)], []);
  }
});

Deno.test("pushOrder(): a map ending a copy goes to the nodes gaining ranges last, any other map at once", async () => {
  const adding = planAdd(initialMap(infos.slice(0, 3), 1, TEST_VNODES), infos[3]!, 0, 0);
  const all = urls(["n1", "n2", "n3", "n4"]);
  assertEquals(await pushOrder(adding, all), [all]);
  assertEquals(await pushOrder(toCleanup(adding, 0), all), [urls(["n1", "n2", "n3"]), [
    "http://n4.test",
  ]]);
});

Deno.test("ClusterState.push() of a map ending a copy: the node gaining ranges gets it only once every other node took it", async () => {
  const adding = planAdd(initialMap(infos.slice(0, 3), 1, TEST_VNODES), infos[3]!, 0, 0);
  const c = await startCluster({ nodes: infos, map: adding });
  try {
    const admin = new NodeAdmin({ fetch: c.fetch, timeoutMs: 5000, clusterSecret: "s3cret" });
    const state = await ClusterState.open(adding, {
      store: createMemoryMapStore(),
      admin,
      sleep: () => Promise.resolve(),
    });
    await state.push(adding);
    const cleanup: ClusterMap = toCleanup(adding, 0);
    const gate = Promise.withResolvers<void>();
    const order: string[] = [];
    c.hook = async (req, node) => {
      if (req.method !== "PUT" || new URL(req.url).pathname !== "/internal/cluster") return;
      order.push(node.info.id);
      if (node.info.id === "n2") await gate.promise;
    };
    const pushing = state.push(cleanup);
    while (order.length < 3) await new Promise((r) => setTimeout(r, 1));
    assertEquals(order.sort(), ["n1", "n2", "n3"], "n4 waits for n2");
    gate.resolve();
    assertEquals((await pushing).failed, []);
    assertEquals(order.at(-1), "n4");
  } finally {
    await c.close();
  }
});

Deno.test("at the switch to cleanup, a proxy one map behind never reads the old owner's value after a write the new map acknowledged", async () => {
  const map = initialMap(infos.slice(0, 3), 1, TEST_VNODES);
  const c = await startCluster({ nodes: infos, map, aheadWaitMs: 100 });
  try {
    const admin = new NodeAdmin({ fetch: c.fetch, timeoutMs: 5000, clusterSecret: "s3cret" });
    const state = await ClusterState.open(map, {
      store: createMemoryMapStore(),
      admin,
      sleep: () => Promise.resolve(),
    });
    await state.push(map);
    const rebalancer = new Rebalancer({ state, admin, autoRun: false });
    // p1 drives the add and routes by each map as soon as it is chosen; p2 (c.proxy) polls.
    const p1 = createProxyApp({
      topology: state,
      fetch: c.fetch,
      limits: DEFAULT_LIMITS,
      clusterSecret: "s3cret",
      timeoutMs: 5000,
    });
    const before = await Ring.build(infos.slice(0, 3), TEST_VNODES);
    const after = await Ring.build(infos, TEST_VNODES);
    let key = "", from = "";
    for (let i = 0; key === ""; i++) {
      const p = await hashKey(`k${i}`);
      if (after.ownersOf(p, 1)[0] === "n4") [key, from] = [`k${i}`, before.ownersOf(p, 1)[0]!];
    }
    assertEquals((await p1.request(`/kv/${key}`, { method: "PUT", body: "before" })).status, 201);
    await rebalancer.startAdd("http://n4.test", 1);
    c.topology.topo = await topologyOf(state.current().map); // p2 polled the copying map
    // The push of the cleanup map (epoch 3) to the old owner is slow.
    const gate = Promise.withResolvers<void>();
    c.hook = async (req, node) => {
      const url = new URL(req.url);
      if (node.info.id !== from || req.method !== "PUT" || url.pathname !== "/internal/cluster") {
        return;
      }
      if ((await req.clone().json()).epoch === 3) await gate.promise;
    };
    const stepping = rebalancer.step();
    while (state.current().map.epoch < 3) await new Promise((r) => setTimeout(r, 1));
    const put = await p1.request(`/kv/${key}`, { method: "PUT", body: "acknowledged" });
    const putText = await put.text();
    const got = await c.proxy.request(`/kv/${key}`); // starts after the PUT answered
    const gotText = await got.text();
    if (put.status === 200) assertEquals([got.status, gotText], [200, "acknowledged"]);
    // n4 held the PUT while the old owner lacked epoch 3: not acknowledged.
    assertEquals(put.status, 503, putText);
    assertEquals([got.status, gotText], [200, "before"]);
    gate.resolve();
    assertEquals(await stepping, "copied");
    c.topology.queue(await topologyOf(state.current().map)); // p2's refresh on its 409
    const again = await p1.request(`/kv/${key}`, { method: "PUT", body: "acknowledged" });
    assertEquals(again.status, 200, await again.text());
    const now = await c.proxy.request(`/kv/${key}`);
    assertEquals([now.status, await now.text()], [200, "acknowledged"]);
  } finally {
    await c.close();
  }
});
