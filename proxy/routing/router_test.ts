import { assert, assertEquals, assertMatch } from "@std/assert";
import type { ClusterMap } from "../../shared/wire.ts";
import {
  nodeInfos,
  ownerOf,
  stableMap,
  startCluster,
  type TestCluster,
  topologyOf,
} from "../../tests/doubles/test_cluster.ts";
import type { Topology } from "../cluster/topology.ts";
import type { Router } from "./router.ts";

async function errorOf(res: Response): Promise<{ code: string; message: string; node?: string }> {
  return (await res.json()).error;
}

/** The first of `k0, k1, ...` for which `pick` holds. */
async function keyWhere(pick: (key: string) => Promise<boolean>): Promise<string> {
  for (let i = 0; i < 10_000; i++) if (await pick(`k${i}`)) return `k${i}`;
  throw new Error("no key found in 10,000 tries");
}

function put(c: TestCluster, key: string, body: string, headers: HeadersInit = {}) {
  return c.proxy.request(`/kv/${key}`, { method: "PUT", body, headers });
}

Deno.test("with 1 replica, a write whose node call failed says it may have taken effect; a read does not (found by QA)", async () => {
  const c = await startCluster();
  try {
    const topo = c.topology.current();
    const onN2 = await keyWhere(async (k) => (await ownerOf(topo, k)) === "n2");
    c.down.add("n2");
    for (const method of ["GET", "PUT", "DELETE"]) {
      const res = await c.proxy.request(`/kv/${onN2}`, {
        method,
        body: method === "PUT" ? "x" : undefined,
      });
      const err = await errorOf(res);
      assertEquals([res.status, err.code, err.node], [503, "node_unavailable", "n2"], method);
      const unknown = /may have taken effect; read the key to know/.test(err.message);
      assertEquals(unknown, method !== "GET", `${method}: ${err.message}`);
    }
    const batch = await c.proxy.request("/kv", {
      method: "POST",
      body: JSON.stringify({ set: { [onN2]: "v" } }),
    });
    assertEquals(batch.status, 207);
    assertMatch(await batch.text(), /The put may have taken effect/);
  } finally {
    await c.close();
  }
});

Deno.test("a key whose node is down answers 503 node_unavailable naming the node, never 404", async () => {
  const c = await startCluster();
  try {
    const topo = c.topology.current();
    const onN2 = await keyWhere(async (k) => (await ownerOf(topo, k)) === "n2");
    const onN1 = await keyWhere(async (k) => (await ownerOf(topo, k)) === "n1");
    assertEquals((await put(c, onN2, "v")).status, 201);
    c.down.add("n2");
    for (const method of ["GET", "HEAD", "PUT", "DELETE"]) {
      const res = await c.proxy.request(`/kv/${onN2}`, {
        method,
        body: method === "PUT" ? "x" : undefined,
      });
      assertEquals(res.status, 503, method);
      if (method === "HEAD") continue;
      const err = await errorOf(res);
      assertEquals([err.code, err.node], ["node_unavailable", "n2"]);
      assertMatch(err.message, /^Cannot reach node n2 at http:\/\/n2\.test: /);
    }
    assertEquals((await put(c, onN1, "fine")).status, 201, "other nodes keep serving");
    const list = await c.proxy.request("/kv");
    assertEquals([list.status, (await errorOf(list)).code], [503, "node_unavailable"]);
  } finally {
    await c.close();
  }
});

Deno.test("a node that does not answer in time gets 503 node_unavailable", async () => {
  const c = await startCluster({ proxy: { timeoutMs: 50 } });
  try {
    c.hook = (req) =>
      new Promise((_, reject) =>
        req.signal.addEventListener("abort", () => reject(req.signal.reason))
      );
    const res = await c.proxy.request("/kv/slow");
    const err = await errorOf(res);
    assertEquals([res.status, err.code], [503, "node_unavailable"]);
    assertMatch(
      err.message,
      /^Cannot reach node n\d at http:\/\/n\d\.test: no answer before the timeout/,
    );
  } finally {
    await c.close();
  }
});

/** A map in the middle of adding n4: n1..n3 serve, n4 receives copies. */
function addingN4(epoch = 2): ClusterMap {
  const now = nodeInfos(3);
  return {
    ...stableMap(now, epoch),
    rebalancing: {
      kind: "add",
      nodeId: "n4",
      phase: "copying",
      next: nodeInfos(4),
      startedAt: 0,
      movedKeys: 0,
      totalKeys: 0,
    },
  };
}

