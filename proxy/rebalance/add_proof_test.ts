/**
 * `POST /cluster/nodes` sends nothing with the cluster secret to a URL until that URL has
 * proved it holds the secret (security review: the add's first call, `GET /health`, carried
 * `Authorization: Bearer <cluster secret>` to whatever URL an admin-token holder gave).
 */
import { assert, assertEquals } from "@std/assert";
import type { Hono } from "hono";
import { createNodeApp } from "../../node/http/node_app.ts";
import { openEngine } from "../../node/engine/open_engine.ts";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import { overRequests } from "../../tests/doubles/node_fetch.ts";
import { nodeInfos, TEST_VNODES } from "../../tests/doubles/test_cluster.ts";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import type { ClusterMap } from "../../shared/wire.ts";
import { createAdminRoutes } from "../http/admin_routes.ts";
import { ClusterState } from "../cluster/map_view.ts";
import { createMemoryMapStore } from "../cluster/map_store.ts";
import { NodeAdmin } from "../nodes/node_admin.ts";
import { Rebalancer } from "./rebalancer.ts";

const SECRET = "cluster-s3cret";
const TOKEN = "admin-token";

/** One request a host received, as far as these tests read it. */
interface Seen {
  method: string;
  path: string;
  authorization: string | null;
}

/** A node app over a fake disk with `secret` (none when undefined). */
async function nodeApp(id: string, secret: string | undefined): Promise<Hono> {
  const engine = await openEngine({ disk: createFakeDisk(), id, limits: DEFAULT_LIMITS });
  return createNodeApp({ engine, limits: DEFAULT_LIMITS, clusterSecret: secret });
}

/**
 * Members n1..n3 (with the secret) and a proxy over them; `extra` are other hosts (a spy, a
 * stranger), each request to one recorded in `seen` by host before it is answered.
 */
async function start(extra: Record<string, (req: Request) => Response | Promise<Response>>) {
  const hosts = new Map<string, (req: Request) => Response | Promise<Response>>();
  for (const info of nodeInfos(3)) {
    const app = await nodeApp(info.id, SECRET);
    hosts.set(new URL(info.url).host, (req) => app.fetch(req));
  }
  const seen = new Map<string, Seen[]>();
  for (const [host, answer] of Object.entries(extra)) {
    seen.set(host, []);
    hosts.set(host, (req) => {
      const { pathname, search } = new URL(req.url);
      const authorization = req.headers.get("authorization");
      seen.get(host)!.push({ method: req.method, path: pathname + search, authorization });
      return answer(req);
    });
  }
  const fetch = overRequests(async (req) => {
    const answer = hosts.get(new URL(req.url).host);
    if (answer === undefined) throw new TypeError("connection refused");
    return await answer(req);
  });
  const map: ClusterMap = {
    epoch: 1,
    replicas: 1,
    vnodes: TEST_VNODES,
    nodes: nodeInfos(3),
    rebalancing: null,
  };
  const admin = new NodeAdmin({ fetch, timeoutMs: 2000, clusterSecret: SECRET });
  const sleep = () => Promise.resolve();
  const state = await ClusterState.open(map, { store: createMemoryMapStore(), admin, sleep });
  await state.push(map);
  const rebalancer = new Rebalancer({ state, admin, autoRun: false });
  const app = createAdminRoutes({
    state,
    rebalancer,
    admin,
    adminToken: TOKEN,
    bodyTimeoutMs: DEFAULT_LIMITS.bodyTimeoutMs,
  });
  const add = async (url: string) => {
    const res = await app.request("/cluster/nodes", {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ url }),
    });
    return { status: res.status, body: await res.json() };
  };
  return { add, seen, state, map, rebalancer };
}

/** Every request `host` received carried no Authorization header at all. */
function assertNoAuthorization(seen: Seen[], host: string): void {
  assert(seen.length > 0, `${host} was called`);
  assertEquals(seen.filter((s) => s.authorization !== null), [], host);
}

/** A `/health` answer as a node's, with `proof` as given (left out when undefined). */
function nodeHealth(id: string, proof?: unknown): Response {
  const body = { status: "ok", id, epoch: 0, keys: 0, tombstones: 0 };
  return Response.json(proof === undefined ? body : { ...body, proof });
}

