import { assert, assertEquals, assertMatch } from "@std/assert";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { hashKey } from "../../shared/ring.ts";
import { formatVersion } from "../../shared/version.ts";
import { createNodeApp } from "../../node/http/node_app.ts";
import { createProxyApp } from "../http/proxy_app.ts";
import { createReplication } from "./wiring.ts";
import { clusterView, type NodeView } from "../http/admin_routes.ts";
import { ClusterState } from "../cluster/map_view.ts";
import type { ObservedHealth } from "./failure_detector.ts";
import { createMemoryMapStore } from "../cluster/map_store.ts";
import { NodeAdmin } from "../nodes/node_admin.ts";
import { Rebalancer } from "../rebalance/rebalancer.ts";
import { gatedDisk } from "../../tests/doubles/engine_test_helpers.ts";
import { until } from "../../tests/helpers/poll.ts";
import { openEngine } from "../../node/engine/open_engine.ts";
import type { NodeFetch } from "../nodes/node_client.ts";
import { overRequests } from "../../tests/doubles/node_fetch.ts";
import {
  nodeInfos,
  startCluster,
  TEST_VNODES,
  type TestCluster,
} from "../../tests/doubles/test_cluster.ts";

const infos = nodeInfos(3);
const map = { epoch: 1, replicas: 3, vnodes: TEST_VNODES, nodes: infos, rebalancing: null };

async function start(): Promise<TestCluster> {
  return await startCluster({ nodes: infos, map });
}

/** The cluster with its replication built here, so a test can reach its hints and records. */
async function startReplicated() {
  const replication = createReplication({
    fetch: (url, init) => fetchOf(c)(url, init),
    timeoutMs: 5000,
    clusterSecret: "s3cret",
  });
  const c = await startCluster({ nodes: infos, map, proxy: { replication } });
  return { c, replication };
}

function put(c: TestCluster, key: string, body: string, headers: Record<string, string> = {}) {
  return c.proxy.request(`/kv/${key}`, { method: "PUT", body, headers });
}

async function versionsOn(c: TestCluster, key: string): Promise<(string | undefined)[]> {
  return await Promise.all(
    [...c.nodes.values()].map(async (n) => (await n.engine.get(key))?.version),
  );
}

Deno.test("with 3 replicas a write lands on a majority and a read returns it", async () => {
  const c = await start();
  try {
    const res = await put(c, "a", "one");
    assertEquals(res.status, 201);
    const etag = res.headers.get("etag")!.slice(1, -1);
    const versions = await versionsOn(c, "a");
    assert(versions.filter((v) => v === etag).length >= 2, `versions ${versions}`);
    const got = await c.proxy.request("/kv/a");
    assertEquals([got.status, await got.text()], [200, "one"]);
  } finally {
    await c.close();
  }
});

Deno.test("with one of 3 replicas down every operation still succeeds", async () => {
  const c = await start();
  try {
    c.down.add("n2");
    assertEquals((await put(c, "k", "v1")).status, 201);
    const etag = (await c.proxy.request("/kv/k")).headers.get("etag")!;
    assertEquals((await put(c, "k", "v2", { "if-match": etag })).status, 200);
    assertEquals((await put(c, "k", "v3", { "if-match": etag })).status, 412);
    assertEquals(await (await c.proxy.request("/kv/k")).text(), "v2");
    assertEquals((await c.proxy.request("/kv/k", { method: "DELETE" })).status, 204);
    assertEquals((await c.proxy.request("/kv/k")).status, 404);
    assertEquals((await put(c, "k", "v4", { "if-none-match": "*" })).status, 201);
  } finally {
    await c.close();
  }
});

Deno.test("with 2 of 3 replicas down a write answers 503 node_unavailable", async () => {
  const c = await start();
  try {
    c.down.add("n1");
    c.down.add("n2");
    const res = await put(c, "k", "v");
    assertEquals(res.status, 503);
    const { error } = await res.json();
    assertEquals(error.code, "node_unavailable");
    // n3 may still be asked when the quorum is out of reach: the message counts the failures.
    assertMatch(error.message, /replicas answered when 2 had failed, and 2 are needed/);
  } finally {
    await c.close();
  }
});

