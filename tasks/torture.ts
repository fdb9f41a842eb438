/**
 * `deno task torture --minutes N`: the long version of tests/replication_fault_test.ts
 * for nightly runs. Rounds of 30 s on a 3-node cluster with 3 replicas: 8 clients over
 * 24 fresh keys per round while a nemesis kills/restarts and pauses/resumes one node
 * at a time; every other round, a fourth node is added, drained and removed, or killed and
 * force-removed (then a new one is added) between faults. Each
 * round's history must be linearizable; the failed-request share is printed per round.
 * Exits 1 on the first violation (the round's history is written to a JSON file).
 * With `--net`, network fault runs in namespaces instead (tasks/torture_net.ts).
 *
 * @module
 */
import { admin, ProcessCluster, waitStable } from "../tests/helpers/process_cluster.ts";
import { finalReads, nemesis, runClients, sleep } from "../tests/helpers/fault_workload.ts";
import { checkHistory } from "../tests/helpers/linearizability.ts";
import { tortureNet } from "./torture_net.ts";
import { ConfigError } from "../shared/config.ts";

const ROUND_MS = 30_000;
const KEYS = 24;

const USAGE = "usage: deno task torture [--minutes N], or with network faults " +
  "deno task torture --net [--runs N] [--seconds S] [--kinds kind,kind]";

/**
 * The minutes of a run from `args` (5 by default), or "help"; a mistyped flag or a bad
 * number is a ConfigError rather than a 5-minute run that ignores it.
 */
export function tortureArgs(args: readonly string[]): number | "help" {
  let minutes = 5;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--help" || arg === "-h") return "help";
    if (arg !== "--minutes") throw new ConfigError(`Unknown argument ${arg} (${USAGE})`);
    const raw = args[++i];
    minutes = Number(raw);
    if (raw === undefined || raw.trim() === "" || !Number.isFinite(minutes) || minutes <= 0) {
      throw new ConfigError(`Cannot use --minutes ${raw ?? ""}: it must be a number above 0`);
    }
  }
  return minutes;
}

/** One round: clients and nemesis for ROUND_MS, then the check. */
async function round(cluster: ProcessCluster, proxyUrl: string, r: number): Promise<boolean> {
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

/** The fourth node's id; a node force-removed is gone for good, so the next one gets a new id. */
let fourth = 4;

/**
 * Adds a fourth node (odd calls), kills it with SIGKILL and force-removes it (calls 2, 6, ...:
 * its ranges are copied again from the other replicas), or drains and removes it (calls 4, 8,
 * ...), waiting for each rebalancing. The map must answer 202 each time.
 */
async function reshape(cluster: ProcessCluster, proxyUrl: string, step: number): Promise<void> {
  const id = `n${fourth}`;
  let res: { status: number };
  if (step % 2 === 1) {
    const node = cluster.nodes.get(id) ?? await cluster.startNode(id);
    res = await admin(proxyUrl, "POST", "/cluster/nodes", { url: node.url, weight: 1 });
    console.log(`  add ${id}: ${res.status}`);
  } else if (step % 4 === 2) {
    await cluster.nodes.get(id)!.kill("SIGKILL");
    cluster.nodes.delete(id);
    fourth++;
    res = await admin(proxyUrl, "DELETE", `/cluster/nodes/${id}?force=true`);
    console.log(`  kill ${id} and force-remove it: ${res.status}`);
  } else {
    res = await admin(proxyUrl, "DELETE", `/cluster/nodes/${id}`);
    console.log(`  remove ${id}: ${res.status}`);
  }
  if (res.status !== 202) throw new Error(`the cluster refused to reshape: ${JSON.stringify(res)}`);
  await waitStable(proxyUrl, 0, 120_000);
}

async function main(): Promise<number> {
  let minutes;
  try {
    minutes = tortureArgs(Deno.args);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    return 2;
  }
  if (minutes === "help") {
    console.log(USAGE);
    return 0;
  }
  const cluster = await ProcessCluster.create();
  // Ctrl-C or SIGTERM to this process alone once left the cluster running and its directory.
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= cluster.stop());
  const onSignal = () => stop().finally(() => Deno.exit(130));
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
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
    await stop();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

if (import.meta.main) {
  Deno.exit(Deno.args.includes("--net") ? await tortureNet(Deno.args) : await main());
}
