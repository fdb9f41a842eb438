/**
 * A PUT stall finder: the bench's default cluster (3 nodes, 3 replicas, one proxy, started as
 * `deno task bench` starts them) loaded with KEYS keys of 100 B (default 100,000), then
 * one-second `wrk -t2 -c64` PUT slices back to back for SECONDS (default 60). Prints one line
 * per slice: requests/s, p99 and max latency, the proxy's accept calls' time (until the answer's
 * headers), the nodes' log bytes, snapshots written, fsync time and accept route time in that
 * second (from their /metrics), and the host's load average, so a slow second can be put beside
 * what the nodes did in it, and a call's time beside the node's part of it.
 *
 *     deno run -A tasks/bench/put_timeline.ts
 *     KEYS=100000 SECONDS=90 SNAPSHOT_MIB=16 deno run -A tasks/bench/put_timeline.ts
 *
 * SNAPSHOT_MIB sets the nodes' `--snapshot-every-bytes` (default: the node's 64 MiB) so a
 * snapshot comes sooner. Linux only; needs wrk.
 *
 * @module
 */
import { statSeconds } from "./cpu_time.ts";
import { Processes } from "./processes.ts";
import { loadProxy } from "./load.ts";
import { parseWrkOutput, wrkArgs, wrkScript } from "./wrk.ts";

const keys = Number(Deno.env.get("KEYS") ?? 100_000);
const seconds = Number(Deno.env.get("SECONDS") ?? 60);
const snapshotMib = Deno.env.get("SNAPSHOT_MIB");
const secret = "timeline";
const dir = await Deno.makeTempDir({ prefix: "ringkv-timeline-" });
const processes = new Processes(dir, { clusterSecret: secret, adminToken: "timeline-admin" });

/** Per node: log bytes, snapshots written, fsync count and seconds of the log's syncs. */
interface NodeSample {
  wal: number;
  snapshots: number;
  syncs: number;
  syncSeconds: number;
  atomicSeconds: number;
  /** Seconds the node's `/internal/accept` route took in all, and how many calls. */
  acceptSeconds: number;
  accepts: number;
}

function metric(text: string, pattern: RegExp): number {
  return Number(pattern.exec(text)?.[1] ?? NaN);
}

async function sample(url: string): Promise<NodeSample> {
  const res = await fetch(`${url}/metrics`, {
    headers: { authorization: `Bearer ${secret}` },
    signal: AbortSignal.timeout(10_000),
  });
  const text = await res.text();
  return {
    wal: metric(text, /^ringkv_node_wal_bytes\{[^}]*\} (\d+)/m),
    snapshots: metric(text, /^ringkv_node_snapshot_bytes\{[^}]*\} (\d+)/m),
    syncs: metric(text, /^ringkv_node_fsync_duration_seconds_count\{op="sync"\} (\d+)/m),
    syncSeconds: metric(text, /^ringkv_node_fsync_duration_seconds_sum\{op="sync"\} ([\d.e-]+)/m),
    atomicSeconds: metric(
      text,
      /^ringkv_node_fsync_duration_seconds_sum\{op="write_atomic"\} ([\d.e-]+)/m,
    ),
    acceptSeconds: sumOf(
      text,
      /^ringkv_node_request_duration_seconds_sum\{[^}]*accept[^}]*\} (\S+)/,
    ),
    accepts: sumOf(text, /^ringkv_node_request_duration_seconds_count\{[^}]*accept[^}]*\} (\S+)/),
  };
}

/** The sum of a metric's values over the lines `pattern` matches (every label set). */
function sumOf(text: string, pattern: RegExp): number {
  let sum = 0;
  for (const line of text.split("\n")) {
    const m = pattern.exec(line);
    if (m) sum += Number(m[1]);
  }
  return sum;
}

/** CPU seconds a process has used (user + system). */
async function cpuSeconds(pid: number): Promise<number> {
  return statSeconds(await Deno.readTextFile(`/proc/${pid}/stat`)) ?? NaN;
}

/** What the proxy's metrics say: node calls by route and fast writes; its accept calls' time. */
interface ProxySample {
  counts: Map<string, number>;
  /** Seconds until the answer's headers, summed over the accept calls, and their count. */
  acceptSeconds: number;
  accepts: number;
}

