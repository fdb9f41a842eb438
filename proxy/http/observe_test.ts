import { assert, assertEquals, assertMatch } from "@std/assert";
import { ProxyMetrics } from "./proxy_metrics.ts";
import { startCluster } from "../../tests/doubles/test_cluster.ts";

Deno.test("the proxy passes each request's id to the nodes and answers with it", async () => {
  const c = await startCluster();
  const seen: string[] = [];
  c.hook = (req) => void seen.push(req.headers.get("x-request-id") ?? "(none)");
  try {
    const put = await c.proxy.request("/kv/a", {
      method: "PUT",
      body: "1",
      headers: { "x-request-id": "req-put-1" },
    });
    assertEquals([put.status, put.headers.get("x-request-id")], [201, "req-put-1"]);
    assertEquals(seen, ["req-put-1"]);

    seen.length = 0;
    const bad = await c.proxy.request("/kv/a", { headers: { "x-request-id": "has space" } });
    const id = bad.headers.get("x-request-id")!;
    assertMatch(id, /^[0-9a-f-]{36}$/);
    assertEquals(seen, [id], "an insane client id is replaced, and the new one is passed on");

    seen.length = 0;
    const batch = await c.proxy.request("/kv", {
      method: "POST",
      body: JSON.stringify({ set: { x: "1", y: "2", z: "3" } }),
      headers: { "x-request-id": "req-batch" },
    });
    assertEquals(batch.status, 200);
    assert(seen.length > 0 && seen.every((s) => s === "req-batch"), seen.join());

    seen.length = 0;
    const list = await c.proxy.request("/kv?prefix=", { headers: { "x-request-id": "req-ls" } });
    assertEquals(list.status, 200);
    assertEquals(new Set(seen), new Set(["req-ls"]));
  } finally {
    await c.close();
  }
});

Deno.test("the proxy counts requests by route pattern and internal calls by outcome", async () => {
  const metrics = new ProxyMetrics();
  const c = await startCluster({ proxy: { metrics } });
  try {
    await (await c.proxy.request("/kv/users/42", { method: "PUT", body: "v" })).body?.cancel();
    c.down.add("n1");
    c.down.add("n2");
    c.down.add("n3");
    await (await c.proxy.request("/kv/users/42")).body?.cancel();
    const put = { method: "PUT", route: "/kv/{key}", status: "201" };
    assertEquals(metrics.requests.get(put), 1);
    assertEquals(metrics.requests.get({ method: "GET", route: "/kv/{key}", status: "503" }), 1);
    const text = metrics.requests.lines().join("\n") + metrics.nodeCalls.lines().join("\n");
    assert(!text.includes("users/42"), "keys never become labels");
    const errors = metrics.nodeCallErrors.lines().filter((l) => l.includes('kind="unreachable"'));
    assertEquals(errors.length, 1);
    // Labelled by the member's id, as the per-node gauges are.
    assert(/node="n[123]"/.test(errors[0]!), errors[0]);
    assert(!metrics.nodeCalls.lines().some((l) => l.includes('node="other"')));
  } finally {
    await c.close();
  }
});

Deno.test("every single-key answer carries its request's id once: built with it or marked after", async () => {
  const c = await startCluster();
  try {
    const send = async (path: string, init: RequestInit = {}) => {
      const headers = { "x-request-id": `id-${init.method ?? "GET"}`, ...init.headers };
      const res = await c.proxy.request(path, { ...init, headers });
      await res.body?.cancel();
      return [res.status, res.headers.get("x-request-id")];
    };
    assertEquals(await send("/kv/a", { method: "PUT", body: "1" }), [201, "id-PUT"]);
    const etag = (await c.proxy.request("/kv/a")).headers.get("etag")!;
    assertEquals(await send("/kv/a"), [200, "id-GET"]);
    assertEquals(await send("/kv/a?x=1"), [200, "id-GET"]);
    assertEquals(await send("/kv/a", { method: "HEAD" }), [200, "id-HEAD"]);
    assertEquals(await send("/kv/a", { headers: { "if-none-match": etag } }), [304, "id-GET"]);
    assertEquals(await send("/kv/a", { method: "PUT", body: "2" }), [200, "id-PUT"]);
    assertEquals(await send("/kv/a", { method: "DELETE" }), [204, "id-DELETE"]);
    assertEquals(await send("/kv/a"), [404, "id-GET"]);
    assertEquals(await send("/kv/a", { method: "DELETE" }), [404, "id-DELETE"]);
  } finally {
    await c.close();
  }
});
