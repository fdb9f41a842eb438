/**
 * Requests generated from the OpenAPI description (every operation, its parameters'
 * schemas stretched past their limits, good and bad bodies and tokens, and methods the
 * path does not list) against the real proxy app over in-process nodes. Fails on any
 * status or content type the description does not list for that operation, and on a 405
 * whose Allow header is not the path's documented methods.
 */
import { assert, assertEquals } from "@std/assert";
import fc from "fast-check";
import type { Hono } from "hono";
import { createNodeApp } from "../../node/http/node_app.ts";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import { openEngine } from "../../node/engine/open_engine.ts";
import type { NodeEngine } from "../../node/engine/engine.ts";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { createAdminRoutes } from "./admin_routes.ts";
import { createProxyApp } from "./proxy_app.ts";
import { ClusterState } from "../cluster/map_view.ts";
import { createMemoryMapStore } from "../cluster/map_store.ts";
import { initialMap } from "../cluster/map_transitions.ts";
import { ProxyMetrics } from "./proxy_metrics.ts";
import { NodeAdmin } from "../nodes/node_admin.ts";
import { OPENAPI } from "./openapi.ts";
import { createOpsRoutes } from "./ops_routes.ts";
import { Rebalancer } from "../rebalance/rebalancer.ts";
import { nodeInfos, TEST_VNODES } from "../../tests/doubles/test_cluster.ts";

const TOKEN = "fuzz-admin-token";
const SECRET = "fuzz-secret";
const LIMITS = { ...DEFAULT_LIMITS, maxKeyBytes: 64, maxValueBytes: 256 };
const OPS = ["get", "head", "put", "post", "delete"] as const;
type Json = Record<string, unknown>;
type Operation = { path: string; method: string; op: Json };

/** The proxy app as main.ts assembles it, over n1..n3 in process (n4 exists, outside). */
async function realApp() {
  const infos = nodeInfos(4);
  const engines: NodeEngine[] = [];
  const apps = new Map<string, Hono>();
  for (const info of infos) {
    const engine = await openEngine({ disk: createFakeDisk(), id: info.id, limits: LIMITS });
    engines.push(engine);
    apps.set(
      new URL(info.url).host,
      createNodeApp({ engine, limits: LIMITS, clusterSecret: SECRET }),
    );
  }
  const fetch = async (req: Request) => {
    const app = apps.get(new URL(req.url).host);
    if (app === undefined) throw new TypeError("connection refused");
    return await app.fetch(req);
  };
  const admin = new NodeAdmin({ fetch, timeoutMs: 2000, clusterSecret: SECRET });
  const map = { ...initialMap(infos.slice(0, 3), 1, TEST_VNODES) };
  const store = createMemoryMapStore();
  const state = await ClusterState.open(map, { store, admin, sleep: () => Promise.resolve() });
  await state.push(map);
  const rebalancer = new Rebalancer({ state, admin, autoRun: false });
  const metrics = new ProxyMetrics();
  const adminApp = createAdminRoutes({
    state,
    rebalancer,
    admin,
    adminToken: TOKEN,
    bodyTimeoutMs: DEFAULT_LIMITS.bodyTimeoutMs,
  });
  const ops = { state, rebalancer, metrics, fetch, timeoutMs: 2000, clusterSecret: SECRET };
  adminApp.route("/", createOpsRoutes({ ...ops, adminToken: TOKEN, maxKeyBytes: 64 }));
  const app = createProxyApp({
    topology: state,
    fetch,
    limits: LIMITS,
    clusterSecret: SECRET,
    timeoutMs: 2000,
    admin: adminApp,
    metrics,
  });
  return { app, close: async () => await Promise.all(engines.map((e) => e.close())) };
}

function operations(): Operation[] {
  const out: Operation[] = [];
  for (const [path, item] of Object.entries(OPENAPI.paths)) {
    for (const method of OPS) {
      const op = item[method] as Json | undefined;
      if (op !== undefined) out.push({ path, method: method.toUpperCase(), op });
    }
  }
  return out;
}

/** Strings that keep to a schema and strings that break it (length, pattern, type). */
function stringFor(schema: Json | undefined): fc.Arbitrary<string> {
  const chars = ["a", "b", "/", ".", "%", " ", "é", "😀", "\u0001", "-", "_", "0", "="];
  const random = fc.array(fc.constantFrom(...chars), { maxLength: 10 }).map((c) => c.join(""));
  const edges = ["", ".", "..", "a", "a/b", "x".repeat(70), "%zz", "-1", "0", "1", "1000", "1001"];
  const typed = schema?.type === "integer"
    ? fc.integer({ min: -5, max: 1200 }).map(String)
    : schema?.type === "boolean"
    ? fc.constantFrom("true", "false", "1", "0", "", "yes")
    : random;
  return fc.oneof(typed, fc.constantFrom(...edges), fc.string({ maxLength: 8 }));
}

