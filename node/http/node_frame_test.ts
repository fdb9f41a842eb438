import { assertEquals } from "@std/assert";
import { DEFAULT_LIMITS, DEFAULT_REQUEST_LIMITS } from "../../shared/limits.ts";
import { createNodeApp } from "./node_app.ts";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import { openEngine } from "../engine/open_engine.ts";
import { countRouting } from "../../tests/doubles/router_probe.ts";
import { guard } from "../../shared/guard.ts";

const MAP = {
  epoch: 5,
  replicas: 1,
  vnodes: 8,
  nodes: [{ id: "n1", url: "http://a", weight: 1 }],
  rebalancing: null,
};
const OK = { authorization: "Bearer s3cret" };

/** A node with a cluster secret and map, holding "here"; `put` sends the secret. */
async function nodeWithSecret() {
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1" });
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS, clusterSecret: "s3cret" });
  const put = (path: string, body: string) =>
    app.request(path, { method: "PUT", body, headers: { ...OK, "content-type": "text/x" } });
  assertEquals((await put("/internal/cluster", JSON.stringify(MAP))).status, 200);
  assertEquals((await put("/kv/here", "value")).status, 201);
  return { engine, app, put };
}

/** Status, headers and body of an answer, to compare two answers whole. */
async function shape(res: Response): Promise<unknown> {
  return { status: res.status, headers: [...res.headers], body: await res.text() };
}

Deno.test("GET /kv/{key} answers alike through the front and through Hono's chain", async () => {
  const { engine, app, put } = await nodeWithSecret();
  assertEquals((await put("/kv/a%2Fb", "slash")).status, 201);
  assertEquals((await put("/kv/gone", "x")).status, 201);
  assertEquals((await put("/kv/utf8", "héllo wörld ✓")).status, 201);
  const del = await app.request("/kv/gone", { method: "DELETE", headers: OK });
  assertEquals(del.status, 204);
  const routed = countRouting(app);
  const cases: [path: string, headers: Record<string, string>, status: number][] = [
    ["/kv/here", OK, 200],
    ["/kv/a%2Fb", OK, 200],
    ["/kv/utf8", OK, 200],
    ["/kv/missing", OK, 404],
    ["/kv/gone", OK, 404],
    ["/kv/%ZZ", OK, 400],
    ["/kv/" + "k".repeat(DEFAULT_LIMITS.maxKeyBytes + 1), OK, 414],
    ["/kv/", OK, 400],
    ["/kv/here", {}, 401],
    ["/kv/here", { authorization: "Bearer wrong" }, 401],
    ["/kv/here", { authorization: "Bearer s3cretX" }, 401],
    ["/kv/here", { authorization: "Bearer s3cre" }, 401],
    ["/kv/here", { authorization: "bearer   s3cret " }, 200],
    ["/kv/here", { ...OK, "x-ringkv-epoch": "4" }, 409],
    ["/kv/here", { ...OK, "x-ringkv-epoch": "5" }, 200],
    ["/kv/here", { ...OK, "x-ringkv-epoch": "five" }, 400],
  ];
  for (const [path, headers, status] of cases) {
    // A query string sends the same GET through Hono's routing and middleware instead.
    const before = routed();
    const front = await shape(await app.request(path, { headers }));
    assertEquals(routed(), before, `${path}: the front answered, not Hono's router`);
    const chained = await shape(await app.request(path + "?via=hono", { headers }));
    assertEquals(routed(), before + 1, `${path}?via=hono: Hono's router answered`);
    assertEquals(front, chained, `${path} ${JSON.stringify(headers)}`);
    assertEquals((front as { status: number }).status, status, path);
  }
  // Content-Length in bytes of UTF-8: on the wire, where Deno.serve sets it (next test).
  const text = await app.request("/kv/utf8", { headers: OK });
  assertEquals(await text.text(), "héllo wörld ✓");
  await engine.close();
});

