import { assert, assertEquals } from "@std/assert";
import { TOMBSTONE_SWEEP_MS } from "../proxy/replication/tombstone_purge.ts";
import { DEFAULT_TOMBSTONE_GRACE_MS } from "../shared/tombstone_grace.ts";
import { TEST_CLOCK_ENV } from "../shared/test_clock.ts";
import { ADMIN, ProcessCluster } from "./helpers/process_cluster.ts";

const DELETED = 40;
/** Slack for a loaded 2-core machine on top of one sweep. */
const SLACK_MS = 30_000;

async function send(url: string, init: RequestInit = {}): Promise<Response> {
  return await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
}

async function status(url: string, init: RequestInit = {}): Promise<number> {
  const res = await send(url, init);
  await res.body?.cancel();
  return res.status;
}

/** Polls `check` until it holds; fails past `deadline` (ms since the epoch). */
async function until(what: string, deadline: number, check: () => Promise<boolean>) {
  for (let i = 0; i < 100_000; i++) {
    if (await check()) return;
    assert(Date.now() < deadline, `${what}: not true by the deadline`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

Deno.test("3 nodes, 3 replicas: deleted and expired keys' tombstones are purged from every node once past the grace, for good across a restart, and the keys stay deleted", async () => {
  const cluster = await ProcessCluster.create();
  try {
    for (const id of ["n1", "n2", "n3"]) await cluster.startNode(id);
    const urls = [...cluster.nodes.values()].map((n) => n.url).join(",");
    const flags = ["--nodes", urls, "--replicas", "3", "--probe-ms", "200"];
    let proxy = await cluster.startProxy("p1", flags);
    for (let i = 0; i < DELETED; i++) {
      assertEquals(await status(`${proxy.url}/kv/gone/k${i}`, { method: "PUT", body: "v" }), 201);
      assertEquals(await status(`${proxy.url}/kv/gone/k${i}`, { method: "DELETE" }), 204);
    }
    assertEquals(await status(`${proxy.url}/kv/gone/ttl?ttl=1`, { method: "PUT", body: "v" }), 201);
    assertEquals(await status(`${proxy.url}/kv/kept`, { method: "PUT", body: "stays" }), 201);
    const tombstones = async (id: string) =>
      (await cluster.nodeEntries(id)).filter((e) => e.v === null).length;
    // The reaper turns the expired key into a tombstone too.
    await until("the TTL key reaped", Date.now() + SLACK_MS, async () => {
      for (const id of ["n1", "n2", "n3"]) if (await tombstones(id) !== DELETED + 1) return false;
      return true;
    });
    // Young tombstones are kept: a sweep or two finds nothing to purge.
    await new Promise((r) => setTimeout(r, 2 * TOMBSTONE_SWEEP_MS));
    assertEquals(await tombstones("n1"), DELETED + 1);

    // Every clock moves past the grace (a restart with a test clock offset; the data stays).
    const later = { [TEST_CLOCK_ENV]: String(DEFAULT_TOMBSTONE_GRACE_MS + 120_000) };
    await cluster.proxies.get("p1")!.stop();
    for (const id of ["n1", "n2", "n3"]) {
      const port = cluster.nodes.get(id)!.port;
      await cluster.nodes.get(id)!.stop();
      await cluster.startNode(id, port, later);
    }
    proxy = await cluster.startProxy("p1", flags, later);
    const purgedBy = Date.now() + TOMBSTONE_SWEEP_MS + SLACK_MS;
    for (const id of ["n1", "n2", "n3"]) {
      await until(`${id} purged its tombstones`, purgedBy, async () => await tombstones(id) === 0);
    }
    const metrics = await (await send(`${proxy.url}/metrics`, { headers: ADMIN })).text();
    const purged = metrics.match(/ringkv_proxy_tombstone_purges_total\{outcome="purged"\} (\d+)/);
    assertEquals(Number(purged?.[1]), DELETED + 1, metrics);

    // Deleted they stay, through the proxy, and after a node's crash and restart.
    assertEquals(await status(`${proxy.url}/kv/gone/k0`), 404);
    assertEquals(await status(`${proxy.url}/kv/gone/ttl`), 404);
    const kept = await send(`${proxy.url}/kv/kept`);
    assertEquals([kept.status, await kept.text()], [200, "stays"]);
    const n1Port = cluster.nodes.get("n1")!.port;
    await cluster.nodes.get("n1")!.kill("SIGKILL");
    await cluster.startNode("n1", n1Port, later);
    const entries = await cluster.nodeEntries("n1");
    assertEquals(entries.map((e) => e.k), ["kept"], "n1 after a kill -9: no key came back");
    const listed = await send(`${proxy.url}/kv?prefix=gone/`);
    assertEquals((await listed.json()).keys, []);
    // A purged key is new again.
    assertEquals(await status(`${proxy.url}/kv/gone/k1`, { method: "PUT", body: "again" }), 201);
    const again = await send(`${proxy.url}/kv/gone/k1`);
    assertEquals([again.status, await again.text()], [200, "again"]);
  } finally {
    await cluster.stop();
  }
});
