import { assertEquals, assertMatch } from "@std/assert";
import type { NodeFetch } from "../nodes/node_client.ts";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { ownerOf, startCluster, type TestCluster } from "../../tests/doubles/test_cluster.ts";
import { ProxyMetrics } from "./proxy_metrics.ts";
import { countRouting } from "../../tests/doubles/router_probe.ts";

const OK = { authorization: "Bearer t0ken", "x-request-id": "req-1" };

/** Status, headers and body of an answer, to compare two answers whole. */
async function shape(res: Response): Promise<unknown> {
  return { status: res.status, headers: [...res.headers], body: await res.text() };
}

Deno.test("GET /kv/{key} answers alike through the front and through Hono's chain", async () => {
  const c = await startCluster({ proxy: { clientToken: "t0ken" } });
  try {
    const put = (key: string, body: string) =>
      c.proxy.request(`/kv/${key}`, { method: "PUT", body, headers: OK });
    assertEquals((await put("here", "value")).status, 201);
    assertEquals((await put("a%2Fb", "slash")).status, 201);
    const utf8 = await put("utf8", "héllo ✓");
    assertEquals(utf8.status, 201);
    assertEquals((await put("gone", "x")).status, 201);
    const del = await c.proxy.request("/kv/gone", { method: "DELETE", headers: OK });
    assertEquals(del.status, 204);
    const down = await ownerOf(c.topology.current(), "unreachable");
    const etag = utf8.headers.get("etag")!;
    const routed = countRouting(c.proxy);
    const cases: [path: string, headers: Record<string, string>, status: number][] = [
      ["/kv/here", OK, 200],
      ["/kv/a%2Fb", OK, 200],
      ["/kv/utf8", OK, 200],
      ["/kv/utf8", { ...OK, "if-none-match": etag }, 304],
      ["/kv/missing", OK, 404],
      ["/kv/gone", OK, 404],
      ["/kv/%ZZ", OK, 400],
      ["/kv/", OK, 400],
      ["/kv/" + "k".repeat(DEFAULT_LIMITS.maxKeyBytes + 1), OK, 414],
      ["/kv/here", { "x-request-id": "req-1" }, 401],
      ["/kv/here", { ...OK, authorization: "Bearer wrong" }, 401],
      ["/kv/unreachable", OK, 503],
    ];
    for (const [path, headers, status] of cases) {
      if (path === "/kv/unreachable") c.down.add(down);
      // A query string sends the same GET through Hono's routing and middleware instead.
      const before = routed();
      const front = await shape(await c.proxy.request(path, { headers }));
      assertEquals(routed(), before, `${path}: the front answered, not Hono's router`);
      const chained = await shape(await c.proxy.request(path + "?via=hono", { headers }));
      assertEquals(routed(), before + 1, `${path}?via=hono: Hono's router answered`);
      assertEquals(front, chained, `${path} ${JSON.stringify(headers)}`);
      assertEquals((front as { status: number }).status, status, path);
    }
  } finally {
    await c.close();
  }
});

Deno.test("a front GET is counted, logged, and an unexpected error is a logged 500", async () => {
  const logged: Record<string, unknown>[] = [];
  const metrics = new ProxyMetrics();
  const c = await startCluster({ proxy: { metrics, log: (o) => logged.push(o) } });
  const routed = countRouting(c.proxy);
  try {
    for (let i = 0; i < 3; i++) await (await c.proxy.request("/kv/none")).body?.cancel();
    const counted = metrics.requests.seriesOf({ method: "GET", route: "/kv/{key}", status: "404" });
    assertEquals(counted.value, 3);
    const requests = logged.filter((o) => o.msg === "request");
    assertEquals(requests.map((o) => [o.method, o.route, o.status]), [
      ["GET", "/kv/{key}", 404],
      ["GET", "/kv/{key}", 404],
      ["GET", "/kv/{key}", 404],
    ]);
    c.topology.current = () => {
      throw new Error("map on fire");
    };
    const res = await c.proxy.request("/kv/k%C3%A9y", { headers: { "x-request-id": "r9" } });
    assertEquals(res.status, 500);
    assertEquals(res.headers.get("x-request-id"), "r9");
    const body = await res.json();
    assertEquals(body.error.code, "internal");
    assertEquals(body.error.message, "Cannot answer GET /kv/kéy: internal error");
    const internal = logged.find((o) => o.msg === "internal error");
    assertEquals([internal?.id, internal?.path], ["r9", "/kv/kéy"]);
    assertEquals(routed(), 0, "the front answered every GET");
  } finally {
    await c.close();
  }
});

