import { assert, assertEquals, assertMatch } from "@std/assert";
import { admin, SECRET, TestCluster, waitStable } from "./helpers/cluster.ts";
import { finalReads, runClients, sleep } from "./helpers/fault_workload.ts";
import { checkHistory } from "./helpers/linearizability.ts";

const CLIENTS = 8;
const KEYS = 24;

/** Every entry (tombstones included) a node holds: key -> version. */
async function entriesOf(cluster: TestCluster, id: string): Promise<Map<string, string>> {
  const res = await fetch(`${cluster.nodes.get(id)!.url}/internal/keys?limit=1000`, {
    headers: { authorization: `Bearer ${SECRET}` },
    signal: AbortSignal.timeout(10_000),
  });
  const body = await res.json();
  assertEquals(res.status, 200, JSON.stringify(body));
  assert(!body.more, "more than 1000 entries");
  return new Map(body.entries.map((e: { k: string; ver: string }) => [e.k, e.ver]));
}

/** Polls until the nodes hold the same versions of the same keys; the last listing. */
async function waitLevel(cluster: TestCluster, ids: string[], ms: number) {
  const deadline = Date.now() + ms;
  for (;;) {
    const all = await Promise.all(ids.map((id) => entriesOf(cluster, id)));
    const same = (m: Map<string, string>) =>
      m.size === all[0]!.size && [...m].every(([k, v]) => all[0]!.get(k) === v);
    if (all.every(same) || Date.now() > deadline) return all;
    await sleep(200);
  }
}

Deno.test("3 nodes, 3 replicas: a node killed for good is force-removed and replaced while clients run, linearizably", async () => {
  const cluster = await TestCluster.create();
  try {
    for (const id of ["n1", "n2", "n3"]) await cluster.startNode(id);
    const urls = [...cluster.nodes.values()].map((n) => n.url).join(",");
    const proxy = await cluster.startProxy("p1", [
      ...["--nodes", urls, "--replicas", "3", "--timeout-ms", "1000", "--probe-ms", "200"],
      ...["--anti-entropy-ms", "500"],
    ]);
    const stop = new AbortController();
    const clients = runClients(proxy.url, { clients: CLIENTS, keys: KEYS, signal: stop.signal });
    await sleep(2000);
    await cluster.nodes.get("n3")!.kill("SIGKILL");
    await sleep(1000);
    const refused = await admin(proxy.url, "DELETE", "/cluster/nodes/n3");
    assertEquals(refused.status, 503, JSON.stringify(refused.body));
    assertMatch(JSON.stringify(refused.body), /force=true/);
    const forced = await admin(proxy.url, "DELETE", "/cluster/nodes/n3?force=true");
    assertEquals(forced.status, 202, JSON.stringify(forced.body));
    const removed = await waitStable(proxy.url, 0, 30_000);
    assertEquals(removed.nodes.map((n) => n.id).sort(), ["n1", "n2"]);
    await sleep(1000);
    const n4 = await cluster.startNode("n4");
    const added = await admin(proxy.url, "POST", "/cluster/nodes", { url: n4.url });
    assertEquals(added.status, 202, JSON.stringify(added.body));
    const view = await waitStable(proxy.url, 0, 30_000);
    assertEquals(view.nodes.map((n) => n.id).sort(), ["n1", "n2", "n4"]);
    await sleep(2000);
    stop.abort();
    const { history, stats } = await clients;
    const finals = await finalReads(proxy.url, KEYS);
    history.push(...finals);
    const share = (100 * stats.failed / stats.requests).toFixed(2);
    console.log(
      `membership test: ${stats.requests} requests, ${stats.failed} failed (${share}%), ` +
        `${history.length} ops checked`,
    );
    assert(stats.requests > 200, `only ${stats.requests} requests`);
    assertEquals(checkHistory(history), null);
    assert(finals.every((op) => op.result.status !== "unknown"));
    // Every key ends with 3 replicas: the three nodes hold the same versions of every key.
    const [n1, n2, n4keys] = await waitLevel(cluster, ["n1", "n2", "n4"], 15_000);
    for (const [i, op] of finals.entries()) {
      const key = `fk${i}`;
      if (op.result.status !== 200) continue;
      const versions = [n1!.get(key), n2!.get(key), n4keys!.get(key)];
      assertEquals(versions, [op.result.version, op.result.version, op.result.version], key);
    }
    assertEquals([...n4keys!].sort(), [...n1!].sort());
    assertEquals([...n2!].sort(), [...n1!].sort());
  } finally {
    await cluster.stop();
  }
});