Deno.test("a node known to be down is not called again until a probe finds it up", async () => {
  const { c, replication } = await startReplicated();
  try {
    c.down.add("n3");
    for (let i = 0; i < 5; i++) assertEquals((await put(c, `k${i}`, "v")).status, 201);
    assertEquals(replication.detector.isUp("n3"), false);
    c.down.delete("n3");
    const before = c.calls.filter((x) => x.node === "n3").length;
    for (let i = 0; i < 5; i++) assertEquals((await put(c, `j${i}`, "v")).status, 201);
    assertEquals(c.calls.filter((x) => x.node === "n3").length, before);
    await replication.probeOnce(c.topology, performance.now() + 60_000);
    assert(replication.detector.isUp("n3"));
    // The hints of the writes it missed were replayed.
    assertEquals(replication.hints.count("n3"), 0);
    for (let i = 0; i < 5; i++) {
      assert((await c.nodes.get("n3")!.engine.get(`j${i}`)) !== undefined);
    }
  } finally {
    await c.close();
  }
});

Deno.test("a read that finds replicas disagreeing writes the newest back to a majority", async () => {
  const c = await start();
  try {
    await put(c, "d", "old");
    const h = await hashKey("d");
    const ver = "7fffffffffff-0000-x";
    await c.nodes.get("n1")!.engine.ingest([{ k: "d", v: btoa("new"), ver, h }]);
    const got = await c.proxy.request("/kv/d");
    assertEquals(await got.text(), "new");
    assert((await versionsOn(c, "d")).filter((v) => v === ver).length >= 2);
  } finally {
    await c.close();
  }
});

Deno.test("two proxies racing If-Match on one version: exactly one wins", async () => {
  const c = await start();
  try {
    const etag = (await put(c, "cas", "v0")).headers.get("etag")!;
    const other = createProxyApp({ ...proxyDepsOf(c) });
    const results = await Promise.all(
      Array.from({ length: 6 }, (_, i) =>
        (i % 2 === 0 ? c.proxy : other).request("/kv/cas", {
          method: "PUT",
          body: `w${i}`,
          headers: { "if-match": etag },
        })),
    );
    const statuses = results.map((r) => r.status);
    assertEquals(statuses.filter((s) => s === 200).length, 1, `statuses ${statuses}`);
    assert(statuses.every((s) => s === 200 || s === 412 || s === 503), `${statuses}`);
  } finally {
    await c.close();
  }
});

function fetchOf(c: TestCluster): NodeFetch {
  return (url, init) => proxyDepsOf(c).fetch(url, init);
}

function proxyDepsOf(c: TestCluster) {
  return {
    topology: c.topology,
    limits: DEFAULT_LIMITS,
    timeoutMs: 5000,
    clusterSecret: "s3cret",
    fetch: overRequests((req) => {
      const id = new URL(req.url).host.split(".")[0]!;
      if (c.down.has(id)) return Promise.reject(new TypeError("connection refused"));
      c.calls.push({ node: id, method: req.method, path: new URL(req.url).pathname });
      return c.nodes.get(id)!.app.fetch(req);
    }),
  };
}

Deno.test("a replica whose disk is full turns read-only in the probe and GET /cluster; writes still reach a quorum; it is up again once space is freed", async () => {
  const { c, replication } = await startReplicated();
  const admin = new NodeAdmin({ fetch: fetchOf(c), clusterSecret: "s3cret", timeoutMs: 5000 });
  const state = await ClusterState.open(map, { store: createMemoryMapStore(), admin });
  const view = async () =>
    (await clusterView({ state, admin, rebalancer: new Rebalancer({ state, admin }), replication }))
      .nodes as NodeView[];
  try {
    c.nodes.get("n2")!.disk.setCapacity(0);
    for (let i = 0; i < 5; i++) assertEquals((await put(c, `f${i}`, "v")).status, 201);
    assertEquals(c.nodes.get("n2")!.engine.writeHealth().state, "read-only");
    const accepts = () =>
      c.calls.filter((x) => x.node === "n2" && x.path === "/internal/accept").length;
    const acceptsBefore = accepts();
    assert(replication.hints.count("n2") > 0);
    await replication.probeOnce(c.topology, performance.now() + 60_000);
    // Its hints wait: a read-only node would refuse them.
    assertEquals(accepts(), acceptsBefore);
    const seen = replication.healthOf("n2") as ObservedHealth;
    assertEquals(seen.state, "read-only");
    assert(seen.writesAvoided?.includes("No space left on device"), seen.writesAvoided);
    const n2 = (await view()).find((n) => n.id === "n2")!;
    assertEquals([n2.state, n2.writes?.state], ["read-only", "read-only"]);
    assert(n2.writes?.reason?.includes("No space left on device"), n2.writes?.reason);
    assertEquals((await view()).filter((n) => n.state === "up").length, 2);
    for (let i = 0; i < 5; i++) {
      assertEquals(await (await c.proxy.request(`/kv/f${i}`)).text(), "v");
    }
    c.nodes.get("n2")!.disk.setCapacity(undefined);
    await until(
      "n2 takes writes again",
      () => c.nodes.get("n2")!.engine.writeHealth().state === "writable",
    );
    await replication.probeOnce(c.topology, performance.now() + 120_000);
    assertEquals(replication.healthOf("n2").state, "up");
    assertEquals(replication.hints.count("n2"), 0);
    for (let i = 0; i < 5; i++) assert(await c.nodes.get("n2")!.engine.get(`f${i}`));
    assertEquals((await view()).map((n) => n.state), ["up", "up", "up"]);
  } finally {
    await c.close();
  }
});

