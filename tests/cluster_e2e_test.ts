import { assert, assertEquals } from "@std/assert";
import { hashKeys, Ring } from "../shared/ring.ts";
import {
  admin,
  clusterView,
  loadKeys,
  ProcessCluster,
  SECRET,
  waitStable,
} from "./helpers/process_cluster.ts";
import { findViolations, KeyModel, runClients } from "./helpers/workload.ts";

const STATIC_KEYS = 5000;

/** Which node each key belongs to on a ring of `ids` (weight 1, default vnodes). */
async function ownersOn(ids: string[], keys: string[]): Promise<Map<string, string>> {
  const ring = await Ring.build(ids.map((id) => ({ id, weight: 1 })));
  const points = await hashKeys(keys);
  return new Map(keys.map((k, i) => [k, ring.ownersOf(points[i]!, 1)[0]!]));
}

/**
 * Every key is held by exactly one node, the one the ring of `ids` names; returns
 * the keys by holder.
 */
async function checkPlacement(
  cluster: ProcessCluster,
  ids: string[],
): Promise<Map<string, string>> {
  const holder = new Map<string, string>();
  for (const id of ids) {
    for (const key of await cluster.nodeKeys(id)) {
      assert(!holder.has(key), `${key} is on both ${holder.get(key)} and ${id}`);
      holder.set(key, id);
    }
  }
  const owners = await ownersOn(ids, [...holder.keys()]);
  for (const [key, id] of holder) assertEquals(id, owners.get(key), `owner of ${key}`);
  return holder;
}

/** Pages through `GET /kv?prefix=static/` and checks every static key comes once, in order. */
async function checkListing(proxyUrl: string): Promise<void> {
  const keys: string[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 1000; page++) {
    const query: string = cursor === null ? "" : `&cursor=${cursor}`;
    const res = await fetch(`${proxyUrl}/kv?prefix=static/&limit=97${query}`);
    const body = await res.json();
    assertEquals(res.status, 200, JSON.stringify(body));
    keys.push(...body.keys);
    cursor = body.cursor;
    if (cursor === null) break;
  }
  const expected = Array.from({ length: STATIC_KEYS }, (_, i) => `static/${i}`).sort();
  assertEquals(keys, expected);
}

/**
 * Runs 8 clients and a lister while `change` starts a rebalancing, waits for it to end,
 * then checks every acknowledged write.
 */
async function rebalanceUnderLoad(
  proxyUrl: string,
  model: KeyModel,
  change: () => Promise<{ status: number; body: unknown }>,
): Promise<void> {
  const stop = Promise.withResolvers<void>();
  const clients = runClients(model, {
    proxyUrl,
    clients: 8,
    keysPerClient: 50,
    deleteRatio: 0.2,
    until: stop.promise,
  });
  try {
    const started = await change();
    assertEquals(started.status, 202, JSON.stringify(started.body));
    const epoch = (await clusterView(proxyUrl)).epoch;
    let listings = 0;
    let stable = false;
    const waiting = waitStable(proxyUrl, epoch + 2).then(() => (stable = true));
    // Awaited below; if a listing fails first, its error is the test's, not this one's
    // rejection once the cluster is stopped (which hid it in a loaded full run).
    waiting.catch(() => {});
    while (!stable) {
      await checkListing(proxyUrl);
      listings++;
    }
    await waiting;
    assert(listings >= 1);
    console.log(
      `rebalancing ran under ${model.stats.ok} client writes and ${listings} full listings`,
    );
  } finally {
    stop.resolve();
    await clients;
  }
  assertEquals(await findViolations(model, proxyUrl), []);
  assertEquals(model.stats.failed, 0, `failed requests: ${[...model.stats.errors]}`);
}

/** Share of `keys` whose owner differs between two rings. */
async function movedFraction(keys: string[], from: string[], to: string[]): Promise<number> {
  const before = await ownersOn(from, keys);
  const after = await ownersOn(to, keys);
  return keys.filter((k) => before.get(k) !== after.get(k)).length / keys.length;
}

Deno.test("nodes added and removed under 8 writing clients keep every write; only keys whose owner changed move", async () => {
  const cluster = await ProcessCluster.create();
  try {
    const proxy = await cluster.startAll(3, 1); // one owner per key
    await loadKeys(proxy.url, "static/", STATIC_KEYS);
    const model = new KeyModel();

    const n4 = await cluster.startNode("n4");
    await rebalanceUnderLoad(
      proxy.url,
      model,
      () => admin(proxy.url, "POST", "/cluster/nodes", { url: n4.url }),
    );
    const afterAdd = await checkPlacement(cluster, ["n1", "n2", "n3", "n4"]);
    const keys = [...afterAdd.keys()];
    assert(keys.length >= STATIC_KEYS + model.certainLiveCount());
    assert(keys.length <= STATIC_KEYS + model.possibleLiveCount());
    const added = await movedFraction(keys, ["n1", "n2", "n3"], ["n1", "n2", "n3", "n4"]);
    assert(Math.abs(added - 1 / 4) <= 0.1 / 4, `moved ${added} of the keys on add, ideal 0.25`);
    const onN4 = [...afterAdd.values()].filter((id) => id === "n4").length / keys.length;
    assertEquals(onN4, added, "the keys on n4 are exactly the keys that changed owner");

    await rebalanceUnderLoad(
      proxy.url,
      model,
      () => admin(proxy.url, "DELETE", "/cluster/nodes/n1"),
    );
    const afterRemove = await checkPlacement(cluster, ["n2", "n3", "n4"]);
    assertEquals((await cluster.nodeKeys("n1")).length, 0, "n1 keeps nothing once removed");
    const remaining = [...afterRemove.keys()];
    const removed = await movedFraction(remaining, ["n1", "n2", "n3", "n4"], ["n2", "n3", "n4"]);
    assert(Math.abs(removed - 1 / 4) <= 0.1 / 4, `moved ${removed} of the keys on remove`);
    const view = await clusterView(proxy.url);
    assertEquals(view.nodes.map((n) => n.id), ["n2", "n3", "n4"]);
    assertEquals(view.nodes.reduce((sum, n) => sum + (n.keys ?? 0), 0), remaining.length);
  } finally {
    await cluster.stop();
  }
});

Deno.test("a proxy killed with SIGKILL in the middle of a rebalancing finishes it after a restart", async () => {
  const cluster = await ProcessCluster.create();
  try {
    let proxy = await cluster.startAll(3, 1); // one owner per key
    const port = proxy.port;
    await loadKeys(proxy.url, "static/", STATIC_KEYS);
    const n4 = await cluster.startNode("n4");
    const started = await admin(proxy.url, "POST", "/cluster/nodes", { url: n4.url });
    assertEquals(started.status, 202);
    await proxy.kill("SIGKILL");

    const res = await fetch(`${n4.url}/internal/cluster`, {
      headers: { authorization: `Bearer ${SECRET}` },
    });
    const map = await res.json();
    assert(map.rebalancing !== null, "the proxy died with a rebalancing in progress");

    proxy = await cluster.startProxy("p1", ["--port", String(port)]);
    await waitStable(proxy.url, map.epoch + 1);
    const holder = await checkPlacement(cluster, ["n1", "n2", "n3", "n4"]);
    assertEquals(holder.size, STATIC_KEYS);
    await checkListing(proxy.url);
    for (const i of [0, 1, 777, 2500, STATIC_KEYS - 1]) {
      const got = await fetch(`${proxy.url}/kv/static/${i}`);
      assertEquals([got.status, await got.text()], [200, `value-${i}`]);
    }
  } finally {
    await cluster.stop();
  }
});