const bodies = fc.oneof(
  fc.json().map((j) => j),
  fc.constantFrom(
    '{"set": null}',
    '{"delete": null}',
    '{"set": {"a": 1}, "delete": ["b"]}',
    '{"url": "http://n4.test"}',
    '{"url": "http://nowhere.test", "weight": 2}',
    '{"url": "ftp://x"}',
    "{",
    "",
  ),
  fc.string({ maxLength: 40 }),
);

const auths = fc.constantFrom(`Bearer ${TOKEN}`, `Bearer ${TOKEN}`, undefined, "nope", "Bearer no");

/** One request for `o`: its parameters filled from their schemas, a body, a token. */
function requestFor(o: Operation) {
  const params = [
    ...((OPENAPI.paths[o.path]!.parameters ?? []) as Json[]),
    ...((o.op.parameters ?? []) as Json[]),
  ];
  const values = params.map((p) =>
    fc.option(stringFor(p.schema as Json), { nil: undefined, freq: p.required ? 0 : 2 })
  );
  return fc.record({
    values: fc.tuple(...values),
    body: fc.option(bodies, { nil: undefined }),
    auth: auths,
    encode: fc.boolean(),
  }).map(({ values, body, auth, encode }) => {
    let path = o.path;
    const query = new URLSearchParams();
    const headers: Record<string, string> = {};
    params.forEach((p, i) => {
      const v = values[i];
      if (v === undefined) return;
      if (p.in === "path") {
        const enc = encode ? encodeURIComponent(v) : encodeURI(v);
        path = path.replace(`{${p.name}}`, enc === "" ? "k" : enc);
      } else if (p.in === "query") query.set(String(p.name), v);
      else if (p.in === "header" && /^[\x20-\x7e]*$/.test(v)) headers[String(p.name)] = v;
    });
    path = path.replace(/\{\w+\}/g, "k");
    if (auth !== undefined) headers.authorization = auth;
    const withBody = o.method === "PUT" || o.method === "POST";
    return {
      url: path + (query.size > 0 ? `?${query}` : ""),
      init: { method: o.method, headers, body: withBody ? body ?? "" : undefined },
    };
  });
}

/** Whether `got` (a Content-Type) is one of the documented media types. */
function mediaMatches(documented: string[], got: string | null): boolean {
  const type = (got ?? "").split(";")[0]!.trim().toLowerCase();
  return documented.some((d) => d === "*/*" || d === type);
}

async function checkAnswer(o: Operation, res: Response, what: string): Promise<void> {
  const responses = o.op.responses as Record<string, Json>;
  const doc = responses[String(res.status)];
  const body = await res.text();
  assert(doc !== undefined, `${what}: ${res.status} is not documented (${body.slice(0, 200)})`);
  const content = doc.content as Json | undefined;
  if (o.method === "HEAD" || res.status === 204 || res.status === 304) {
    assertEquals(body, "", `${what}: ${res.status} has no body`);
  } else if (content !== undefined) {
    const types = Object.keys(content);
    const got = res.headers.get("content-type");
    assert(mediaMatches(types, got), `${what}: ${res.status} ${got}, documented ${types}`);
  }
}

Deno.test("every answer of the real proxy app is one its OpenAPI description lists", async () => {
  const { app, close } = await realApp();
  const ops = operations();
  try {
    for (const o of ops) {
      await fc.assert(
        fc.asyncProperty(requestFor(o), async ({ url, init }) => {
          const res = await app.request(url, init);
          await checkAnswer(o, res, `${o.method} ${url}`);
        }),
        { numRuns: o.path.startsWith("/kv") ? 120 : 40, seed: 14 },
      );
    }
  } finally {
    await close();
  }
});

Deno.test("a method a documented path does not list answers 405 with Allow naming the listed ones", async () => {
  const { app, close } = await realApp();
  try {
    for (const [path, item] of Object.entries(OPENAPI.paths)) {
      const listed = OPS.filter((m) => m in item).map((m) => m.toUpperCase());
      if (listed.includes("GET") && !listed.includes("HEAD")) listed.push("HEAD");
      const url = path.replace(/\{\w+\}/g, "k") + (path === "/ring/owners" ? "?key=k" : "");
      for (const method of ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH"]) {
        if (listed.includes(method)) continue;
        const res = await app.request(url, {
          method,
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        const text = await res.text();
        const code = method === "HEAD" ? "" : JSON.parse(text).error.code;
        assertEquals(
          [res.status, code],
          [405, method === "HEAD" ? "" : "method_not_allowed"],
          `${method} ${path}: ${text}`,
        );
        const allow = (res.headers.get("allow") ?? "").split(/,\s*/).sort();
        assertEquals(allow, [...listed].sort(), `Allow of ${method} ${path}`);
      }
    }
  } finally {
    await close();
  }
});
