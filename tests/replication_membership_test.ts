import { assert, assertEquals, assertMatch } from "@std/assert";
import { admin, ProcessCluster, SECRET, waitStable } from "./helpers/process_cluster.ts";
import { finalReads, runClients, sleep } from "./helpers/fault_workload.ts";
import { checkHistory, type Operation } from "./helpers/linearizability.ts";

const CLIENTS = 8;
const KEYS = 24;

/** One operation as text: "start..end cN call -> result". */
function opText(op: Operation): string {
  const c = op.call;
  const cond = (c.op !== "get" && c.ifMatch ? ` if-match ${c.ifMatch}` : "") +
    (c.op === "put" && c.ifNoneMatch ? " if-none-match *" : "");
  const call = (c.op === "put" ? `put ${c.value}` : c.op) + cond;
  const r = op.result;
  const res = r.status === "unknown" ? "unknown" : [
    String(r.status),
    ...(r.value !== undefined ? [`value ${r.value}`] : []),
    ...(r.version ? [`ver ${r.version}`] : []),
  ].join(" ");
  return `${op.start.toFixed(0)}..${op.end.toFixed(0)} c${op.client} ${call} -> ${res}`;
}

/** The operations of `key` by call time, with the test's events, for a failure message. */
function describeKey(key: string, history: Operation[], events: [string, number][]): string {
  const rows: [number, string][] = events.map(([what, at]) => [at, `${at.toFixed(0)} ${what}`]);
  for (const op of history) if (op.key === key) rows.push([op.start, opText(op)]);
  return rows.sort((a, b) => a[0] - b[0]).map((r) => r[1]).join("\n");
}

/** Every entry (tombstones included) a node holds: key -> version. */
async function entriesOf(cluster: ProcessCluster, id: string): Promise<Map<string, string>> {
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
async function waitLevel(cluster: ProcessCluster, ids: string[], ms: number) {
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
  const cluster = await ProcessCluster.create();
  try {
    for (const id of ["n1", "n2", "n3"]) await cluster.startNode(id);
    const urls = [...cluster.nodes.values()].map((n) => n.url).join(",");
    const proxy = await cluster.startProxy("p1", [
      ...["--nodes", urls, "--replicas", "3", "--timeout-ms", "1000", "--probe-ms", "200"],
      ...["--anti-entropy-ms", "500"],
    ]);
    const events: [string, number][] = [];
    const mark = (what: string) => events.push([what, performance.now()]);
    const stop = new AbortController();
    const clients = runClients(proxy.url, { clients: CLIENTS, keys: KEYS, signal: stop.signal });
    await sleep(2000);
    await cluster.nodes.get("n3")!.kill("SIGKILL");
    mark("n3 killed");
    await sleep(1000);
    const refused = await admin(proxy.url, "DELETE", "/cluster/nodes/n3");
    assertEquals(refused.status, 503, JSON.stringify(refused.body));
    assertMatch(JSON.stringify(refused.body), /force=true/);
    const forced = await admin(proxy.url, "DELETE", "/cluster/nodes/n3?force=true");
    assertEquals(forced.status, 202, JSON.stringify(forced.body));
    mark("force removal of n3 started");
    const removed = await waitStable(proxy.url, 0, 30_000);
    mark("n3 removed (map stable)");
    assertEquals(removed.nodes.map((n) => n.id).sort(), ["n1", "n2"]);
    await sleep(1000);
    const n4 = await cluster.startNode("n4");
    const added = await admin(proxy.url, "POST", "/cluster/nodes", { url: n4.url });
    assertEquals(added.status, 202, JSON.stringify(added.body));
    mark("add of n4 started");
    const view = await waitStable(proxy.url, 0, 30_000);
    mark("n4 added (map stable)");
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
    const bad = checkHistory(history);
    if (bad !== null) console.log(`not linearizable: ${bad}\n${describeKey(bad, history, events)}`);
    assertEquals(bad, null);
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
    // Its first vote came after the copy gave it keys: no false "lost watermark" (QA).
    const warned = n4.stderrLines.filter((l) => l.includes("no acceptor.json"));
    assertEquals(warned, [], n4.stderrLines.join("\n"));
    assertEquals([...n2!].sort(), [...n1!].sort());
  } finally {
    await cluster.stop();
  }
});
