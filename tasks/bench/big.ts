/**
 * The bench's large-data measurements (`--big`): RSS per key of a node holding 1,000,000
 * keys of 100 bytes, the restart time of that node, and adding a 4th node to a 3-node
 * cluster holding as many keys: how long it takes, what fraction of the keys moves, and
 * the GET throughput clients see meanwhile.
 *
 * @module
 */
import { join } from "@std/path";
import { loadNode, loadProxy } from "./load.ts";
import { type Processes, rssOf } from "./processes.ts";
import { parseWrkOutput, wrkArgs, type WrkResult, wrkScript } from "./wrk.ts";

/** What the large-data measurements found. */
export interface BigResult {
  keys: number;
  rssEmptyBytes: number;
  rssLoadedBytes: number;
  /** (loaded - empty) / keys. */
  rssPerKeyBytes: number;
  loadSeconds: number;
  /** SIGTERM to exit (includes the snapshot written on close). */
  stopSeconds: number;
  /** Spawn to `listening` with the keys loaded from disk. */
  restartSeconds: number;
  addNode?: {
    seconds: number;
    movedFraction: number;
    duringRebalance: WrkResult;
  };
}

const settle = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** RSS per key and restart time of one node with `keys` keys of 100 bytes. */
export async function measureNode(procs: Processes, keys: number): Promise<BigResult> {
  const node = await procs.node("big1");
  await settle(1000);
  const rssEmptyBytes = await rssOf(node.pid);
  const t0 = performance.now();
  await loadNode(node.url, procs.secrets.clusterSecret, {
    prefix: "m",
    count: keys,
    valueBytes: 100,
  });
  const loadSeconds = (performance.now() - t0) / 1000;
  await settle(3000);
  const rssLoadedBytes = await rssOf(node.pid);
  const t1 = performance.now();
  await procs.stop(node);
  const stopSeconds = (performance.now() - t1) / 1000;
  const t2 = performance.now();
  const again = await procs.node("big1", Number(new URL(node.url).port));
  const restartSeconds = (performance.now() - t2) / 1000;
  await procs.stop(again);
  return {
    keys,
    rssEmptyBytes,
    rssLoadedBytes,
    rssPerKeyBytes: (rssLoadedBytes - rssEmptyBytes) / keys,
    loadSeconds,
    stopSeconds,
    restartSeconds,
  };
}

interface ClusterView {
  nodes: { id: string; keys: number | null }[];
  rebalancing: unknown;
}

async function cluster(proxyUrl: string, token: string): Promise<ClusterView> {
  const res = await fetch(`${proxyUrl}/cluster`, {
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000),
  });
  if (!res.ok) throw new Error(`GET /cluster answered ${res.status}: ${await res.text()}`);
  return await res.json();
}

/** Adds a 4th node to a 3-node cluster of `keys` keys while wrk GETs through the proxy. */
export async function measureAddNode(
  procs: Processes,
  keys: number,
  wrk: { connections: number; threads: number },
): Promise<NonNullable<BigResult["addNode"]>> {
  const nodes = [];
  for (const id of ["a1", "a2", "a3"]) nodes.push(await procs.node(id));
  const [proxy] = await procs.proxies(nodes.map((n) => n.url), 1);
  await loadProxy(proxy!.url, { prefix: "m", count: keys, valueBytes: 100 });
  const fourth = await procs.node("a4");
  const script = join(procs.dir, "rebalance_get.lua");
  await Deno.writeTextFile(script, wrkScript({ prefix: "m", keys, putRatio: 0, valueBytes: 100 }));
  const wrkProcess = new Deno.Command("wrk", {
    args: wrkArgs(proxy!.url, script, { ...wrk, seconds: 600 }),
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const token = procs.secrets.adminToken;
  try {
    const t0 = performance.now();
    const res = await fetch(`${proxy!.url}/cluster/nodes`, {
      method: "POST",
      headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
      body: JSON.stringify({ url: fourth.url }),
      signal: AbortSignal.timeout(10_000),
    });
    if (res.status !== 202) throw new Error(`Cannot add node: ${res.status} ${await res.text()}`);
    await res.body?.cancel();
    const deadline = Date.now() + 600_000;
    let view = await cluster(proxy!.url, token);
    while (view.rebalancing !== null && Date.now() < deadline) {
      await settle(100);
      view = await cluster(proxy!.url, token);
    }
    const seconds = (performance.now() - t0) / 1000;
    wrkProcess.kill("SIGINT");
    const out = await wrkProcess.output();
    await settle(1500); // the nodes' key counts follow the drop
    view = await cluster(proxy!.url, token);
    const total = view.nodes.reduce((sum, n) => sum + (n.keys ?? 0), 0);
    const moved = view.nodes.find((n) => n.id === "a4")?.keys ?? 0;
    return {
      seconds,
      movedFraction: total > 0 ? moved / total : NaN,
      duringRebalance: parseWrkOutput(new TextDecoder().decode(out.stdout)),
    };
  } finally {
    try {
      wrkProcess.kill("SIGKILL");
    } catch { /* already ended */ }
    await wrkProcess.status;
  }
}

/** Lines for the report. */
export function formatBig(r: BigResult): string {
  const mb = (b: number) => (b / 1024 / 1024).toFixed(0);
  const lines = [
    `RSS per key, ${r.keys} keys of 100 B on one node: ${r.rssPerKeyBytes.toFixed(0)} B ` +
    `(RSS ${mb(r.rssEmptyBytes)} MiB empty, ${mb(r.rssLoadedBytes)} MiB loaded; ` +
    `Redis 7: ~185 B, goal <= 277 B)`,
    `Load of ${r.keys} keys: ${r.loadSeconds.toFixed(1)} s; stop (with snapshot): ` +
    `${r.stopSeconds.toFixed(2)} s`,
    `Restart of a node with ${r.keys} keys: ${r.restartSeconds.toFixed(2)} s (goal < 3 s)`,
  ];
  if (r.addNode) {
    const a = r.addNode;
    lines.push(
      `Adding a 4th node to 3 nodes holding ${r.keys} keys: ${a.seconds.toFixed(1)} s, ` +
        `${(a.movedFraction * 100).toFixed(1)}% of the keys moved (ideal 25%); ` +
        `GETs meanwhile: ${Math.round(a.duringRebalance.rps)} req/s, p99 ` +
        `${a.duringRebalance.p99Ms.toFixed(1)} ms, ${a.duringRebalance.non2xx} non-2xx`,
    );
  }
  return lines.join("\n");
}
