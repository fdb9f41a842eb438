import { assert, assertEquals, assertMatch } from "@std/assert";
import { createAdminRoutes } from "./admin_routes.ts";
import { sameSecret } from "../../shared/secret.ts";
import { ClusterState } from "../cluster/map_view.ts";
import { createFakeMapNodes } from "../../tests/doubles/fake_map_nodes.ts";
import { createMemoryMapStore } from "../cluster/map_store.ts";
import { initialMap, planAdd, toCleanup } from "../cluster/map_transitions.ts";
import { movingShare, replicaShares } from "../cluster/key_counts.ts";
import { Ring } from "../../shared/ring.ts";
import { NodeAdmin } from "../nodes/node_admin.ts";
import { Rebalancer } from "../rebalance/rebalancer.ts";
import { overRequests } from "../../tests/doubles/node_fetch.ts";
import { stalledBody } from "../../tests/doubles/stalled_body.ts";
import { secretProof } from "../../shared/node_proof.ts";

const TOKEN = "admin-s3cret";

/** `answer` replaces the fake nodes' answer to a request when it returns one. */
type Override = (req: Request) => Response | Promise<Response> | undefined;

async function setup(
  adminToken: string | undefined,
  override: Override = () => undefined,
  bodyTimeoutMs = 10_000,
  clusterSecret?: string,
) {
  const fake = createFakeMapNodes(["a", "b", "c", "d"]);
  const fetch = overRequests((req) => override(req) ?? fake.fetch(req.url, req));
  const admin = new NodeAdmin({ fetch, timeoutMs: 200, clusterSecret });
  const map = initialMap(fake.nodes.slice(0, 3), 1, 16);
  const state = await ClusterState.open(map, {
    store: createMemoryMapStore(),
    admin,
    sleep: () => Promise.resolve(),
  });
  await state.push(map);
  const rebalancer = new Rebalancer({ state, admin });
  const app = createAdminRoutes({ state, rebalancer, admin, adminToken, bodyTimeoutMs });
  const call = (method: string, path: string, body?: unknown, token: string | null = TOKEN) =>
    app.request(path, {
      method,
      headers: token === null ? {} : { authorization: `Bearer ${token}` },
      body: body === undefined || typeof body === "string" ? body : JSON.stringify(body),
    });
  return { fake, state, app, call };
}

async function errorOf(res: Response): Promise<[number, string]> {
  const body = await res.json();
  assertEquals(typeof body.error.message, "string");
  return [res.status, body.error.code];
}

Deno.test("admin routes answer 401 without the right bearer token, on every route", async () => {
  const { app, call } = await setup(TOKEN);
  const headersCases: Record<string, string>[] = [
    {},
    { authorization: "Bearer wrong" },
    { authorization: `Bearer ${TOKEN}x` },
    { authorization: `Bearer ${TOKEN.slice(0, -1)}` },
    { authorization: `Basic ${TOKEN}` },
    { authorization: TOKEN },
  ];
  const routes: [string, string][] = [
    ["GET", "/cluster"],
    ["POST", "/cluster/nodes"],
    ["DELETE", "/cluster/nodes/a"],
    ["GET", "/ring"],
  ];
  for (const [method, path] of routes) {
    for (const headers of headersCases) {
      const res = await app.request(path, { method, headers });
      // RFC 9110: a 401 says how to authenticate.
      assertEquals(res.headers.get("www-authenticate"), 'Bearer realm="ringkv-admin"');
      assertEquals(
        await errorOf(res),
        [401, "unauthorized"],
        `${method} ${path} ${headers.authorization}`,
      );
    }
    assertEquals(
      (await call(method, path, method === "POST" ? {} : undefined)).status === 401,
      false,
    );
  }
});

Deno.test("admin routes answer 403 when the proxy has no admin token", async () => {
  const { call } = await setup(undefined);
  assertEquals(await errorOf(await call("GET", "/cluster")), [403, "forbidden"]);
});