Deno.test("after a replica restarts (its promises raised to a floor), quorum reads of keys it missed never wait on another replica that is paused", async () => {
  // A paused node takes calls and never answers (they end at the proxy's timeout).
  const paused = new Set<string>();
  const fetch = overRequests((req) => {
    const id = new URL(req.url).host.split(".")[0]!;
    if (!paused.has(id)) return fetchOf(c)(req.url, req);
    c.calls.push({ node: id, method: req.method, path: new URL(req.url).pathname });
    return new Promise((_, reject) => {
      req.signal.addEventListener("abort", () => reject(req.signal.reason));
    });
  });
  const replication = createReplication({
    fetch,
    timeoutMs: 300,
    clusterSecret: "s3cret",
  });
  const c = await startCluster({ nodes: infos, map, proxy: { replication, timeoutMs: 300 } });
  try {
    c.down.add("n1");
    const keys = Array.from({ length: 10 }, (_, i) => `missed${i}`);
    for (const key of keys) assertEquals((await put(c, key, "v2")).status, 201);
    // n1 comes back as after a restart: every key's promise is the stored watermark.
    const n1 = c.nodes.get("n1")!;
    const floor = formatVersion(Date.now() + 1000, 0, "0");
    const floorStore = { load: () => Promise.resolve(floor), save: () => Promise.resolve() };
    n1.app = createNodeApp({
      engine: n1.engine,
      limits: DEFAULT_LIMITS,
      clusterSecret: "s3cret",
      floorStore,
    });
    c.down.delete("n1");
    paused.add("n3");
    await replication.probeOnce(c.topology, performance.now() + 60_000);
    assertEquals([replication.detector.isUp("n1"), replication.detector.isUp("n3")], [true, false]);
    const before = c.calls.filter((x) => x.node === "n3").length;
    const readsBefore = c.calls.filter((x) => x.path === "/internal/read").length;
    for (const key of keys) {
      const got = await c.proxy.request(`/kv/${key}`);
      assertEquals([got.status, await got.text()], [200, "v2"], key);
    }
    assertEquals(c.calls.filter((x) => x.node === "n3").length, before);
    // One read round per key: a refused write-back goes to a full round at once.
    const reads = c.calls.filter((x) => x.path === "/internal/read").length - readsBefore;
    assertEquals(reads, 2 * keys.length);
    // The reads brought n1 up to date (through a round above its floor).
    for (const key of keys) assertEquals(await (await n1.engine.get(key))?.value?.length, 2);
  } finally {
    await c.close();
  }
});

Deno.test("a compare-and-set after another proxy wrote the key in between sees that write", async () => {
  const c = await start();
  try {
    const first = (await put(c, "k", "v1")).headers.get("etag")!;
    const other = createProxyApp({ ...proxyDepsOf(c) });
    const theirs = await other.request("/kv/k", { method: "PUT", body: "v2" });
    assertEquals(theirs.status, 200);
    // The round finds v2 (the other proxy's), so the condition on v1 fails.
    assertEquals((await put(c, "k", "v3", { "if-match": first })).status, 412);
    const etag = theirs.headers.get("etag")!;
    const mine = await put(c, "k", "v4", { "if-match": etag });
    assertEquals(mine.status, 200);
    assertEquals(await (await other.request("/kv/k")).text(), "v4");
    const again = await other.request("/kv/k", {
      method: "PUT",
      body: "v5",
      headers: { "if-match": mine.headers.get("etag")! },
    });
    assertEquals(again.status, 200);
    assertEquals(await (await c.proxy.request("/kv/k")).text(), "v5");
  } finally {
    await c.close();
  }
});

