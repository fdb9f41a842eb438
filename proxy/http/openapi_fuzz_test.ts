/**
 * Requests generated from the OpenAPI description (every operation, its parameters'
 * schemas stretched past their limits, good and bad bodies, tokens, Host headers and header
 * blocks, and methods the path does not list) against the real proxy app over in-process
 * nodes, served as main.ts serves it: through shared/guard.ts, with a client token. Fails on
 * any status or content type the description does not list for that operation, on an error
 * answer whose body is not `{"error":{"code","message"}}`, and on a 405 whose Allow header
 * is not the path's documented methods.
 */
import { assert, assertEquals } from "@std/assert";
import fc from "fast-check";
import type { Hono } from "hono";
import { createNodeApp } from "../../node/http/node_app.ts";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import { openEngine } from "../../node/engine/open_engine.ts";
import type { NodeEngine } from "../../node/engine/engine.ts";
import { DEFAULT_LIMITS, type RequestLimits } from "../../shared/limits.ts";
import { guard } from "../../shared/guard.ts";
import { assembleProxy } from "./assemble_proxy.ts";
import { ClusterState } from "../cluster/map_view.ts";
import { createMemoryMapStore } from "../cluster/map_store.ts";
import { initialMap } from "../cluster/map_transitions.ts";
import { ProxyMetrics } from "./proxy_metrics.ts";
import { NodeAdmin } from "../nodes/node_admin.ts";
import { OPENAPI } from "./openapi.ts";
import { Rebalancer } from "../rebalance/rebalancer.ts";
import { overRequests } from "../../tests/doubles/node_fetch.ts";
import { nodeInfos, TEST_VNODES } from "../../tests/doubles/test_cluster.ts";

const TOKEN = "fuzz-admin-token";
const CLIENT = "fuzz-client-token";
/** Small enough that generated URLs and headers pass them (414, 431). */
const REQUEST_LIMITS: RequestLimits = { maxUrlBytes: 160, maxHeaderBytes: 400, maxInFlight: 64 };
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
  const fetch = overRequests(async (req) => {
    const app = apps.get(new URL(req.url).host);
    if (app === undefined) throw new TypeError("connection refused");
    return await app.fetch(req);
  });
  const admin = new NodeAdmin({ fetch, timeoutMs: 2000, clusterSecret: SECRET });
  const map = { ...initialMap(infos.slice(0, 3), 1, TEST_VNODES) };
  const store = createMemoryMapStore();
  const state = await ClusterState.open(map, { store, admin, sleep: () => Promise.resolve() });
  await state.push(map);
  const rebalancer = new Rebalancer({ state, admin, autoRun: false });
  const app = assembleProxy({
    state,
    rebalancer,
    admin,
    metrics: new ProxyMetrics(),
    fetch,
    limits: LIMITS,
    clusterSecret: SECRET,
    clientToken: CLIENT,
    adminToken: TOKEN,
    timeoutMs: 2000,
  });
  const guarded = guard(app.fetch, REQUEST_LIMITS);
  /** What a client gets from Deno.serve in main.ts (which sends no body on HEAD). */
  const serve = async (url: string, init: RequestInit) => {
    const res = await guarded(new Request(new URL(url, "http://localhost"), init), {});
    return init.method === "HEAD" ? new Response(null, res) : res;
  };
  return { serve, close: async () => await Promise.all(engines.map((e) => e.close())) };
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
  const edges = [
    ...["", ".", "..", "a", "a/b", "x".repeat(70), "x".repeat(170), "%zz"],
    ...["-1", "0", "1", "1000", "1001"],
  ];
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

/** Mostly the token the path wants, sometimes another, none, or no bearer at all. */
function authsFor(path: string) {
  const right = path.startsWith("/kv") ? CLIENT : TOKEN;
  const other = right === CLIENT ? TOKEN : CLIENT;
  const tokens = [right, right, right, other].map((t) => `Bearer ${t}`);
  return fc.constantFrom(...tokens, undefined, "nope", "Bearer no");
}

/** Host headers, mostly good; the bad ones the guard refuses (a path, no URL authority). */
const hosts = fc.constantFrom(
  "localhost",
  "localhost",
  "127.0.0.1:8080",
  "x/kv/b",
  "x:99999999",
  "[::1",
);
/** Usually no extra header; sometimes one that takes the block past maxHeaderBytes. */
const padding = fc.constantFrom(0, 0, 0, 0, 10, 500);