Deno.test("sameSecret() accepts only the exact secret", () => {
  assert(sameSecret("abc", "abc"));
  for (const other of ["", "ab", "abcd", "abd", "ABC"]) assert(!sameSecret(other, "abc"), other);
});

Deno.test("GET /cluster shows epoch, replicas, nodes with state and keys, no rebalancing", async () => {
  const { fake, call } = await setup(TOKEN);
  fake.down.add("c.test");
  const view = await (await call("GET", "/cluster")).json();
  assertEquals([view.epoch, view.replicas, view.rebalancing], [1, 1, null]);
  assertEquals(
    view.nodes.map((
      n: { id: string; state: string; keys: number | null },
    ) => [n.id, n.state, n.keys]),
    [["a", "up", 0], ["b", "up", 0], ["c", "down", null]],
  );
});

Deno.test("GET /cluster counts the keys that moved once while the old owners still hold them", async () => {
  const { fake, state, call } = await setup(TOKEN);
  for (const id of ["a", "b", "c"]) fake.keys.set(id, 1000);
  const map = state.current().map;
  const adding = planAdd(map, fake.nodes[3]!, 0, 3000);
  const share = movingShare(
    await Ring.build(map.nodes, 16),
    await Ring.build(adding.rebalancing!.next, 16),
    1,
  );
  const moved = Math.round(3000 * share);
  fake.keys.set("d", moved); // copied; a, b and c drop theirs only at the end of cleanup
  const cleanup = toCleanup(adding, moved);
  assert(await state.install(adding, "test") && await state.install(cleanup, "test"));
  const view = await (await call("GET", "/cluster")).json();
  assertEquals(view.rebalancing.phase, "cleanup");
  assertEquals([view.keys, view.copies], [3000, 3000 + moved]);
  assertEquals(view.rebalancing.totalKeys, moved);
});

Deno.test("an add starts from the copies of every node, one that does not answer at its share", async () => {
  const { fake, state, call } = await setup(TOKEN);
  for (const id of ["a", "b"]) fake.keys.set(id, 1000);
  fake.down.add("c.test");
  const shares = replicaShares(state.current().ring, 1);
  const res = await call("POST", "/cluster/nodes", { url: "http://d.test" });
  assertEquals(res.status, 202);
  const expected = Math.round(2000 / (shares.get("a")! + shares.get("b")!));
  assertEquals(state.current().map.rebalancing?.totalKeys, expected);
});

Deno.test("GET /cluster shows a failed node's writes with its retries and repairError", async () => {
  const writes = {
    state: "failed",
    reason: "append failed: No space left on device",
    since: 1_700_000_000_000,
    retries: 3,
    repairError: "log damaged at byte 812",
  };
  const { call } = await setup(TOKEN, (req) => {
    const url = new URL(req.url);
    if (url.pathname !== "/health" || url.host !== "b.test") return undefined;
    const body = { status: "read-only", id: "b", epoch: 1, keys: 7, writes, extra: 1 };
    return Response.json(body, { status: 503 });
  });
  const view = await (await call("GET", "/cluster")).json();
  const b = view.nodes.find((n: { id: string }) => n.id === "b");
  assertEquals([b.state, b.keys, b.writes], ["read-only", 7, writes]);
});

Deno.test("GET /ring gives each node's share of the hash space", async () => {
  const { call } = await setup(TOKEN);
  const ring = await (await call("GET", "/ring")).json();
  assertEquals(ring.nodes, ["a", "b", "c"]);
  const total = Object.values(ring.shares as Record<string, number>).reduce((a, b) => a + b, 0);
  assert(Math.abs(total - 1) < 1e-9, `shares sum to ${total}`);
  assertEquals(ring.points.length, 48);
  assertEquals(ring.next, null);
});