Deno.test("while a range moves, writes land on the new owner too, with the owner's version", async () => {
  const map = addingN4();
  const c = await startCluster({ nodes: nodeInfos(4), map });
  try {
    const topo = c.topology.current();
    const moving = await keyWhere(async (k) => (await ownerOf(topo, k, true)) === "n4");
    const staying = await keyWhere(async (k) => (await ownerOf(topo, k, true)) !== "n4");
    const n4 = c.nodes.get("n4")!.engine;

    const res = await put(c, moving, "hello", { "content-type": "text/plain" });
    assertEquals(res.status, 201);
    const copy = await n4.get(moving);
    assertEquals(`"${copy?.version}"`, res.headers.get("etag"));
    assertEquals(new TextDecoder().decode(copy!.value!), "hello");
    assertEquals(copy!.contentType, "text/plain");
    const owner = c.nodes.get(await ownerOf(topo, moving))!.engine;
    assertEquals((await owner.get(moving))?.version, copy?.version, "the old owner decided");

    const del = await c.proxy.request(`/kv/${moving}`, { method: "DELETE" });
    assertEquals(del.status, 204);
    const tomb = await n4.get(moving);
    assertEquals([tomb?.value, `"${tomb?.version}"`], [null, del.headers.get("etag")]);

    assertEquals((await put(c, staying, "v")).status, 201);
    assertEquals(await n4.get(staying), undefined, "keys that do not move are not copied");
    assert(c.calls.every((call) => call.node !== "n4" || call.path === "/internal/ingest"));
  } finally {
    await c.close();
  }
});

Deno.test("a write whose copy to the new owner fails answers 503 and says it may have happened", async () => {
  const c = await startCluster({ nodes: nodeInfos(4), map: addingN4() });
  try {
    const topo = c.topology.current();
    const moving = await keyWhere(async (k) => (await ownerOf(topo, k, true)) === "n4");
    c.down.add("n4");
    const res = await put(c, moving, "v");
    const err = await errorOf(res);
    assertEquals([res.status, err.code, err.node], [503, "node_unavailable", "n4"]);
    assertMatch(err.message, /may have taken effect/);
    const batch = await c.proxy.request("/kv", {
      method: "POST",
      body: JSON.stringify({ set: { [moving]: 1 } }),
    });
    assertEquals(batch.status, 207);
    assertEquals((await batch.json()).results[moving].status, 503);
  } finally {
    await c.close();
  }
});

/** Stores `map` on every node, as the cluster management would. */
async function pushMap(c: TestCluster, map: ClusterMap): Promise<void> {
  for (const node of c.nodes.values()) {
    const res = await node.app.request("/internal/cluster", {
      method: "PUT",
      body: JSON.stringify(map),
      headers: { authorization: "Bearer s3cret", "content-type": "application/json" },
    });
    assertEquals(res.status, 200, await res.text());
  }
}

Deno.test("a stale_epoch answer makes the proxy load the newer map and retry", async () => {
  const c = await startCluster();
  try {
    const newer: Topology = await topologyOf(stableMap(nodeInfos(3), 5));
    await pushMap(c, newer.map);
    c.topology.queue(newer);
    const res = await put(c, "key", "v");
    assertEquals(res.status, 201);
    assertEquals(c.topology.refreshes.length, 1);
    assertMatch(c.topology.refreshes[0]!, /^http:\/\/n\d\.test$/);
    assertEquals(c.topology.current().map.epoch, 5);
    assertEquals(await (await c.proxy.request("/kv/key")).text(), "v");
    assertEquals(c.topology.refreshes.length, 1, "no more refreshes once the epoch is right");
  } finally {
    await c.close();
  }
});

Deno.test("with 3 replicas a stale_epoch answer to a single-key write or read loads the newer map and runs it again", async () => {
  const replicated = (epoch: number): ClusterMap => ({
    ...stableMap(nodeInfos(3), epoch),
    replicas: 3,
  });
  const c = await startCluster({ map: replicated(1) });
  try {
    const newer = await topologyOf(replicated(5));
    await pushMap(c, newer.map);
    c.topology.queue(newer);
    const res = await put(c, "key", "v");
    assertEquals(res.status, 201);
    assertEquals(c.topology.refreshes.length, 1);
    assertEquals(c.topology.current().map.epoch, 5);
    await pushMap(c, replicated(6));
    c.topology.queue(await topologyOf(replicated(6)));
    const got = await c.proxy.request("/kv/key");
    assertEquals([got.status, await got.text()], [200, "v"]);
    assertEquals(got.headers.get("etag"), res.headers.get("etag"));
    assertEquals(c.topology.refreshes.length, 2);
    assertEquals(c.topology.current().map.epoch, 6);
  } finally {
    await c.close();
  }
});

