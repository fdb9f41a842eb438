import { assert, assertEquals, assertMatch } from "@std/assert";
import { ADMIN, ProcessCluster, SECRET } from "./helpers/process_cluster.ts";
import { type Family, parsePrometheus, sampleValue } from "./helpers/prom_parse.ts";

async function scrape(url: string, headers: HeadersInit): Promise<Map<string, Family>> {
  const res = await fetch(`${url}/metrics`, { headers, signal: AbortSignal.timeout(10_000) });
  const text = await res.text();
  assertEquals(res.status, 200, text);
  assertMatch(res.headers.get("content-type")!, /^text\/plain; version=0\.0\.4/);
  assert(!text.includes("secret-key-name"), "a key never becomes a label");
  return parsePrometheus(text);
}

function sum(families: Map<string, Family>, name: string): number {
  return [...families.values()].flatMap((f) => f.samples).filter((s) => s.name === name)
    .reduce((a, s) => a + s.value, 0);
}

Deno.test("proxy and node /metrics parse as Prometheus text and their counters move after requests", async () => {
  const cluster = await ProcessCluster.create();
  try {
    const proxy = await cluster.startAll(3, 1); // one node call per request
    const unauth = await fetch(`${proxy.url}/metrics`, { signal: AbortSignal.timeout(10_000) });
    assertEquals([unauth.status, (await unauth.json()).error.code], [401, "unauthorized"]);

    const before = await scrape(proxy.url, ADMIN);
    const put = { method: "PUT", route: "/kv/{key}", status: "201" };
    const putsBefore = sampleValue(before, "ringkv_proxy_requests_total", put);
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${proxy.url}/kv/secret-key-name-${i}`, {
        method: "PUT",
        body: `value-${i}`,
        signal: AbortSignal.timeout(10_000),
      });
      assertEquals(res.status, 201);
      assertMatch(res.headers.get("x-request-id")!, /^[0-9a-f-]{36}$/);
    }
    const missing = await fetch(`${proxy.url}/kv/nope`, {
      headers: { "x-request-id": "client-id-1" },
      signal: AbortSignal.timeout(10_000),
    });
    assertEquals([missing.status, missing.headers.get("x-request-id")], [404, "client-id-1"]);
    await missing.body?.cancel();

    const after = await scrape(proxy.url, ADMIN);
    assertEquals(sampleValue(after, "ringkv_proxy_requests_total", put) - putsBefore, 20);
    const get404 = { method: "GET", route: "/kv/{key}", status: "404" };
    assertEquals(sampleValue(after, "ringkv_proxy_requests_total", get404), 1);
    const latency = { method: "PUT", route: "/kv/{key}" };
    assert(sampleValue(after, "ringkv_proxy_request_duration_seconds_count", latency) >= 20);
    assertEquals(after.get("ringkv_proxy_request_duration_seconds")?.type, "histogram");
    assertEquals(sum(after, "ringkv_proxy_node_keys"), 20);
    assertEquals(sum(after, "ringkv_proxy_node_up"), 3);
    assert(sum(after, "ringkv_proxy_node_value_bytes") >= 20 * "value-0".length);
    assert(sum(after, "ringkv_proxy_node_wal_bytes") > 0);
    const batchCalls = sampleValue(after, "ringkv_proxy_node_calls_total", {
      route: "/internal/batch",
      outcome: "2xx",
    });
    assert(batchCalls > 0, "internal batch calls are counted");
    assertEquals(sampleValue(after, "ringkv_proxy_cluster_nodes"), 3);
    assertEquals(sum(after, "ringkv_proxy_rebalancing"), 0);
    assert(sampleValue(after, "process_resident_memory_bytes") > 0);
    for (const name of ["ringkv_proxy_node_call_errors_total", "ringkv_proxy_ring_share"]) {
      assert(after.has(name), `${name} is exported`);
    }

    const node = cluster.nodes.get("n1")!;
    const nodeMetrics = await scrape(node.url, { authorization: `Bearer ${SECRET}` });
    assert(sum(nodeMetrics, "ringkv_node_fsync_duration_seconds_count") > 0, "fsyncs are timed");
    assert(sum(nodeMetrics, "ringkv_node_request_duration_seconds_count") > 0);
    for (const name of ["ringkv_node_wal_bytes", "ringkv_node_snapshot_bytes"]) {
      assertEquals(nodeMetrics.get(name)?.type, "gauge");
    }

    // The TTL reaper's deletes are counted (its failures are logged at debug only).
    const ttl = await fetch(`${proxy.url}/kv/expiring?ttl=1`, { method: "PUT", body: "v" });
    assertEquals(ttl.status, 201);
    await ttl.body?.cancel();
    const reaped = { outcome: "expired" };
    const deadline = Date.now() + 20_000;
    for (;;) {
      const now = await scrape(proxy.url, ADMIN);
      assertEquals(now.get("ringkv_proxy_ttl_reaper_deletes_total")?.type, "counter");
      if (sampleValue(now, "ringkv_proxy_ttl_reaper_deletes_total", reaped) >= 1) break;
      assert(Date.now() < deadline, "the reaper's delete was never counted");
      await new Promise((r) => setTimeout(r, 250));
    }
  } finally {
    await cluster.stop();
  }
});

Deno.test("the proxy's /metrics counts one-round-trip writes by outcome (3 replicas)", async () => {
  const cluster = await ProcessCluster.create();
  try {
    const proxy = await cluster.startAll(3, 3);
    const before = await scrape(proxy.url, ADMIN);
    const decided = { outcome: "decided" };
    const decidedBefore = sampleValue(before, "ringkv_proxy_fast_writes_total", decided);
    for (let i = 0; i < 5; i++) {
      const res = await fetch(`${proxy.url}/kv/fast-key`, {
        method: "PUT",
        body: `value-${i}`,
        signal: AbortSignal.timeout(10_000),
      });
      assertEquals(res.status, i === 0 ? 201 : 200, await res.text());
    }
    const after = await scrape(proxy.url, ADMIN);
    assertEquals(after.get("ringkv_proxy_fast_writes_total")?.type, "counter");
    // The first PUT is a full round; the next ones build on it (anti-entropy may interrupt one).
    assert(sampleValue(after, "ringkv_proxy_fast_writes_total", decided) - decidedBefore >= 1);
    // No other proposer: nothing refuses a fast accept.
    assertEquals(sampleValue(after, "ringkv_proxy_fast_writes_total", { outcome: "refused" }), 0);
    assert(after.has("ringkv_proxy_fast_writes_paused_total"));
    assert(sampleValue(after, "ringkv_proxy_fast_write_keys") <= 1);
  } finally {
    await cluster.stop();
  }
});

Deno.test("the proxy logs nothing at the default level and one JSON line per request at debug, tokens never", async () => {
  const cluster = await ProcessCluster.create();
  try {
    await cluster.startNode("n1");
    const urls = cluster.nodes.get("n1")!.url;
    const quiet = await cluster.startProxy("quiet", ["--nodes", urls, "--replicas", "1"]);
    const loud = await cluster.startProxy("loud", [
      "--nodes",
      urls,
      "--replicas",
      "1",
      "--log-level",
      "debug",
    ]);
    for (const p of [quiet, loud]) {
      const res = await fetch(`${p.url}/cluster`, {
        headers: { ...ADMIN, "x-request-id": "rid-42" },
        signal: AbortSignal.timeout(10_000),
      });
      assertEquals(res.status, 200);
      await res.body?.cancel();
    }
    await Promise.all([quiet.stop(), loud.stop()]);
    assertEquals(quiet.stderrLines.filter((l) => l.trim() !== ""), []);
    const events = loud.stderrLines.filter((l) => l.trim() !== "").map((l) => JSON.parse(l));
    const request = events.find((e) => e.msg === "request" && e.id === "rid-42");
    assertEquals(
      [request?.level, request?.route, request?.status, request?.method],
      ["debug", "/cluster", 200, "GET"],
    );
    const all = [...loud.stderrLines, ...loud.stdoutLines].join("\n");
    assert(!all.includes("e2e-admin-token") && !all.includes(SECRET), "no token in the logs");
  } finally {
    await cluster.stop();
  }
});
