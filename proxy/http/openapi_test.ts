import { assert, assertEquals } from "@std/assert";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { assembleProxy } from "./assemble_proxy.ts";
import { ClusterState } from "../cluster/map_view.ts";
import { createFakeMapNodes } from "../../tests/doubles/fake_map_nodes.ts";
import { createMemoryMapStore } from "../cluster/map_store.ts";
import { initialMap } from "../cluster/map_transitions.ts";
import { ProxyMetrics } from "./proxy_metrics.ts";
import { NodeAdmin } from "../nodes/node_admin.ts";
import { OPENAPI } from "./openapi.ts";
import { Rebalancer } from "../rebalance/rebalancer.ts";
import { startingGate } from "../../shared/starting_gate.ts";
import { startCluster } from "../../tests/doubles/test_cluster.ts";

const TOKEN = "admin-token-for-openapi";
const METHODS = ["get", "head", "put", "post", "delete", "patch", "options"];

/** The proxy app as proxy/main.ts puts it together, over fake nodes. */
async function realApp() {
  const fake = createFakeMapNodes(["a", "b", "c"]);
  const admin = new NodeAdmin({ fetch: fake.fetch, timeoutMs: 1000 });
  const map = initialMap(fake.nodes, 1, 16);
  const state = await ClusterState.open(map, { store: createMemoryMapStore(), admin });
  const rebalancer = new Rebalancer({ state, admin, autoRun: false });
  return assembleProxy({
    state,
    rebalancer,
    admin,
    metrics: new ProxyMetrics(),
    fetch: fake.fetch,
    limits: DEFAULT_LIMITS,
    timeoutMs: 1000,
    adminToken: TOKEN,
  });
}

function documented(): Set<string> {
  const out = new Set<string>();
  for (const [path, item] of Object.entries(OPENAPI.paths)) {
    for (const method of Object.keys(item)) {
      if (METHODS.includes(method)) out.add(`${method.toUpperCase()} ${path}`);
    }
  }
  return out;
}