Deno.test("two proxies incrementing one counter by compare-and-set: no increment lost or doubled", async () => {
  const c = await start();
  try {
    assertEquals((await put(c, "ctr", "0")).status, 201);
    const proxies = [c.proxy, createProxyApp({ ...proxyDepsOf(c) })];
    const won = new Map<string, number>(); // If-Match etag -> successful increments from it
    let ok = 0;
    let unsure = 0;
    const worker = async (p: (typeof proxies)[number]) => {
      for (let done = 0, tries = 0; done < 15 && tries < 300; tries++) {
        const got = await p.request("/kv/ctr");
        const etag = got.headers.get("etag")!;
        const n = Number(await got.text());
        const res = await p.request("/kv/ctr", {
          method: "PUT",
          body: String(n + 1),
          headers: { "if-match": etag },
        });
        await res.body?.cancel();
        if (res.status === 200) {
          won.set(etag, (won.get(etag) ?? 0) + 1);
          ok++;
          done++;
        } else if (res.status === 503) unsure++;
        else assertEquals(res.status, 412);
      }
    };
    await Promise.all([worker(proxies[0]!), worker(proxies[1]!), worker(proxies[0]!)]);
    assert([...won.values()].every((n) => n === 1), "one version won two compare-and-sets");
    const final = Number(await (await proxies[1]!.request("/kv/ctr")).text());
    assert(final >= ok && final <= ok + unsure, `final ${final}, ${ok} ok, ${unsure} unsure`);
    assert(ok >= 30, `${ok} increments`);
  } finally {
    await c.close();
  }
});

Deno.test("once a key's TTL ran out, If-Match on its version is 412 and a PUT creates it (201)", async () => {
  const c = await start();
  try {
    assertEquals((await c.proxy.request("/kv/t?ttl=1", { method: "PUT", body: "v1" })).status, 201);
    const second = await c.proxy.request("/kv/t?ttl=1", { method: "PUT", body: "v2" });
    assertEquals(second.status, 200);
    const etag = second.headers.get("etag")!;
    // Past the expiry on this proxy's clock (a lower bound: a slow machine only waits longer).
    await new Promise((r) => setTimeout(r, 1_100));
    assertEquals((await put(c, "t", "v3", { "if-match": etag })).status, 412, "expired: absent");
    assertEquals((await put(c, "t", "v4")).status, 201, "expired: created anew");
  } finally {
    await c.close();
  }
});

Deno.test("a write whose accept every replica refused (a newer writer got in first) runs again and succeeds, instead of answering 'may have taken effect'", async () => {
  const c = await start();
  try {
    const other = createProxyApp({ ...proxyDepsOf(c), fetch: c.fetch });
    let accepts = 0;
    let otherPut: Promise<Response> | undefined;
    // The first write's three accepts are held until another proxy has written the key:
    // its higher ballot makes every replica refuse them.
    c.hook = async (req) => {
      if (!new URL(req.url).pathname.endsWith("/accept") || accepts++ >= 3) return;
      otherPut ??= Promise.resolve().then(() =>
        other.request("/kv/k", { method: "PUT", body: "from-other" })
      );
      await otherPut;
    };
    const first = await put(c, "k", "from-first");
    assertEquals((await otherPut!).status, 201);
    assertEquals(first.status, 200, await first.text());
    const read = await c.proxy.request("/kv/k");
    assertEquals([read.status, await read.text()], [200, "from-first"]);
  } finally {
    await c.close();
  }
});