Deno.test("POST /cluster/nodes of a URL that answers 404 (no node) is refused 502 naming it, and it never gets an Authorization header", async () => {
  const c = await start({ "spy.test": () => new Response("nothing here", { status: 404 }) });
  const { status, body } = await c.add("http://spy.test");
  assertNoAuthorization(c.seen.get("spy.test")!, "spy.test");
  assertEquals([status, body.error.code], [502, "bad_gateway"]);
  const { message } = body.error;
  assert(message.startsWith("Cannot add node http://spy.test: "), message);
  assert(message.includes("ringkv node"), message);
  assert(message.includes("nothing was sent to it with the cluster secret"), message);
  assertEquals(c.state.current().map, c.map);
});

Deno.test("POST /cluster/nodes of a server that answers /health like a node without a right proof is refused, and it never gets an Authorization header", async () => {
  const cases = [
    { proof: undefined, want: [502, "bad_gateway"], says: "did not prove it holds" },
    { proof: "0".repeat(64), want: [409, "conflict"], says: "proves another cluster secret" },
    { proof: SECRET, want: [409, "conflict"], says: "proves another cluster secret" },
    { proof: 12, want: [502, "bad_gateway"], says: "did not prove it holds" },
    { proof: null, want: [409, "conflict"], says: "it has no cluster secret" },
  ];
  for (const { proof, want, says } of cases) {
    const c = await start({
      "liar.test": (req) =>
        new URL(req.url).pathname === "/health" ? nodeHealth("liar", proof) : Response.json({}),
    });
    const { status, body } = await c.add("http://liar.test");
    const label = JSON.stringify(proof) ?? "no proof";
    const seen = c.seen.get("liar.test")!;
    assertNoAuthorization(seen, `liar.test, ${label}`);
    assertEquals([status, body.error?.code], want, label);
    assert(body.error.message.startsWith("Cannot add node http://liar.test: "), label);
    assert(body.error.message.includes(says), `${label}: ${body.error.message}`);
    // Refused at the first answer: nothing else was asked of it.
    assertEquals(seen.map((s) => s.path.split("?")[0]), ["/health"], label);
    assertEquals(c.state.current().map, c.map, label);
  }
});

Deno.test("POST /cluster/nodes of a real node with another cluster secret is refused (409) before anything with the secret is sent to it", async () => {
  const stranger = await nodeApp("n9", "another-s3cret");
  const c = await start({ "n9.test": (req) => stranger.fetch(req) });
  const { status, body } = await c.add("http://n9.test");
  assertNoAuthorization(c.seen.get("n9.test")!, "n9.test");
  assertEquals([status, body.error?.code], [409, "conflict"]);
  assert(body.error.message.includes("refuses this cluster's secret"), body.error.message);
  assert(body.error.message.includes("RINGKV_CLUSTER_SECRET"), body.error.message);
  assertEquals(c.state.current().map, c.map);
});

Deno.test("POST /cluster/nodes of a real node without a cluster secret is refused (409): it cannot prove it, and gets nothing with the secret", async () => {
  const open = await nodeApp("n9", undefined);
  const c = await start({ "n9.test": (req) => open.fetch(req) });
  const { status, body } = await c.add("http://n9.test");
  assertNoAuthorization(c.seen.get("n9.test")!, "n9.test");
  assertEquals([status, body.error?.code], [409, "conflict"]);
  assert(body.error.message.includes("it has no cluster secret"), body.error.message);
  assertEquals(c.state.current().map, c.map);
});

Deno.test("POST /cluster/nodes of a real node with the same secret adds it (202) as before; the secret goes to it only after its proof", async () => {
  const n4 = await nodeApp("n4", SECRET);
  const c = await start({ "n4.test": (req) => n4.fetch(req) });
  const { status, body } = await c.add("http://n4.test");
  assertEquals(status, 202, JSON.stringify(body));
  assertEquals(body.rebalancing.nodeId, "n4");
  assertEquals(c.state.current().map.rebalancing?.kind, "add");
  const seen = c.seen.get("n4.test")!;
  const [first] = seen;
  assertEquals(first?.method, "GET");
  assert(/^\/health\?challenge=[0-9a-f]{32}$/.test(first?.path ?? ""), first?.path);
  // Every /health call goes without the secret; the calls after the proof carry it.
  const health = seen.filter((s) => s.path.startsWith("/health"));
  assertEquals(health.filter((s) => s.authorization !== null), []);
  const internal = seen.filter((s) => !s.path.startsWith("/health"));
  assert(internal.length > 0, "the add went on to the node's internal routes");
  assertEquals(internal.filter((s) => s.authorization !== `Bearer ${SECRET}`), []);
  await c.rebalancer.run();
  assertEquals(c.state.current().map.nodes.map((n) => n.id), ["n1", "n2", "n3", "n4"]);
});
