import { assert, assertEquals } from "@std/assert";
import { ProcessCluster } from "./helpers/process_cluster.ts";
import { finalReads, nemesis, runClients, sleep } from "./helpers/fault_workload.ts";
import { checkHistory } from "./helpers/linearizability.ts";

const CLIENTS = 8;
const KEYS = 24;
const RUN_MS = 20_000;

Deno.test("3 nodes, 3 replicas: under kills and pauses of one node the history is linearizable", async () => {
  const cluster = await ProcessCluster.create();
  const lines: string[] = [];
  try {
    for (const id of ["n1", "n2", "n3"]) await cluster.startNode(id);
    const urls = [...cluster.nodes.values()].map((n) => n.url).join(",");
    const proxy = await cluster.startProxy("p1", [
      ...["--nodes", urls, "--replicas", "3", "--timeout-ms", "1000", "--probe-ms", "200"],
    ]);
    const stop = new AbortController();
    const clients = runClients(proxy.url, { clients: CLIENTS, keys: KEYS, signal: stop.signal });
    const chaos = nemesis(cluster, ["n1", "n2", "n3"], stop.signal, (l) => lines.push(l));
    await sleep(RUN_MS);
    stop.abort();
    const [{ history, stats }, faults] = await Promise.all([clients, chaos]);
    history.push(...await finalReads(proxy.url, KEYS));
    const share = (100 * stats.failed / stats.requests).toFixed(2);
    console.log(
      `replication fault test: ${stats.requests} requests, ${stats.failed} failed (${share}%), ` +
        `${faults} faults, ${history.length} ops checked`,
    );
    assert(faults >= 4, `only ${faults} faults`);
    assert(stats.requests > 200, `only ${stats.requests} requests`);
    // RINGKV_HISTORY_DUMP=file.json keeps the history for a failure's post-mortem.
    if (Deno.env.get("RINGKV_HISTORY_DUMP")) {
      await Deno.writeTextFile(Deno.env.get("RINGKV_HISTORY_DUMP")!, JSON.stringify(history));
    }
    const t = performance.now();
    assertEquals(checkHistory(history), null, lines.join("\n"));
    console.log(`linearizability check: ${(performance.now() - t).toFixed(0)} ms`);
    // Every final read got an answer (a majority is up), so no acknowledged write is missing.
    assert(history.slice(-KEYS).every((op) => op.result.status !== "unknown"));
  } finally {
    resumeAll(cluster);
    await cluster.stop();
  }
});

/** SIGCONT to every node, in case the test stopped while one was paused. */
function resumeAll(cluster: ProcessCluster): void {
  for (const node of cluster.nodes.values()) {
    try {
      Deno.kill(node.pid, "SIGCONT");
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound || err instanceof TypeError)) throw err;
    }
  }
}