Deno.test("every front GET answer carries exactly one x-request-id, a new one when none is sent", async () => {
  const c = await startCluster({ proxy: { clientToken: "t0ken" } });
  try {
    const auth = { authorization: "Bearer t0ken" };
    const put = await c.proxy.request("/kv/k", { method: "PUT", body: "v", headers: auth });
    const etag = put.headers.get("etag")!;
    const cases: [headers: Record<string, string>, status: number][] = [
      [auth, 200],
      [{ ...auth, "if-none-match": etag }, 304],
      [{}, 401],
    ];
    const ids = new Set<string>();
    for (const [headers, status] of cases) {
      for (const path of ["/kv/k", "/kv/missing"]) {
        const res = await c.proxy.request(path, { headers });
        await res.body?.cancel();
        const want = path === "/kv/missing" && status !== 401 ? 404 : status;
        const sent = [...res.headers].filter(([name]) => name === "x-request-id");
        assertEquals([res.status, sent.length], [want, 1], `${path} ${JSON.stringify(headers)}`);
        ids.add(sent[0]![1]);
      }
      const given = await c.proxy.request("/kv/k", {
        headers: { ...headers, "x-request-id": "mine" },
      });
      await given.body?.cancel();
      assertEquals(given.headers.get("x-request-id"), "mine");
    }
    assertEquals(ids.size, 6, "a new id per request");
  } finally {
    await c.close();
  }
});