Deno.test("GET and HEAD /kv/{key} on Deno.serve send Content-Length in UTF-8 bytes, the type and the ETag only", async () => {
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1" });
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS, clusterSecret: "s3cret" });
  const written = await app.request("/kv/utf8", {
    method: "PUT",
    body: "héllo wörld ✓",
    headers: { ...OK, "content-type": "text/x" },
  });
  const version = written.headers.get("etag")!.slice(1, -1);
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    guard(app.fetch, DEFAULT_REQUEST_LIMITS),
  );
  try {
    const url = `http://127.0.0.1:${server.addr.port}/kv/utf8`;
    const wanted = {
      "content-length": "17",
      "content-type": "text/x",
      etag: `"${version}"`,
    };
    for (const method of ["GET", "HEAD"]) {
      const res = await fetch(url, { method, headers: OK, signal: AbortSignal.timeout(10_000) });
      const body = await res.text();
      const got = Object.fromEntries(Object.keys(wanted).map((h) => [h, res.headers.get(h)]));
      assertEquals([res.status, got], [200, wanted], `${method}: bytes of UTF-8, not characters`);
      // Nothing else but the transport's: no x-ringkv-version (the ETag has it), no node id.
      const names = [...res.headers.keys()].filter((h) => !["date", "connection"].includes(h));
      assertEquals(names, Object.keys(wanted), method);
      assertEquals(body, method === "GET" ? "héllo wörld ✓" : "");
    }
  } finally {
    await server.shutdown();
    await engine.close();
  }
});

Deno.test("a front GET is counted in /metrics and an engine failure is a logged 500", async () => {
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1" });
  const logged: Record<string, unknown>[] = [];
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS, log: (o) => logged.push(o) });
  const routed = countRouting(app);
  for (let i = 0; i < 3; i++) await (await app.request("/kv/none")).body?.cancel();
  assertEquals(routed(), 0, "the front answered the GETs");
  const metrics = await (await app.request("/metrics")).text();
  const line = metrics.split("\n").find((l) =>
    l.startsWith("ringkv_node_requests_total{") && l.includes('method="GET"') &&
    l.includes('route="/kv/{key}"') && l.includes('status="404"')
  );
  assertEquals(line?.split(" ").at(-1), "3");
  engine.held = () => {
    throw new Error("disk on fire");
  };
  const res = await app.request("/kv/none");
  assertEquals(res.status, 500);
  assertEquals((await res.json()).error.code, "internal");
  assertEquals(logged.map((o) => o.msg), ["unexpected error"]);
  assertEquals(routed(), 1, "only /metrics went through Hono's router");
  await engine.close();
});

/** Status, the headers that are not the transport's, and the body of an answer. */
async function answerShape(res: Response): Promise<unknown> {
  const transport = new Set(["date", "content-length", "connection", "vary"]);
  const headers = [...res.headers].filter(([name]) => !transport.has(name));
  return { status: res.status, headers, body: await res.text() };
}

Deno.test("GET and HEAD /kv/{key} on Deno.serve behind the guard answer as app.request() does", async () => {
  const { engine, app } = await nodeWithSecret();
  // A served request reads its headers from the server lazily; app.request() from a list.
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    guard(app.fetch, { ...DEFAULT_REQUEST_LIMITS, maxHeaderBytes: 1024 }),
  );
  try {
    const base = `http://127.0.0.1:${server.addr.port}`;
    const cases: [path: string, headers: Record<string, string>, status: number][] = [
      ["/kv/here", OK, 200],
      ["/kv/missing", OK, 404],
      ["/kv/%ZZ", OK, 400],
      ["/kv/here", {}, 401],
      ["/kv/here", { authorization: "Bearer wrong" }, 401],
      ["/kv/here", { ...OK, "x-ringkv-epoch": "4" }, 409],
      ["/kv/here", { ...OK, "x-ringkv-epoch": "five" }, 400],
      ["/kv/here", { ...OK, "x-big": "b".repeat(1000) }, 431],
      ["/kv/here", { ...OK, "x-big": "b".repeat(700) }, 200],
    ];
    for (const [path, headers, status] of cases) {
      for (const method of ["GET", "HEAD"]) {
        const init = { method, headers, signal: AbortSignal.timeout(10_000) };
        const wire = await answerShape(await fetch(base + path, init));
        const local = status === 431
          ? undefined // app.request() has no guard in front: the 431 is the guard's
          : await answerShape(await app.request(path, { method, headers }));
        assertEquals((wire as { status: number }).status, status, `${method} ${path}`);
        if (local !== undefined) assertEquals(wire, local, `${method} ${path}`);
      }
    }
    const refused = await fetch(base + "/kv/here", {
      headers: { ...OK, "x-big": "b".repeat(1000) },
      signal: AbortSignal.timeout(10_000),
    });
    assertEquals(refused.headers.get("connection"), "close");
    assertEquals((await refused.json()).error.code, "headers_too_large");
  } finally {
    await server.shutdown();
    await engine.close();
  }
});
