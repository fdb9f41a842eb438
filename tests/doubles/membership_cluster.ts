/**
 * For proxy tests only: a cluster for membership changes with replicas, all in process: real
 * node apps over fake disks, nodes that can be marked down (their calls fail like a refused
 * connection) or wiped, a proxy with its admin routes, and a rebalancer the test steps.
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import type { Hono } from "hono";
import { createNodeApp } from "../../node/http/node_app.ts";
import type { NodeEngine } from "../../node/engine/engine.ts";
import { createFakeDisk } from "./fake_disk.ts";
import { openEngine } from "../../node/engine/open_engine.ts";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import type { ClusterMap } from "../../shared/wire.ts";
import { createAdminRoutes } from "../../proxy/http/admin_routes.ts";
import { createProxyApp } from "../../proxy/http/proxy_app.ts";
import { ClusterState } from "../../proxy/cluster/map_view.ts";
import { createMemoryMapStore } from "../../proxy/cluster/map_store.ts";
import { NodeAdmin } from "../../proxy/nodes/node_admin.ts";
import { Rebalancer } from "../../proxy/rebalance/rebalancer.ts";
import { createReplication } from "../../proxy/replication/wiring.ts";
import { overRequests } from "./node_fetch.ts";
import { nodeInfos, TEST_VNODES } from "./test_cluster.ts";

const SECRET = "s3cret";
/** The admin token of the proxy. */
export const TOKEN = "admin-token";

/**
 * n1..n`total` in process (those past `members` outside the map), a proxy (with the admin
 * routes and replication) with `replicas` over n1..n`members`, and a rebalancer the test steps.
 */
export async function startMembershipCluster(members = 3, replicas = members, total = 4) {
  const infos = nodeInfos(total);
  const engines = new Map<string, NodeEngine>();
  const apps = new Map<string, Hono>();
  for (const info of infos) {
    const engine = await openEngine({ disk: createFakeDisk(), id: info.id });
    engines.set(info.id, engine);
    apps.set(
      new URL(info.url).host,
      createNodeApp({ engine, limits: DEFAULT_LIMITS, clusterSecret: SECRET }),
    );
  }
  const down = new Set<string>();
  /** The nodes asked for a range scan (the source of a range copy), in order. */
  const scanned: string[] = [];
  const fetch = overRequests(async (req) => {
    const url = new URL(req.url);
    const host = url.host;
    if (url.pathname === "/internal/scan") scanned.push(host.split(".")[0]!);
    if (down.has(host.split(".")[0]!)) throw new TypeError("connection refused");
    return await apps.get(host)!.fetch(req);
  });
  const map: ClusterMap = {
    epoch: 1,
    replicas,
    vnodes: TEST_VNODES,
    nodes: infos.slice(0, members).map((n) => ({
      ...n,
      incarnation: engines.get(n.id)!.incarnation,
    })),
    rebalancing: null,
  };
  const admin = new NodeAdmin({ fetch, timeoutMs: 2000, clusterSecret: SECRET });
  const state = await ClusterState.open(map, {
    store: createMemoryMapStore(),
    admin,
    sleep: () => Promise.resolve(),
  });
  await state.push(map);
  const replication = createReplication({ fetch, timeoutMs: 2000, clusterSecret: SECRET });
  const accept = replication.client.accept.bind(replication.client);
  const rebalancer = new Rebalancer({ state, admin, autoRun: false, accept, chunkLines: 50 });
  const adminApp = createAdminRoutes({
    state,
    rebalancer,
    admin,
    adminToken: TOKEN,
    bodyTimeoutMs: DEFAULT_LIMITS.bodyTimeoutMs,
    replication,
  });
  const proxy = createProxyApp({
    topology: state,
    fetch,
    limits: DEFAULT_LIMITS,
    clusterSecret: SECRET,
    timeoutMs: 2000,
    replication,
    admin: adminApp,
  });
  const close = async () => {
    for (const e of engines.values()) await e.close();
  };
  /** Node `id` back on an empty data directory under its id; its new incarnation. */
  const wipe = async (id: string) => {
    await engines.get(id)!.close();
    const engine = await openEngine({ disk: createFakeDisk(), id });
    engines.set(id, engine);
    apps.set(
      `${id}.test`,
      createNodeApp({ engine, limits: DEFAULT_LIMITS, clusterSecret: SECRET }),
    );
    return engine.incarnation;
  };
  return { engines, down, scanned, state, rebalancer, replication, proxy, close, wipe };
}

/** A cluster of {@link startMembershipCluster}. */
export type MembershipCluster = Awaited<ReturnType<typeof startMembershipCluster>>;
type Cluster = MembershipCluster;

/** Writes every key (every fifth one then deleted); returns each key's last version. */
export async function writeKeys(
  c: Cluster,
  keys: readonly string[],
  tag: string,
): Promise<Map<string, string>> {
  const versions = new Map<string, string>();
  for (const [i, key] of keys.entries()) {
    const res = await c.proxy.request(`/kv/${key}`, { method: "PUT", body: `${tag} ${i}` });
    assert(res.status === 200 || res.status === 201, `PUT ${key}: ${res.status}`);
    versions.set(key, res.headers.get("etag")!.slice(1, -1));
    if (i % 5 === 0) {
      const del = await c.proxy.request(`/kv/${key}`, { method: "DELETE" });
      assertEquals(del.status, 204);
      versions.set(key, del.headers.get("etag")?.slice(1, -1) ?? "");
    }
  }
  return versions;
}

/** For each key, the nodes among `ids` holding its newest version (tombstones count). */
export async function holders(c: Cluster, ids: string[], key: string): Promise<string[]> {
  const got = await Promise.all(
    ids.map(async (id) => ({ id, e: await c.engines.get(id)!.get(key) })),
  );
  const newest = got.reduce((a, b) => ((b.e?.version ?? "") > (a.e?.version ?? "") ? b : a));
  return got.filter((g) => g.e !== undefined && g.e.version === newest.e?.version).map((g) => g.id);
}

/** Steps the rebalancer until the map is stable (at most 10 steps). */
export async function runToStable(c: Cluster): Promise<void> {
  for (let i = 0; i < 10 && c.state.current().map.rebalancing !== null; i++) {
    await c.rebalancer.step();
  }
  assertEquals(c.state.current().map.rebalancing, null);
}

/** `DELETE /cluster/nodes/{id}` (with `?force=true`) through the proxy, with the admin token. */
export async function remove(c: Cluster, id: string, force: boolean): Promise<Response> {
  return await c.proxy.request(`/cluster/nodes/${id}${force ? "?force=true" : ""}`, {
    method: "DELETE",
    headers: { authorization: `Bearer ${TOKEN}` },
  });
}
