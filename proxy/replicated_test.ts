import { assert, assertEquals } from "@std/assert";
import { DEFAULT_LIMITS } from "../shared/limits.ts";
import { hashKey } from "../shared/ring.ts";
import { createProxyApp } from "./app.ts";
import { createReplication } from "./replication.ts";
import { nodeInfos, startCluster, TEST_VNODES, type TestCluster } from "./test_cluster.ts";

const infos = nodeInfos(3);
const map = { epoch: 1, replicas: 3, vnodes: TEST_VNODES, nodes: infos, rebalancing: null };

async function start(): Promise<TestCluster> {
  return await startCluster({ nodes: infos, map });
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
    assertEquals((await res.json()).error.code, "node_unavailable");
  } finally {
    await c.close();
  }
});

Deno.test("a node known to be down is not called again until a probe finds it up", async () => {
  const replication = createReplication({
    fetch: (r) => fetchOf(c)(r),
    timeoutMs: 5000,
    clusterSecret: "s3cret",
  });
  const c = await startCluster({ nodes: infos, map, proxy: { replication } });
  try {
    c.down.add("n3");
    for (let i = 0; i < 5; i++) assertEquals((await put(c, `k${i}`, "v")).status, 201);
    assertEquals(replication.detector.isUp("n3"), false);
    c.down.delete("n3");
    const before = c.calls.filter((x) => x.node === "n3").length;
    for (let i = 0; i < 5; i++) assertEquals((await put(c, `j${i}`, "v")).status, 201);
    assertEquals(c.calls.filter((x) => x.node === "n3").length, before);
    await replication.probeOnce(c.topology, Date.now() + 60_000);
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

function fetchOf(c: TestCluster) {
  return (req: Request) => proxyDepsOf(c).fetch(req);
}

function proxyDepsOf(c: TestCluster) {
  return {
    topology: c.topology,
    limits: DEFAULT_LIMITS,
    timeoutMs: 5000,
    clusterSecret: "s3cret",
    fetch: (req: Request): Promise<Response> => {
      const id = new URL(req.url).host.split(".")[0]!;
      if (c.down.has(id)) return Promise.reject(new TypeError("connection refused"));
      c.calls.push({ node: id, method: req.method, path: new URL(req.url).pathname });
      return Promise.resolve(c.nodes.get(id)!.app.fetch(req));
    },
  };
}
