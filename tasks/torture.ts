/**
 * `deno task torture --minutes N`: the long version of tests/replication_fault_test.ts
 * for nightly runs. Rounds of 30 s on a 3-node cluster with 3 replicas: 8 clients over
 * 24 fresh keys per round while a nemesis kills/restarts and pauses/resumes one node
 * at a time; every other round, a fourth node is added or removed between faults. Each
 * round's history must be linearizable; the failed-request share is printed per round.
 * Exits 1 on the first violation (the round's history is written to a JSON file).
 *
 * @module
 */
import { admin, TestCluster, waitStable } from "../tests/helpers/cluster.ts";
import { finalReads, nemesis, runClients, sleep } from "../tests/helpers/fault_workload.ts";
import { checkHistory } from "../tests/helpers/linearizability.ts";

const ROUND_MS = 30_000;
const KEYS = 24;

function minutesArg(args: string[]): number {
  const i = args.indexOf("--minutes");
  const n = i === -1 ? 5 : Number(args[i + 1]);
  if (!Number.isFinite(n) || n <= 0) throw new Error("usage: deno task torture [--minutes N]");
  return n;
}

/** One round: clients and nemesis for ROUND_MS, then the check. */
async function round(cluster: TestCluster, proxyUrl: string, r: number): Promise<boolean> {
  const prefix = `r${r}k`;
  const stop = new AbortController();
  const clients = runClients(proxyUrl, { clients: 8, keys: KEYS, signal: stop.signal, prefix });
  const ids = ["n1", "n2", "n3"];
  const chaos = nemesis(cluster, ids, stop.signal, (l) => console.log(`  ${l}`));
  await sleep(ROUND_MS);
  stop.abort();
  const [{ history, stats }, faults] = await Promise.all([clients, chaos]);
  history.push(...await finalReads(proxyUrl, KEYS, prefix));
  const bad = checkHistory(history);
  const share = (100 * stats.failed / Math.max(1, stats.requests)).toFixed(2);
  console.log(
    `round ${r}: ${stats.requests} requests, ${stats.failed} failed (${share}%), ` +
      `${faults} faults: ${bad === null ? "linearizable" : `NOT linearizable (key ${bad})`}`,
  );
  if (bad !== null) {
    const file = await Deno.makeTempFile({ prefix: "ringkv-torture-", suffix: ".json" });
    await Deno.writeTextFile(file, JSON.stringify(history));
    console.log(`history written to ${file}`);
  }
  return bad === null;
}

/** Adds n4 (odd calls) or removes it (even calls), waiting for the rebalancing. */
async function reshape(cluster: TestCluster, proxyUrl: string, step: number): Promise<void> {
  if (step % 2 === 1) {
    const n4 = cluster.nodes.get("n4") ?? await cluster.startNode("n4");
    const res = await admin(proxyUrl, "POST", "/cluster/nodes", { url: n4.url, weight: 1 });
    console.log(`  add n4: ${res.status}`);
  } else {
    const res = await admin(proxyUrl, "DELETE", "/cluster/nodes/n4");
    console.log(`  remove n4: ${res.status}`);
  }
  await waitStable(proxyUrl, 0, 120_000);
}

async function main(): Promise<number> {
  const minutes = minutesArg(Deno.args);
  const cluster = await TestCluster.create();
  try {
    for (const id of ["n1", "n2", "n3"]) await cluster.startNode(id);
    const urls = [...cluster.nodes.values()].map((n) => n.url).join(",");
    const proxy = await cluster.startProxy("p1", [
      ...["--nodes", urls, "--replicas", "3", "--timeout-ms", "1000", "--probe-ms", "200"],
    ]);
    const deadline = Date.now() + minutes * 60_000;
    for (let r = 1; Date.now() < deadline; r++) {
      if (!await round(cluster, proxy.url, r)) return 1;
      if (r % 2 === 0) await reshape(cluster, proxy.url, r / 2);
    }
    return 0;
  } finally {
    await cluster.stop();
  }
}

if (import.meta.main) Deno.exit(await main());