Deno.test("POST /cluster/nodes refuses a node already in the ring (409) and bad bodies (400)", async () => {
  const { call } = await setup(TOKEN);
  assertEquals(await errorOf(await call("POST", "/cluster/nodes", { url: "http://b.test" })), [
    409,
    "conflict",
  ]);
  const sameId = await call("POST", "/cluster/nodes", { url: "http://b.test/" });
  assertEquals((await errorOf(sameId))[0], 409);
  assertEquals(await errorOf(await call("POST", "/cluster/nodes", "{")), [400, "invalid_json"]);
  assertEquals((await errorOf(await call("POST", "/cluster/nodes", { url: 3 })))[0], 400);
  assertEquals((await errorOf(await call("POST", "/cluster/nodes", { url: "ftp://x" })))[0], 400);
  for (
    const url of ["http://d.test/kv", "http://d.test?x", "http://d.test/#f", "http://u@d.test"]
  ) {
    const res = await call("POST", "/cluster/nodes", { url });
    const body = await res.json();
    assertEquals([res.status, body.error.code], [400, "bad_request"], url);
    assert(body.error.message.includes("give only scheme://host:port"), body.error.message);
  }
  const heavy = { url: "http://d.test", weight: -1 };
  assertEquals((await errorOf(await call("POST", "/cluster/nodes", heavy)))[0], 400);
  const gone = await call("POST", "/cluster/nodes", { url: "http://nowhere.test" });
  assertEquals(await errorOf(gone), [503, "node_unavailable"]);
});

Deno.test("GET /cluster and POST /cluster/nodes name a node whose /health is not JSON (502) or stalls (503)", async () => {
  const broken = new Map<string, "garbled" | "stalled">();
  const { call } = await setup(TOKEN, (req) => {
    const url = new URL(req.url);
    const how = url.pathname === "/health" ? broken.get(url.host) : undefined;
    if (how === undefined) return undefined;
    return how === "garbled" ? new Response("<html>") : stalledBody(req);
  });
  broken.set("c.test", "garbled");
  const view = await call("GET", "/cluster");
  assertEquals(view.status, 200);
  const c = (await view.json()).nodes.find((n: { id: string }) => n.id === "c");
  assertEquals(c.state, "down");
  assert(c.error.includes("http://c.test"), c.error);
  broken.delete("c.test");
  for (
    const [how, want] of [["garbled", [502, "bad_gateway"]], ["stalled", [
      503,
      "node_unavailable",
    ]]] as const
  ) {
    broken.set("d.test", how);
    const res = await call("POST", "/cluster/nodes", { url: "http://d.test" });
    const body = await res.json();
    assertEquals<unknown>([res.status, body.error.code], want, how);
    assert(body.error.message.includes("http://d.test"), body.error.message);
  }
});