/** One request for `o`: its parameters filled from their schemas, a body, a token. */
function requestFor(o: Operation) {
  const params = [
    ...((OPENAPI.paths[o.path]!.parameters ?? []) as Json[]),
    ...((o.op.parameters ?? []) as Json[]),
  ];
  // A required parameter always has a value; an optional one is left out now and then.
  const values = params.map((p) =>
    p.required
      ? stringFor(p.schema as Json)
      : fc.option(stringFor(p.schema as Json), { nil: undefined, freq: 2 })
  );
  return fc.record({
    values: fc.tuple(...values),
    body: fc.option(bodies, { nil: undefined }),
    auth: authsFor(o.path),
    encode: fc.boolean(),
    host: hosts,
    pad: padding,
  }).map(({ values, body, auth, encode, host, pad }) => {
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
    headers.host = host;
    if (pad > 0) headers["x-pad"] = "p".repeat(pad);
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

/** A documented response, its `$ref` to a shared one (the guard's answers) followed. */
function responseDoc(o: Operation, status: number): Json | undefined {
  const doc = (o.op.responses as Record<string, Json>)[String(status)];
  const target = doc?.$ref;
  if (typeof target !== "string") return doc;
  const shared = (OPENAPI.components as { responses: Record<string, Json> }).responses;
  return shared[target.replace("#/components/responses/", "")];
}

/** Every error answer with a JSON body carries `{"error": {"code", "message"}}`. */
function checkErrorShape(res: Response, body: string, what: string): void {
  const media = res.headers.get("content-type") ?? "";
  // HEAD answers (what.startsWith("HEAD")) have no body to check.
  if (res.status < 400 || !media.startsWith("application/json") || what.startsWith("HEAD")) return;
  const error = JSON.parse(body)?.error;
  assert(
    typeof error?.code === "string" && typeof error?.message === "string",
    `${what}: ${res.status} body is not {"error":{"code","message"}}: ${body.slice(0, 200)}`,
  );
}

async function checkAnswer(o: Operation, res: Response, what: string): Promise<void> {
  const doc = responseDoc(o, res.status);
  const body = await res.text();
  assert(doc !== undefined, `${what}: ${res.status} is not documented (${body.slice(0, 200)})`);
  checkErrorShape(res, body, what);
  const content = doc.content as Json | undefined;
  if (o.method === "HEAD" || res.status === 204 || res.status === 304) {
    assertEquals(body, "", `${what}: ${res.status} has no body`);
  } else if (content !== undefined) {
    const types = Object.keys(content);
    const got = res.headers.get("content-type");
    assert(mediaMatches(types, got), `${what}: ${res.status} ${got}, documented ${types}`);
  }
}

/**
 * The documented operation a request reaches once its URL is normalised (a client, and
 * `new Request`, turn `/kv/..` into `/`), or why none does: the path is not documented
 * (404) or does not list the method (405).
 */
function operationAt(url: string, method: string): Operation | 404 | 405 {
  const path = new URL(url, "http://localhost").pathname;
  for (const [template, item] of Object.entries(OPENAPI.paths)) {
    const pattern = template.replace("{key}", ".+").replace(/\{\w+\}/g, "[^/]+");
    if (!new RegExp(`^${pattern}$`).test(path)) continue;
    const listed = (item[method.toLowerCase()] ?? (method === "HEAD" ? item.get : undefined)) as
      | Json
      | undefined;
    return listed === undefined ? 405 : { path: template, method, op: listed };
  }
  return 404;
}

/** Checks the answer to a request `o` generated, against what its URL really reaches. */
async function checkReached(o: Operation, url: string, res: Response): Promise<void> {
  const what = `${o.method} ${url}`;
  const reached = operationAt(url, o.method);
  if (typeof reached !== "number") return await checkAnswer(reached, res, what);
  // No documented operation: the guard's refusals and the admin token check (on every
  // /cluster/ path) still apply, else a 404 or 405 error.
  const body = await res.text();
  checkErrorShape(res, body, what);
  const allowed = [reached, 400, 401, 414, 431];
  assert(allowed.includes(res.status), `${what}: ${res.status}, want ${allowed}: ${body}`);
}

Deno.test("every answer of the real proxy app is one its OpenAPI description lists", async () => {
  const { serve, close } = await realApp();
  const ops = operations();
  const seen = new Set<number>();
  try {
    for (const o of ops) {
      await fc.assert(
        fc.asyncProperty(requestFor(o), async ({ url, init }) => {
          const res = await serve(url, init);
          seen.add(res.status);
          await checkReached(o, url, res);
        }),
        { numRuns: o.path.startsWith("/kv") ? 120 : 40, seed: 14 },
      );
    }
    // The generator reaches the guard, the token check and the routes' own refusals.
    for (const status of [200, 201, 400, 401, 404, 414, 431]) {
      assert(seen.has(status), `no request got ${status}: ${[...seen].sort()}`);
    }
  } finally {
    await close();
  }
});

Deno.test("a method a documented path does not list answers 405 with Allow naming the listed ones", async () => {
  const { serve, close } = await realApp();
  try {
    for (const [path, item] of Object.entries(OPENAPI.paths)) {
      const listed = OPS.filter((m) => m in item).map((m) => m.toUpperCase());
      if (listed.includes("GET") && !listed.includes("HEAD")) listed.push("HEAD");
      const url = path.replace(/\{\w+\}/g, "k") + (path === "/ring/owners" ? "?key=k" : "");
      for (const method of ["GET", "HEAD", "PUT", "POST", "DELETE", "PATCH"]) {
        if (listed.includes(method)) continue;
        const token = path.startsWith("/kv") ? CLIENT : TOKEN;
        const res = await serve(url, { method, headers: { authorization: `Bearer ${token}` } });
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