Deno.test("with 3 replicas a map that keeps changing under a single-key write answers 503 unavailable", async () => {
  const replicated = (epoch: number): ClusterMap => ({
    ...stableMap(nodeInfos(3), epoch),
    replicas: 3,
  });
  const c = await startCluster({ map: replicated(1) });
  try {
    await pushMap(c, replicated(9)); // the proxy's refreshes never bring epoch 9
    const res = await put(c, "key", "v");
    assertEquals(res.status, 503);
    assertMatch((await res.json()).error.message, /cluster map changed/);
    assertEquals(c.topology.refreshes.length, 2, "3 attempts, a reload between each");
  } finally {
    await c.close();
  }
});

Deno.test("a write whose copy is refused for a stale epoch is redone under the newer map", async () => {
  const c = await startCluster({ nodes: nodeInfos(4), map: addingN4(2) });
  try {
    const topo = c.topology.current();
    const keys: string[] = [];
    for (let i = 0; keys.length < 2 && i < 10_000; i++) {
      if ((await ownerOf(topo, `k${i}`, true)) === "n4") keys.push(`k${i}`);
    }
    const [plain, conditional] = keys as [string, string];
    const switched = stableMap(nodeInfos(4), 3);
    await c.nodes.get("n4")!.app.request("/internal/cluster", {
      method: "PUT",
      body: JSON.stringify(switched),
      headers: { authorization: "Bearer s3cret" },
    });
    c.topology.queue(await topologyOf(switched));
    const res = await put(c, plain, "v");
    assertEquals(res.status, 201);
    assertEquals(c.topology.refreshes, ["http://n4.test"]);
    const onN4 = await c.nodes.get("n4")!.engine.get(plain);
    assertEquals(
      `"${onN4?.version}"`,
      res.headers.get("etag"),
      "the new owner has the answered version",
    );

    c.topology.topo = await topologyOf(addingN4(2));
    c.topology.queue(await topologyOf(switched));
    const cas = await put(c, conditional, "v", { "if-none-match": "*" });
    const err = await errorOf(cas);
    assertEquals([cas.status, err.code], [503, "node_unavailable"]);
    assertMatch(err.message, /may have taken effect/);
  } finally {
    await c.close();
  }
});

Deno.test("a proxy that cannot catch up with the epoch gives up with 503 after a few tries", async () => {
  const c = await startCluster();
  try {
    await pushMap(c, stableMap(nodeInfos(3), 9));
    const res = await put(c, "key", "v");
    const err = await errorOf(res);
    assertEquals([res.status, err.code], [503, "unavailable"]);
    assertEquals(c.topology.refreshes.length, 2, "3 tries, a refresh between each");
    const list = await c.proxy.request("/kv");
    assertEquals([list.status, (await errorOf(list)).code], [503, "unavailable"]);
  } finally {
    await c.close();
  }
});

for (const replicas of [1, 3]) {
  Deno.test(`a node call failing for the TTL reaper's deletes is logged at debug, for other requests as a warning (${replicas} replica(s))`, async () => {
    const logged: Record<string, unknown>[] = [];
    let router: Router | undefined;
    const infos = nodeInfos(3);
    const c = await startCluster({
      nodes: infos,
      map: { ...stableMap(infos), replicas },
      proxy: { log: (o) => logged.push(o), onRouter: (r) => router = r },
    });
    try {
      const topo = c.topology.current();
      const onN2 = await keyWhere(async (k) => (await ownerOf(topo, k)) === "n2");
      c.down.add("n2");
      c.down.add("n3");
      const expire = { op: "delete" as const, key: onN2, ifMatch: "v", expire: true as const };
      await router!.run([expire]);
      await router!.run([{ op: "delete", key: onN2 }]);
      const failed = logged.filter((o) => o.msg === "node call failed");
      assertEquals(failed.map((o) => o.level), ["debug", undefined]);
    } finally {
      await c.close();
    }
  });
}