Deno.test("POST /cluster/nodes answers 408 at the configured body deadline", async () => {
  const { app } = await setup(TOKEN, undefined, 50);
  // A body that starts and then never ends, like a client that stops sending.
  const body = new ReadableStream<Uint8Array>({
    start: (c) => c.enqueue(new TextEncoder().encode('{"url":')),
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<"late">((ok) => timer = setTimeout(() => ok("late"), 5_000));
  try {
    const headers = { authorization: `Bearer ${TOKEN}` };
    const res = await Promise.race([
      app.request("/cluster/nodes", { method: "POST", headers, body }),
      late,
    ]);
    assert(res !== "late", "no answer within 5 s");
    assertEquals(await errorOf(res), [408, "request_timeout"]);
  } finally {
    clearTimeout(timer);
  }
});

Deno.test("DELETE /cluster/nodes/{id} answers 404 for an unknown id", async () => {
  const { call } = await setup(TOKEN);
  assertEquals(await errorOf(await call("DELETE", "/cluster/nodes/zz")), [404, "not_found"]);
});

Deno.test("DELETE /cluster/nodes/{id} names a long id that no node can have by its start", async () => {
  const { call } = await setup(TOKEN);
  const res = await call("DELETE", `/cluster/nodes/${"x".repeat(3000)}`);
  assertEquals((await res.json()).error, {
    code: "not_found",
    message: `Cannot remove node ${"x".repeat(80)}... (3000 bytes): no node has this id ` +
      "(ids are 1-32 of [A-Za-z0-9_])",
  });
  assertEquals(res.status, 404);
});

Deno.test("DELETE /cluster/nodes/{id} given a node's URL (kv remove URL) names the node's id", async () => {
  const { fake, call } = await setup(TOKEN);
  const node = fake.nodes[0]!;
  const res = await call("DELETE", `/cluster/nodes/${encodeURIComponent(node.url)}`);
  assertEquals(res.status, 404);
  const { message } = (await res.json()).error;
  assert(message.endsWith(`; it is the URL of node ${node.id}: remove ${node.id}`), message);
});

Deno.test("DELETE /cluster/nodes/{id} refuses force given twice (400) and removes nothing", async () => {
  const { call, state } = await setup(TOKEN);
  for (const query of ["force=true&force=false", "force=false&force=false", "force=1"]) {
    const res = await call("DELETE", `/cluster/nodes/c?${query}`);
    assertEquals(await errorOf(res), [400, "bad_request"], query);
  }
  assertEquals(state.current().map.rebalancing, null);
  const res = await call("DELETE", "/cluster/nodes/c?force=false");
  assertEquals(res.status, 202, await res.clone().text());
});

Deno.test("a second add while one runs is refused with 409", async () => {
  const { call, state } = await setup(TOKEN);
  const res = await call("POST", "/cluster/nodes", { url: "http://d.test" });
  assertEquals(res.status, 202);
  const view = await res.json();
  assertEquals([view.epoch, view.rebalancing.kind, view.rebalancing.nodeId], [2, "add", "d"]);
  assertEquals(view.nodes.find((n: { id: string }) => n.id === "d").state, "joining");
  assertEquals(state.current().map.rebalancing?.nodeId, "d");
  const second = await call("DELETE", "/cluster/nodes/a");
  assertEquals(await errorOf(second), [409, "conflict"]);
});

Deno.test("wrong methods on admin paths answer 405", async () => {
  const { call } = await setup(TOKEN);
  assertEquals(await errorOf(await call("PUT", "/cluster")), [405, "method_not_allowed"]);
  assertEquals(await errorOf(await call("GET", "/cluster/nodes")), [405, "method_not_allowed"]);
});

Deno.test("GET /cluster shows a node that proves another cluster secret as unauthorized, not up, and counts it out of nodesUp", async () => {
  const challenged = async (req: Request, secret: string) => {
    const challenge = new URL(req.url).searchParams.get("challenge");
    const proof = challenge === null ? undefined : await secretProof(secret, challenge);
    const id = new URL(req.url).host.split(".")[0];
    return Response.json({ status: "ok", id, epoch: 1, keys: 5, proof });
  };
  const { call } = await setup(
    TOKEN,
    (req) => {
      const url = new URL(req.url);
      if (url.pathname !== "/health") return undefined;
      // b and c were started with another secret than this proxy's; a with this one.
      return challenged(req, url.host === "a.test" ? "s3cret" : "another");
    },
    10_000,
    "s3cret",
  );
  const view = await (await call("GET", "/cluster")).json();
  const states = view.nodes.map((n: { id: string; state: string }) => [n.id, n.state]);
  assertEquals(states, [["a", "up"], ["b", "unauthorized"], ["c", "unauthorized"]]);
  assertEquals([view.replicas, view.nodesUp, view.belowReplicas], [1, 1, false]);
  const b = view.nodes.find((n: { id: string }) => n.id === "b");
  assertMatch(b.error, /^Node b at http:\/\/b\.test refuses this proxy's cluster secret/);
});