Deno.test("every path and method in the OpenAPI document exists on the real proxy app", async () => {
  const app = await realApp();
  for (const route of documented()) {
    const [method, path] = route.split(" ") as [string, string];
    const url = path.replace("{key}", "some/key").replace("{id}", "a") +
      (path === "/ring/owners" ? "?key=k" : "");
    const body = method === "POST" || method === "PUT" ? "{}" : undefined;
    const res = await app.request(url, {
      method,
      body,
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const text = await res.text();
    assert(res.status !== 405, `${route} answers 405: ${text}`);
    assert(!(res.status === 404 && /No route/.test(text)), `${route} has no route: ${text}`);
  }
});

Deno.test("every route of the real proxy app is in the OpenAPI document", async () => {
  const app = await realApp();
  const docs = documented();
  assert(app.routes.filter((r) => r.method !== "ALL").length >= 12, "the app's routes are seen");
  const missing: string[] = [];
  for (const r of app.routes) {
    if (r.method === "ALL") continue; // middleware and the 405 answers
    const path = r.path.replace(/:(\w+)/g, "{$1}").replace(/^\/kv\/\*$/, "/kv/{key}");
    if (!docs.has(`${r.method} ${path}`)) missing.push(`${r.method} ${path}`);
  }
  assertEquals(missing, []);
});

Deno.test("GET /openapi.json serves the document, and docs/openapi.json is the same", async () => {
  const app = await realApp();
  const served = await (await app.request("/openapi.json")).json();
  assertEquals(served, OPENAPI);
  const file = new URL("../../docs/openapi.json", import.meta.url);
  const text = await Deno.readTextFile(file);
  assertEquals(text, JSON.stringify(OPENAPI, null, 2) + "\n", "run `deno task openapi`");
});

Deno.test("GET /ring/owners names the owner of a key; /metrics, /stats and it need the admin token", async () => {
  const app = await realApp();
  for (const path of ["/ring/owners?key=k", "/metrics", "/stats"]) {
    assertEquals((await app.request(path)).status, 401, path);
  }
  const res = await app.request("/ring/owners?key=users/42", {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  const body = await res.json();
  assertEquals([res.status, body.key, body.owners.length, body.next], [200, "users/42", 1, null]);
  assert(["a", "b", "c"].some((id) => body.owners[0].id.includes(id)));
  const bad = await app.request("/ring/owners?key=", {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  assertEquals(bad.status, 400);
  // Decoded as /kv/{key} decodes a key: %ff is no UTF-8 (QA: it named the owners of "%ff"); a
  // key given twice is ambiguous; %25ff is the key "%ff".
  for (const [query, status, key] of [["%ff", 400], ["a&key=b", 400], ["%25ff", 200, "%ff"]]) {
    const res = await app.request(`/ring/owners?key=${query}`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    const body = await res.json();
    assertEquals(res.status, status, `${query}: ${JSON.stringify(body)}`);
    if (key !== undefined) assertEquals(body.key, key);
  }
});

Deno.test("the shared 503 (Busy) documents every header the starting gate's 503 sends", async () => {
  const res = await startingGate("loading").handler(new Request("http://x/kv/a"), {});
  await res.body?.cancel();
  assertEquals(res.status, 503);
  const { responses } = OPENAPI.components as {
    responses: Record<string, { headers?: object } | undefined>;
  };
  const documented = Object.keys(responses.Busy?.headers ?? {}).map((h) => h.toLowerCase());
  const sent = [...res.headers.keys()].filter((h) => h.startsWith("x-") || h === "retry-after");
  assert(sent.length >= 2, `the gate sends its headers: ${sent}`);
  for (const header of sent) assert(documented.includes(header), `Busy documents ${header}`);
});

type Operation = {
  parameters?: { name: string }[];
  responses: Record<string, { headers?: object }>;
};

/** The operation `method` of `/kv/{key}`, with the parameters its path item has too. */
function keyOperation(method: string): Operation {
  const item = OPENAPI.paths["/kv/{key}"] as Record<string, unknown>;
  const op = item[method.toLowerCase()] as Operation;
  const shared = (item.parameters ?? []) as { name: string }[];
  return { ...op, parameters: [...shared, ...(op.parameters ?? [])] };
}

Deno.test("the OpenAPI document lists the conditions /kv/{key} evaluates and the ETag it answers", async () => {
  const c = await startCluster();
  try {
    const put = await c.proxy.request("/kv/a", { method: "PUT", body: "x" });
    const etag = put.headers.get("etag")!;
    await put.body?.cancel();
    const calls: [string, Record<string, string>, number][] = [
      ["PUT", {}, 200],
      ["PUT", { "if-match": etag.replace(/"/g, "") }, 412],
      ["PUT", { "if-none-match": "*" }, 412],
      ["GET", { "if-none-match": "*" }, 304],
      ["GET", { "if-match": '"0"' }, 412],
      ["GET", { "if-match": "*" }, 200],
      ["HEAD", { "if-match": '"0"' }, 412],
      ["HEAD", { "if-match": "*" }, 200],
      ["DELETE", { "if-none-match": "*" }, 412],
      ["DELETE", { "if-match": '"0"' }, 412],
    ];
    for (const [method, headers, status] of calls) {
      const body = method === "PUT" ? "y" : undefined;
      const res = await c.proxy.request("/kv/a", { method, headers, body });
      await res.body?.cancel();
      assertEquals(res.status, status, `${method} ${JSON.stringify(headers)}`);
      const op = keyOperation(method);
      const names = (op.parameters ?? []).map((p) => p.name.toLowerCase());
      for (const name of Object.keys(headers)) assert(names.includes(name), `${method} ${name}`);
      // Every answer of the key routes that carries an ETag documents it.
      const documented = Object.keys(op.responses[String(res.status)]?.headers ?? {});
      if (res.headers.has("etag")) assert(documented.includes("ETag"), `${method} ${status}`);
    }
    const put201 = await c.proxy.request("/kv/b", { method: "PUT", body: "x" });
    await put201.body?.cancel();
    assert(put201.headers.has("etag"));
    assert("ETag" in (keyOperation("PUT").responses["201"]?.headers ?? {}), "PUT 201 ETag");
  } finally {
    await c.close();
  }
});

Deno.test("the OpenAPI document lists HEAD wherever GET is, and the real app answers it", async () => {
  const app = await realApp();
  for (const [path, item] of Object.entries(OPENAPI.paths)) {
    if (!("get" in item)) continue;
    assert("head" in item, `HEAD ${path} is documented`);
    const url = path.replace("{key}", "some/key") + (path === "/ring/owners" ? "?key=k" : "");
    const headers = { authorization: `Bearer ${TOKEN}`, accept: "text/event-stream" };
    const res = await app.request(url, { method: "HEAD", headers });
    assertEquals(await res.text(), "", `HEAD ${path}`);
    const responses = (item.head as { responses: Record<string, unknown> }).responses;
    assert(String(res.status) in responses, `HEAD ${path}: ${res.status} is documented`);
  }
});

Deno.test("no response description in the OpenAPI document says one thing twice", () => {
  const text = JSON.stringify(OPENAPI);
  for (const [, description] of text.matchAll(/"description":"((?:[^"\\]|\\.)*)"/g)) {
    const parts = description!.split("; or ");
    assertEquals(new Set(parts).size, parts.length, description);
  }
});