Deno.test("a replica whose log fsync stalls shows stalled in the probe and GET /cluster; writes reach a quorum without it and wait no hint on it; it is up again once the disk moves", async () => {
  const { c, replication } = await startReplicated();
  const admin = new NodeAdmin({ fetch: fetchOf(c), clusterSecret: "s3cret", timeoutMs: 5000 });
  const state = await ClusterState.open(map, { store: createMemoryMapStore(), admin });
  const view = async () =>
    (await clusterView({ state, admin, rebalancer: new Rebalancer({ state, admin }), replication }))
      .nodes as NodeView[];
  // n2 over a disk whose log fsyncs the test holds, reporting a stall after 50 ms.
  const { disk, release, hold } = gatedDisk();
  release();
  const old = c.nodes.get("n2")!;
  await old.engine.close();
  const engine = await openEngine({ disk, id: "n2", log: () => {}, stallAfterMs: 50 });
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS, clusterSecret: "s3cret" });
  c.nodes.set("n2", { ...old, engine, disk, app });
  let stuck: Promise<unknown> = Promise.resolve();
  try {
    hold();
    stuck = engine.write([{ op: "put", key: "stuck", value: new Uint8Array(1), contentType: "" }]);
    await until("n2 reports the stall", () => engine.writeHealth().state === "stalled");
    await replication.probeOnce(c.topology, performance.now() + 60_000);
    const seen = replication.healthOf("n2") as ObservedHealth;
    assertEquals(seen.state, "stalled");
    assert(seen.writesAvoided?.startsWith("stalled: "), seen.writesAvoided);
    const n2 = (await view()).find((n) => n.id === "n2")!;
    assertEquals([n2.state, n2.writes?.state], ["stalled", "stalled"]);
    // Writes are gathered from n1 and n3 first: none waits on n2's disk.
    for (let i = 0; i < 5; i++) assertEquals((await put(c, `s${i}`, "v")).status, 201);
    assert(replication.hints.count("n2") > 0, "n2 missed them");
    const accepts = () =>
      c.calls.filter((x) => x.node === "n2" && x.path === "/internal/accept").length;
    const acceptsBefore = accepts();
    await replication.probeOnce(c.topology, performance.now() + 120_000);
    assertEquals(accepts(), acceptsBefore, "hints were replayed onto a stalled node");
    release();
    await stuck;
    await until(
      "n2 is writable once the disk moves",
      () => engine.writeHealth().state === "writable",
    );
    await replication.probeOnce(c.topology, performance.now() + 180_000);
    assertEquals(replication.healthOf("n2").state, "up");
    assertEquals(replication.hints.count("n2"), 0);
    for (let i = 0; i < 5; i++) assert(await engine.get(`s${i}`), `s${i} reached n2`);
    assertEquals((await view()).map((n) => n.state), ["up", "up", "up"]);
  } finally {
    release();
    await stuck.catch(() => {});
    await c.close();
  }
});

Deno.test("a hint replay or an anti-entropy sync of a key ends its one-round-trip writes", async () => {
  const { c, replication } = await startReplicated();
  try {
    const etag = (await put(c, "k", "v1")).headers.get("etag")!.slice(1, -1);
    assert(replication.replicated.remembers("k"));
    replication.hints.add("n2", { k: "k", v: btoa("v1"), ver: etag, h: await hashKey("k") });
    await replication.probeOnce(c.topology, performance.now() + 60_000);
    assertEquals(replication.hints.count("n2"), 0);
    assert(!replication.replicated.remembers("k"), "hint replay");
    assertEquals((await put(c, "j", "v1")).status, 201);
    assert(replication.replicated.remembers("j"));
    // One replica ahead: the sweep installs its entry on the others.
    const ver = "7fffffffffff-0000-x";
    await c.nodes.get("n1")!.engine.ingest([{
      k: "j",
      v: btoa("new"),
      ver,
      h: await hashKey("j"),
    }]);
    const report = await replication.antiEntropy.sweep(c.topology.current());
    assert(report !== null && report.repaired > 0, JSON.stringify(report));
    assert(!replication.replicated.remembers("j"), "anti-entropy");
  } finally {
    await c.close();
  }
});

Deno.test("a node's health is forgotten when it comes back under another URL or leaves the map", async () => {
  const { c, replication } = await startReplicated();
  try {
    c.down.add("n3");
    await replication.probeOnce(c.topology, performance.now() + 60_000);
    const before = replication.healthOf("n3") as ObservedHealth;
    assertEquals(before.state, "down");
    assert(before.lastError?.includes(infos[2]!.url), before.lastError);
    const moved = infos.map((n) => n.id === "n3" ? { ...n, url: "http://n3-new.test:1" } : n);
    const current = c.topology.current();
    const over = (nodes: typeof infos) => ({
      current: () => ({ ...current, map: { ...current.map, nodes } }),
      refreshFrom: () => Promise.resolve(),
    });
    const elsewhere = over(moved);
    // Probed at once at its new address (due again), which this test's fetch cannot reach.
    await replication.probeOnce(elsewhere, performance.now() + 60_000);
    const after = replication.healthOf("n3") as ObservedHealth;
    assert(!after.lastError?.includes(infos[2]!.url), after.lastError);
    await replication.probeOnce(over(infos.slice(0, 2)), Date.now() + 60_000);
    assertEquals(replication.detector.health("n3"), undefined);
  } finally {
    await c.close();
  }
});