/** `shape()` with every version written as V (two writes never get the same one). */
async function versionless(res: Response, renamed = ""): Promise<unknown> {
  let text = JSON.stringify(await shape(res));
  if (renamed !== "") text = text.replaceAll(renamed, "key");
  return JSON.parse(text.replace(/[0-9a-f]{12}-[0-9a-f]{4}-[\w.-]+?(?=\\?")/g, "V"));
}

Deno.test("PUT and DELETE /kv/{key} answer alike through the front and through Hono's chain", async () => {
  const limits = { ...DEFAULT_LIMITS, maxValueBytes: 64, bodyTimeoutMs: 200 };
  const c = await startCluster({ proxy: { clientToken: "t0ken" }, limits });
  try {
    const down = await ownerOf(c.topology.current(), "unreachable");
    const routed = countRouting(c.proxy);
    const wrong = { ...OK, "if-match": '"0190aabbccdd-0001-p1"' };
    const cases: [
      method: string,
      key: string,
      headers: Record<string, string>,
      body: string,
      status: number,
    ][] = [
      ["PUT", "key", { ...OK, "content-type": "text/plain" }, "v1", 201],
      ["PUT", "key", OK, "v2", 200],
      ["PUT", "key", { ...OK, "if-none-match": "*" }, "v3", 412],
      ["PUT", "key", wrong, "v3", 412],
      ["PUT", "key", { ...OK, "if-match": '"a" "b"' }, "v3", 400],
      ["PUT", "key", { ...OK, "content-type": "t".repeat(257) }, "v3", 400],
      ["PUT", "key", OK, "x".repeat(65), 413],
      ["PUT", "key", { "x-request-id": "req-1" }, "v3", 401],
      ["PUT", "%ZZ", OK, "v", 400],
      ["PUT", "k".repeat(DEFAULT_LIMITS.maxKeyBytes + 1), OK, "v", 414],
      ["DELETE", "key", wrong, "", 412],
      ["DELETE", "key", { "x-request-id": "req-1" }, "", 401],
      ["DELETE", "key", OK, "", 204],
      ["DELETE", "key", OK, "", 404],
      ["PUT", "unreachable", OK, "v", 503],
    ];
    for (const [method, key, headers, body, status] of cases) {
      if (key === "unreachable") c.down.add(down);
      const send = (path: string) =>
        c.proxy.request(path, { method, headers, ...(method === "PUT" ? { body } : {}) });
      // The same sequence on two keys: the first through the front, the second through Hono.
      const before = routed();
      const front = await versionless(await send(`/kv/${key}`));
      assertEquals(routed(), before, `${method} ${key}: the front answered, not Hono's router`);
      const other = key === "key" ? "key-via-hono" : key;
      const chained = await versionless(await send(`/kv/${other}?`), "key-via-hono");
      assertEquals(routed(), before + 1, `${method} ${key}?: Hono's router answered`);
      assertEquals(front, chained, `${method} ${key} ${JSON.stringify(headers)}`);
      assertEquals((front as { status: number }).status, status, `${method} ${key}`);
    }
  } finally {
    await c.close();
  }
});

Deno.test("a PUT's answer: its status, JSON version, ETag and request id, as before the front", async () => {
  const c = await startCluster({ proxy: { clientToken: "t0ken" } });
  try {
    for (const [status, body] of [[201, "v1"], [200, "v2"]] as const) {
      const res = await c.proxy.request("/kv/k", { method: "PUT", body, headers: OK });
      const etag = res.headers.get("etag")!;
      const version = JSON.parse(etag);
      assertEquals(await res.json(), { version });
      assertEquals([...res.headers], [
        ["content-type", "application/json"],
        ["etag", etag],
        ["x-request-id", "req-1"],
      ]);
      assertEquals(res.status, status);
      const got = await c.proxy.request("/kv/k", { headers: OK });
      assertEquals([got.headers.get("etag"), await got.text()], [etag, body]);
    }
  } finally {
    await c.close();
  }
});

Deno.test("a node's 2xx result without a version is a 502 with the error body, on GET, PUT and DELETE", async () => {
  // The nodes answer as usual; once `strip` is on, every batch result loses its version.
  let strip = false;
  const holder: { c?: TestCluster } = {};
  const fetch: NodeFetch = async (url, init) => {
    const res = await holder.c!.fetch(url, init);
    if (!strip || !url.endsWith("/internal/batch")) return res;
    const body = await res.json() as { results: Record<string, unknown>[] };
    for (const r of body.results) delete r.version;
    return Response.json(body, { status: res.status });
  };
  const c = holder.c = await startCluster({ proxy: { fetch } });
  try {
    const put = () => c.proxy.request("/kv/k", { method: "PUT", body: "v" });
    assertEquals((await put()).status, 201);
    assertEquals((await c.proxy.request("/kv/k")).status, 200);
    strip = true;
    const answers = [
      await c.proxy.request("/kv/k"),
      await put(),
      await c.proxy.request("/kv/k", { method: "DELETE" }),
    ];
    for (const res of answers) {
      assertEquals(res.status, 502);
      assertEquals(res.headers.get("etag"), null);
      const { error } = await res.json();
      assertEquals(error.code, "bad_gateway");
      assertMatch(error.message, /^Cannot use the answer of node n\d .*without a version$/);
    }
  } finally {
    await c.close();
  }
});

Deno.test("the middleware the front stands in for is the request observer and the /kv token check", async () => {
  // frontKey does what these do for a plain GET, PUT or DELETE /kv/{key}: a middleware added
  // to the app must be added there too, or those requests would skip it. This test says so.
  // (The second "/*" is headLength, which acts on HEAD only: the front never takes HEAD. The
  // third is refuseConditions, which lets every /kv/{key} request pass.)
  const c = await startCluster({ proxy: { clientToken: "t0ken" } });
  try {
    const middleware = c.proxy.routes
      .filter((r) => r.method === "ALL" && r.handler.length === 2)
      .map((r) => r.path);
    assertEquals(middleware, ["/*", "/*", "/*", "/kv/*"]);
  } finally {
    await c.close();
  }
});