/** The proxy's counters that say which path writes took: node calls by route, fast writes. */
async function proxyCounts(url: string): Promise<ProxySample> {
  const res = await fetch(`${url}/metrics`, {
    headers: { authorization: "Bearer timeline-admin" },
    signal: AbortSignal.timeout(10_000),
  });
  const counts = new Map<string, number>();
  const add = (name: string, n: number) => counts.set(name, (counts.get(name) ?? 0) + n);
  const sample: ProxySample = { counts, acceptSeconds: 0, accepts: 0 };
  for (const line of (await res.text()).split("\n")) {
    const call =
      /^ringkv_proxy_node_calls_total\{[^}]*route="\/internal\/([\w/]+)"[^}]*outcome="(\w+)"[^}]*\} (\d+)/
        .exec(line);
    if (call) add(`${call[1]}${call[2] === "2xx" ? "" : ":" + call[2]}`, Number(call[3]));
    const fast = /^ringkv_proxy_fast_writes_total\{outcome="(\w+)"\} (\d+)/.exec(line);
    if (fast && fast[1] !== "decided") add(`fast:${fast[1]}`, Number(fast[2]));
    const paused = /^ringkv_proxy_fast_writes_paused_total (\d+)/.exec(line);
    if (paused) add("paused", Number(paused[1]));
    const took =
      /^ringkv_proxy_node_call_duration_seconds_(sum|count)\{[^}]*route="\/internal\/accept"[^}]*\} (\S+)/
        .exec(line);
    if (took?.[1] === "sum") sample.acceptSeconds += Number(took[2]);
    if (took?.[1] === "count") sample.accepts += Number(took[2]);
  }
  return sample;
}

/** ms per event of a summed duration between two samples (NaN without events). */
function msEach(seconds: number, events: number): string {
  return events > 0 ? (seconds / events * 1000).toFixed(1) : "NaN";
}

function countsDelta(before: Map<string, number>, after: Map<string, number>): string {
  return [...after].map(([k, n]) => [k, n - (before.get(k) ?? 0)] as const)
    .filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(" ");
}

async function loadAverage(): Promise<string> {
  return (await Deno.readTextFile("/proc/loadavg")).split(" ")[0]!;
}

async function slices(proxy: string, nodes: string[], pids: number[]): Promise<void> {
  const script = `${dir}/put.lua`;
  await Deno.writeTextFile(script, wrkScript({ prefix: "k", keys, putRatio: 1, valueBytes: 100 }));
  let before = await Promise.all(nodes.map(sample));
  let cpuBefore = await Promise.all(pids.map(cpuSeconds));
  let callsBefore = await proxyCounts(proxy);
  const start = performance.now();
  for (let i = 0; i < seconds; i++) {
    const out = await new Deno.Command("wrk", {
      args: wrkArgs(proxy, script, { connections: 64, threads: 2, seconds: 1 }),
      stdout: "piped",
    }).output();
    const r = parseWrkOutput(new TextDecoder().decode(out.stdout));
    const after = await Promise.all(nodes.map(sample));
    const cpu = await Promise.all(pids.map(cpuSeconds));
    const calls = await proxyCounts(proxy);
    const perNode = after.map((a, n) => {
      const b = before[n]!;
      const syncMs = ((a.syncSeconds - b.syncSeconds) / Math.max(1, a.syncs - b.syncs)) * 1000;
      // A snapshot restarts the log; write_atomic also counts acceptor.json, cluster.json and map_vote.json.
      const snap = a.wal < b.wal || a.snapshots !== b.snapshots ? " SNAP" : "";
      const atomicMs = (a.atomicSeconds - b.atomicSeconds) * 1000;
      const atomic = atomicMs > 0 ? ` atomic ${atomicMs.toFixed(0)}ms` : "";
      const route = msEach(a.acceptSeconds - b.acceptSeconds, a.accepts - b.accepts);
      return `${(a.wal / 2 ** 20).toFixed(1)}M sync ${
        syncMs.toFixed(1)
      }ms route ${route}ms${atomic}${snap}`;
    });
    const t = ((performance.now() - start) / 1000).toFixed(1);
    const cpuText = cpu.map((c, n) => ((c - cpuBefore[n]!) / r.seconds * 100).toFixed(0)).join("/");
    console.log(
      `t=${t}s ${r.rps.toFixed(0)} req/s p99 ${r.p99Ms.toFixed(0)} max ${r.maxMs.toFixed(0)} ms` +
        ` non2xx ${r.non2xx} | accept call ${
          msEach(
            calls.acceptSeconds - callsBefore.acceptSeconds,
            calls.accepts - callsBefore.accepts,
          )
        }ms | ${perNode.join(" | ")} | cpu% n/n/n/proxy ${cpuText}` +
        ` | ${countsDelta(callsBefore.counts, calls.counts)} | load ${await loadAverage()}`,
    );
    before = after;
    cpuBefore = cpu;
    callsBefore = calls;
  }
}

try {
  const nodes = [];
  const pids = [];
  for (const id of ["n1", "n2", "n3"]) {
    const extra = snapshotMib ? ["--snapshot-every-bytes", String(Number(snapshotMib) << 20)] : [];
    const node = await processes.node(id, 0, extra);
    nodes.push(node.url);
    pids.push(node.pid);
  }
  const [proxy] = await processes.proxies(nodes, 1, 3);
  pids.push(proxy!.pid);
  await loadProxy(proxy!.url, { prefix: "k", count: keys, valueBytes: 100 });
  console.log(`loaded ${keys} keys; load average ${await loadAverage()}`);
  await slices(proxy!.url, nodes, pids);
} finally {
  await processes.stopAll();
  await Deno.remove(dir, { recursive: true });
}
