/**
 * The paired rig of docs/performance-history.md "What made it faster": 3 nodes and a proxy of the
 * checkout at ROOT (default: this one), 10,000 keys of 100 B loaded through the proxy, then
 * `wrk -t2 -c64 -d5s` (CONNS sets -c) GETs or PUTs over them; prints requests/s, p50, p99 and the **CPU time per
 * request** of the proxy and of the nodes (from /proc/PID/stat), which moves much less with
 * outside load than requests/s. Run it against two checkouts (`git worktree add`) in turn.
 *
 *     deno run -A tasks/bench/cpu_rig.ts get|put [REPLICAS]
 *     ROOT=/tmp/old deno run -A tasks/bench/cpu_rig.ts get
 *     deno run -A tasks/bench/cpu_rig.ts node      # one node alone: 100,000 keys, GETs
 *     deno run -A tasks/bench/cpu_rig.ts hono      # the Hono Map node the same way (its floor)
 *     deno run -A tasks/bench/cpu_rig.ts floor     # the node GET's contract, no ringkv code
 *     deno run -A tasks/bench/cpu_rig.ts nginx     # the bench's nginx over 3 nodes, GETs (needs nginx)
 *
 * Data nodes run with the V8 flags and environment the bench gives them (tasks/node_settings.ts);
 * the Hono Map node and the contract floor with none, as in the bench. wrk starts once the
 * servers have been idle for 1.5 s (past GcHint's full GC, 1 s after a bulk load's last write).
 * With PROF=DIR the proxy writes a V8 CPU profile into DIR, with NODE_PROF=DIR the nodes (and the
 * `node`, `hono`, `floor` servers) do; PROXY_FLAGS and NODE_FLAGS add deno flags to the proxy's
 * and to theirs. LARGE=1 also loads the bench's 10,000 keys of 4 KiB into the `node` and `hono`
 * modes (the bench's node holds them; they tip its load past GcHint's 32 MiB). THREADS=1 prints
 * the CPU per request of the first server by thread (`main`, the JS thread; V8's GC helpers;
 * others by name). WATCH=1 opens the
 * bench's watch load (100 idle and 10 busy streams, tasks/bench/watchers.ts) while wrk runs.
 * LAG=1 preloads tasks/bench/loop_lag.ts into the proxy and the nodes and prints their event
 * loops' lag over wrk's run, with the CPU of the rig itself (it reads the watch streams), of wrk
 * and of the whole host. GC=1 runs the proxy and the nodes with V8's `--trace-gc-nvp` and prints
 * their collections over wrk's run (count, pause ms, bytes promoted out of the young generation).
 * WRK_STARTS=PATH writes PATH just before wrk starts (tasks/bench/promoted_sites.ts waits for it).
 * PARSES=1 preloads tasks/bench/parse_count.ts into the proxy and prints its change pages parsed
 * again after their poll (per change polled) over wrk's run.
 * Linux only; needs wrk.
 *
 * @module
 */
import { NODE_ENV, NODE_V8_FLAGS } from "../node_settings.ts";
import { childPids, hostSeconds, settle, statSeconds } from "./cpu_time.ts";
import { loadNode } from "./load.ts";
import { lagLine, lagSummary } from "./loop_lag.ts";
import { nginxConfig } from "./nginx.ts";
import { countsBetween, parseLine } from "./parse_count.ts";
import { freePort } from "./processes.ts";
import { watcherPrefixes } from "./rounds.ts";
import { WATCH_LOAD } from "./table.ts";
import { Watchers } from "./watchers.ts";
import { wrkScript } from "./wrk.ts";

const root = Deno.env.get("ROOT") ?? new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const MODES = ["get", "put", "node", "hono", "floor", "nginx"] as const;
const USAGE =
  "usage: deno run -A tasks/bench/cpu_rig.ts [get|put [REPLICAS 1-3]|node|hono|floor|nginx]";
const chosen = MODES.find((m) => m === (Deno.args[0] ?? "get"));
const replicas = Deno.args[1] ?? "1";
// A typo (or --help) once ran the get mode: 3 nodes, a proxy and wrk, the mistake unread.
if (chosen === undefined || Deno.args.length > 2 || !["1", "2", "3"].includes(replicas)) {
  console.error(`Cannot run the rig with ${JSON.stringify(Deno.args.join(" "))}: ${USAGE}`);
  Deno.exit(2);
}
const mode: typeof MODES[number] = chosen;
if (Deno.args.length > 1 && mode !== "get" && mode !== "put") {
  console.error(`Cannot run the rig's ${mode} mode with REPLICAS: only get and put take it`);
  Deno.exit(2);
}
/** A whole number >= `min` from the environment variable `name`, else one line and exit 2. */
function envCount(name: string, fallback: number, min: number): number {
  const text = Deno.env.get(name);
  const value = Number(text ?? fallback);
  if (Number.isSafeInteger(value) && value >= min) return value;
  console.error(`Cannot run the rig with ${name}=${text}: it must be a whole number >= ${min}`);
  Deno.exit(2);
}
/** KEYS: how many keys the proxied modes load and drive (the bench's watch case: 100,000). */
const keys = envCount("KEYS", 10_000, 1);
// Checked before the temporary directory is made: a refusal leaves nothing behind.
/** CONNS: wrk's connections (64, as the bench). */
const conns = envCount("CONNS", 64, 2); // wrk's -t2 needs as many connections as threads
const prof = Deno.env.get("PROF");
const nodeProf = Deno.env.get("NODE_PROF");
/** GC=1: V8 reports every collection on the children's stdout, counted over wrk's run. */
const gcTrace = Deno.env.get("GC") === "1";
/** LARGE=1: the node and the Hono Map node also hold the bench's 10,000 keys of 4 KiB. */
const large = Deno.env.get("LARGE") === "1";
/** THREADS=1: the first child's CPU per request by thread (the JS thread, GC helpers, ...). */
const threads = Deno.env.get("THREADS") === "1";
const GC_FLAGS = gcTrace ? ",--trace-gc,--trace-gc-nvp" : "";
/**
 * A data node's deno flags: the V8 flags every launcher gives it (tasks/node_settings.ts, as
 * the bench starts it); the Hono Map node and the contract floor get none, as in the bench.
 * NODE_PROF and NODE_FLAGS apply to all three.
 */
function serverFlags(node: boolean): string[] {
  const v8 = node ? `${NODE_V8_FLAGS}${GC_FLAGS}` : GC_FLAGS && `--v8-flags=${GC_FLAGS.slice(1)}`;
  return [
    ...(v8 ? [v8] : []),
    ...(nodeProf ? ["--cpu-prof", `--cpu-prof-dir=${nodeProf}`] : []),
    ...(Deno.env.get("NODE_FLAGS")?.split(" ").filter(Boolean) ?? []),
  ];
}
const dir = await Deno.makeTempDir({ prefix: "ringkv-rig-" });
const children: Deno.ChildProcess[] = [];
/** Processes measured beside the children, not started by us directly (nginx's worker). */
const extraPids: number[] = [];
const lag = Deno.env.get("LAG") === "1";
/** The lag files of the children started with the probe, by name. */
const lagFiles = new Map<string, string>();
/** PARSES=1: the proxy counts its parses of change pages (tasks/bench/parse_count.ts). */
const parses = Deno.env.get("PARSES") === "1";
const parseFile = `${dir}/parses.json`;
/** wrk's run in wall ms, and the CPU seconds of the rig, of wrk and of the host over it. */
const window = { from: 0, to: 0, rig: 0, wrk: 0, hostBusy: 0, hostAll: 0, p50: 0, p99: 0 };

/** A percentile of wrk's `--latency` distribution, in ms. */
function wrkPercentileMs(out: string, pct: string): number {
  const m = new RegExp(`^\\s+${pct}%\\s+([\\d.]+)(us|ms|s)$`, "m").exec(out);
  if (!m) return NaN;
  return Number(m[1]) * ({ us: 0.001, ms: 1, s: 1000 } as Record<string, number>)[m[2]!]!;
}

function start(
  flags: string[],
  script: string,
  args: string[],
  name = "",
  env: Readonly<Record<string, string>> = {},
): Deno.ChildProcess {
  const probe = lag && name !== "";
  if (probe) lagFiles.set(name, `${dir}/lag-${name}.json`);
  const counted = parses && name === "proxy";
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      ...(probe ? ["--preload", new URL("./loop_lag.ts", import.meta.url).pathname] : []),
      ...(counted ? ["--preload", new URL("./parse_count.ts", import.meta.url).pathname] : []),
      ...flags,
      `${root}/${script}`,
      ...args,
    ],
    env: {
      ...env,
      RINGKV_CLUSTER_SECRET: "rig",
      ...(probe ? { LOOP_LAG_OUT: lagFiles.get(name)! } : {}),
      ...(counted ? { PARSE_COUNT_OUT: parseFile } : {}),
    },
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  children.push(child);
  return child;
}

/** Per child (by pid), the collections it reported (GC=1): running totals by kind. */
const gcStats = new Map<number, Map<string, GcTotals>>();

/** Collections of one kind: how many, their pauses, bytes promoted and copied in the young generation. */
interface GcTotals {
  n: number;
  ms: number;
  promoted: number;
  survived: number;
}

/** Adds the `GC: {...}` lines of `text` (V8's --trace-gc-nvp) to the child's totals. */
function countGc(pid: number, text: string): void {
  let stats = gcStats.get(pid);
  if (stats === undefined) gcStats.set(pid, stats = new Map());
  for (const m of text.matchAll(/GC: (\{[^\n]*\})/g)) {
    const gc = JSON.parse(m[1]!) as {
      gc: string;
      pause: number;
      promoted?: number;
      new_space_survived?: number;
    };
    const kind = stats.get(gc.gc) ?? { n: 0, ms: 0, promoted: 0, survived: 0 };
    kind.n++;
    kind.ms += gc.pause;
    kind.promoted += gc.promoted ?? 0;
    kind.survived += gc.new_space_survived ?? 0;
    stats.set(gc.gc, kind);
  }
}

/** A copy of every child's GC totals now. */
function gcSnapshot() {
  return new Map([...gcStats].map(([pid, s]) => [pid, structuredClone(s)]));
}

/** The URL a server prints once it listens. */
async function listening(child: Deno.ChildProcess): Promise<string> {
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  for (let i = 0; i < 1000 && !/listening on (\S+)/.test(text); i++) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`${root}: a server exited before listening`);
    text += value;
  }
  void (async () => {
    // A line may be cut between two reads: count whole lines only.
    let rest = "";
    for (let r = await reader.read(); !r.done; r = await reader.read()) {
      if (!gcTrace) continue;
      const upTo = (rest + r.value).lastIndexOf("\n") + 1;
      countGc(child.pid, (rest + r.value).slice(0, upTo));
      rest = (rest + r.value).slice(upTo);
    }
  })();
  return /listening on (\S+)/.exec(text)![1]!;
}

async function cpuSeconds(pid: number | "self"): Promise<number> {
  return statSeconds(await Deno.readTextFile(`/proc/${pid}/stat`)) ?? NaN;
}

/**
 * CPU seconds of each thread of `pid` by kind (THREADS=1): `main` for the JS thread (its tid is
 * the pid), the others by their name in /proc (V8's GC helpers, tokio's workers), summed.
 */
async function threadSeconds(pid: number): Promise<Map<string, number>> {
  const kinds = new Map<string, number>();
  for await (const task of Deno.readDir(`/proc/${pid}/task`)) {
    let line: string;
    try {
      line = await Deno.readTextFile(`/proc/${pid}/task/${task.name}/stat`);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      continue; // the thread ended between the listing and the read
    }
    const kind = Number(task.name) === pid
      ? "main"
      : line.slice(line.indexOf("(") + 1, line.lastIndexOf(")")).replace(/[\d-]+$/, "");
    kinds.set(kind, (kinds.get(kind) ?? 0) + (statSeconds(line) ?? 0));
  }
  return kinds;
}

/**
 * Waits (at most 60 s) until the children use under 2 % of a core over 3 windows of 0.5 s in a
 * row: a node loaded with 100,000 keys may still be writing the snapshot its log's growth set
 * off, and GcHint (node/engine/gc_hint.ts) runs its full GC 1 s after the last bulk write; both
 * would be counted against the GETs that follow (one quiet window let the GC fall inside wrk).
 */
async function idle(): Promise<void> {
  const procs = measured().map((pid) => ({ name: String(pid), pid }));
  if (await settle(procs, { maxMs: 60_000, underCores: 0.02, quietWindows: 3 })) return;
  console.error("cpu_rig: the servers were still busy after 60 s; measuring anyway");
}

/** The pids whose CPU is read: the children, then {@link extraPids}. */
function measured(): number[] {
  return [...children.map((c) => c.pid), ...extraPids];
}

/** Runs wrk with `lua` against `url`; requests/s and each child's CPU seconds used. */
async function drive(url: string, lua: string): Promise<{ requests: number; used: number[] }> {
  await Deno.writeTextFile(`${dir}/rig.lua`, lua);
  await idle();
  const before = await Promise.all(measured().map(cpuSeconds));
  const threads0 = threads ? await threadSeconds(children[0]!.pid) : undefined;
  const gc0 = gcSnapshot();
  const [rig0, host0] = [await cpuSeconds("self"), await hostSeconds()];
  window.from = Date.now();
  // Under /usr/bin/time when LAG=1: wrk's own CPU on stderr.
  const wrkArgs = ["-t2", `-c${conns}`, "-d5s", "--latency", "-s", `${dir}/rig.lua`, url];
  // WRK_STARTS=PATH: written now, for a tool that watches the run (promoted_sites.ts).
  const wrkStarts = Deno.env.get("WRK_STARTS");
  if (wrkStarts) await Deno.writeTextFile(wrkStarts, url);
  const wrk = await new Deno.Command(lag ? "/usr/bin/time" : "wrk", {
    args: lag ? ["-f", "wrkcpu %U %S", "wrk", ...wrkArgs] : wrkArgs,
    stdout: "piped",
    stderr: lag ? "piped" : "inherit",
  }).output();
  window.to = Date.now();
  if (gcTrace) printGc(gc0, gcSnapshot());
  const after = await Promise.all(measured().map(cpuSeconds));
  const host1 = await hostSeconds();
  window.rig = await cpuSeconds("self") - rig0;
  window.hostBusy = (host1?.busy ?? 0) - (host0?.busy ?? 0);
  window.hostAll = (host1?.all ?? 0) - (host0?.all ?? 0);
  const wrkCpu = /wrkcpu (\S+) (\S+)/.exec(
    // stderr is piped only under LAG=1; reading it otherwise throws.
    lag ? new TextDecoder().decode(wrk.stderr) : "",
  );
  window.wrk = wrkCpu ? Number(wrkCpu[1]) + Number(wrkCpu[2]) : 0;
  const out = new TextDecoder().decode(wrk.stdout);
  const requests = Number(/(\d+) requests in/.exec(out)![1]);
  window.p50 = wrkPercentileMs(out, "50");
  window.p99 = wrkPercentileMs(out, "99");
  if (threads0) printThreads(threads0, await threadSeconds(children[0]!.pid), requests);
  return { requests, used: after.map((a, i) => a - before[i]!) };
}

/** The first child's CPU µs per request by kind of thread, between two {@link threadSeconds}. */
function printThreads(before: Map<string, number>, after: Map<string, number>, requests: number) {
  const parts = [...after].map((
    [kind, s],
  ) => [kind, (s - (before.get(kind) ?? 0)) / requests * 1e6])
    .filter(([, us]) => Number(us) > 0.005).map(([kind, us]) => `${kind} ${Number(us).toFixed(2)}`);
  console.log(`CPU µs per request by thread, child 0: ${parts.join(", ")}`);
}

/** Each child's collections between two {@link gcSnapshot}s: s = scavenge, mc = mark-compact. */
function printGc(
  before: ReturnType<typeof gcSnapshot>,
  after: ReturnType<typeof gcSnapshot>,
): void {
  children.forEach((child, i) => {
    const parts = [...(after.get(child.pid) ?? [])].map(([kind, a]) => {
      const b = before.get(child.pid)?.get(kind) ?? { n: 0, ms: 0, promoted: 0, survived: 0 };
      const mb = (bytes: number) => (bytes / 1e6).toFixed(1);
      return `${kind} ${a.n - b.n} (${(a.ms - b.ms).toFixed(0)} ms, promoted ${
        mb(a.promoted - b.promoted)
      } MB, survived ${mb(a.survived - b.survived)} MB)`;
    });
    console.log(`GC over wrk's run, child ${i}: ${parts.join(", ") || "none"}`);
  });
}

/** Calls per internal route the nodes have answered, and their fsyncs (their /metrics). */
async function nodeCalls(nodes: string[]): Promise<Map<string, number>> {
  const calls = new Map<string, number>();
  const add = (name: string, n: number) => calls.set(name, (calls.get(name) ?? 0) + n);
  for (const url of nodes) {
    const res = await fetch(`${url}/metrics`, {
      headers: { authorization: "Bearer rig" },
      signal: AbortSignal.timeout(10_000),
    });
    const text = await res.text();
    const route = /^ringkv_node_requests_total\{[^}]*route="\/internal\/([\w/]+)"[^}]*\} (\d+)/gm;
    for (const m of text.matchAll(route)) add(m[1]!, Number(m[2]));
    const fsync = /^ringkv_node_fsync_duration_seconds_count\{[^}]*op="sync"[^}]*\} (\d+)/gm;
    for (const m of text.matchAll(fsync)) add("fsync", Number(m[1]));
    const syncSum = /^ringkv_node_fsync_duration_seconds_sum\{[^}]*op="sync"[^}]*\} ([\d.e+-]+)/gm;
    for (const m of text.matchAll(syncSum)) add(SYNC_SECONDS, Number(m[1]));
  }
  return calls;
}

/** The summed seconds of the log's fsyncs in {@link nodeCalls}' map (not a count). */
const SYNC_SECONDS = "sync seconds";

/**
 * The log's rounds: ms per fsync, and the share of the run each node's log spent in fsync
 * (near 100 %: the disk, not the pipeline to it, bounds the writes).
 */
function logRounds(before: Map<string, number>, after: Map<string, number>, nodes: number) {
  const delta = (name: string) => (after.get(name) ?? 0) - (before.get(name) ?? 0);
  const seconds = delta(SYNC_SECONDS);
  const ms = (seconds / Math.max(1, delta("fsync")) * 1000).toFixed(2);
  return `; fsync ${ms} ms each, log busy ${(seconds / nodes / 5 * 100).toFixed(0)} % per node`;
}

/** Per client request: each kind of node call and fsync, over all nodes. */
function perRequest(before: Map<string, number>, after: Map<string, number>, requests: number) {
  return [...after].filter(([name]) => name !== SYNC_SECONDS).map(([name, n]) =>
    `${name} ${((n - (before.get(name) ?? 0)) / requests).toFixed(3)}`
  )
    .join(", ");
}

/** Servers a `node`-like mode starts: the script, its arguments, and what the output calls it. */
const ALONE = {
  node: { script: "node/main.ts", args: ["--id", "n1", "--port", "0"], what: "node" },
  hono: {
    script: "tasks/bench/hono_map_node.ts",
    args: ["k:100000:100", ...(large ? ["b:10000:4096"] : [])],
    what: "hono map node",
  },
  floor: { script: "tasks/bench/serve_floor.ts", args: ["serve", "node"], what: "contract node" },
};

/** One server of {@link ALONE} holding the same 100,000 keys of 100 B, under GETs. */
async function nodeAlone(which: keyof typeof ALONE): Promise<void> {
  const { script, args, what } = ALONE[which];
  const node = which === "node";
  const data = node ? ["--data", `${dir}/n1`] : [];
  const url = await listening(
    start(serverFlags(node), script, [...args, ...data], "", node ? NODE_ENV : {}),
  );
  if (node) {
    await loadNode(url, "rig", { prefix: "k", count: 100_000, valueBytes: 100 });
    if (large) await loadNode(url, "rig", { prefix: "b", count: 10_000, valueBytes: 4096 });
  }
  const lua = wrkScript({
    prefix: "k",
    keys: 100_000,
    putRatio: 0,
    valueBytes: 100,
    headers: { authorization: "Bearer rig" },
  });
  const { requests, used } = await drive(url, lua);
  const us = (used[0]! / requests * 1e6).toFixed(2);
  console.log(`${what} GET: ${(requests / 5).toFixed(0)} req/s; CPU per request: ${what} ${us} µs`);
}

/** Starts the 3 nodes of the proxied modes; their URLs. */
function threeNodes(): Promise<string[]> {
  return Promise.all(
    ["n1", "n2", "n3"].map((id) =>
      listening(start(
        serverFlags(true),
        "node/main.ts",
        [
          ...["--id", id, "--port", "0", "--data", `${dir}/${id}`],
        ],
        id,
        NODE_ENV,
      ))
    ),
  );
}

/** Polls `url` until nginx answers (any status), at most 10 s. */
async function nginxAnswering(url: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      await (await fetch(url, { signal: AbortSignal.timeout(1000) })).body?.cancel();
      return;
    } catch (err) {
      if (!(err instanceof TypeError || err instanceof DOMException)) throw err;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`Cannot reach nginx at ${url}: no answer after 10 s`);
}

/** The bench's nginx (tasks/bench/nginx.ts) over 3 nodes that each hold every key, under GETs. */
async function nginxed(): Promise<void> {
  const nodes = await threeNodes();
  await Promise.all(
    nodes.map((url) => loadNode(url, "rig", { prefix: "k", count: keys, valueBytes: 100 })),
  );
  const port = freePort();
  const ngDir = `${dir}/nginx`;
  await Deno.mkdir(ngDir, { mode: 0o755 });
  await Deno.chmod(dir, 0o755); // workers may run as another user when we are root
  await Deno.writeTextFile(
    `${ngDir}/nginx.conf`,
    nginxConfig({ dir: ngDir, port, nodes, secret: "rig" }),
  );
  const master = new Deno.Command("nginx", {
    args: ["-p", ngDir, "-c", `${ngDir}/nginx.conf`, "-g", "daemon off;"],
    stdin: "null",
    stdout: "null",
  }).spawn();
  children.push(master);
  const url = `http://127.0.0.1:${port}`;
  await nginxAnswering(`${url}/kv/`);
  extraPids.push(...await childPids(master.pid));
  const probe = await fetch(`${url}/kv/k000001`, { signal: AbortSignal.timeout(10_000) });
  if (probe.status !== 200) throw new Error(`Cannot GET through nginx: status ${probe.status}`);
  await probe.body?.cancel();
  const lua = wrkScript({ prefix: "k", keys, putRatio: 0, valueBytes: 100 });
  const { requests, used } = await drive(url, lua);
  const nodesUs = (used[0]! + used[1]! + used[2]!) / requests * 1e6;
  const nginxUs = used.slice(3).reduce((a, b) => a + b, 0) / requests * 1e6;
  console.log(
    `NGINX GET: ${(requests / 5).toFixed(0)} req/s; CPU per request: ` +
      `nginx ${nginxUs.toFixed(1)} µs, nodes ${nodesUs.toFixed(1)} µs`,
  );
}

async function proxied(): Promise<void> {
  const nodes = await threeNodes();
  const proxyFlags = prof ? ["--cpu-prof", `--cpu-prof-dir=${prof}`] : [];
  if (gcTrace) proxyFlags.push(`--v8-flags=${GC_FLAGS.slice(1)}`);
  // PROXY_FLAGS: extra deno flags for the proxy (e.g. --v8-flags=--perf-basic-prof for perf).
  proxyFlags.push(...(Deno.env.get("PROXY_FLAGS")?.split(" ").filter(Boolean) ?? []));
  const proxy = start(proxyFlags, "proxy/main.ts", [
    ...["--port", "0", "--data", `${dir}/proxy`, "--nodes", nodes.join(",")],
    ...["--replicas", replicas],
  ], "proxy");
  const url = await listening(proxy);
  for (let b = 0; b < Math.ceil(keys / 1000); b++) {
    const set: Record<string, string> = {};
    for (let i = 0; i < 1000; i++) {
      set[`k${String(b * 1000 + i).padStart(6, "0")}`] = "v".repeat(100);
    }
    const res = await fetch(`${url}/kv`, {
      method: "POST",
      body: JSON.stringify({ set }),
      signal: AbortSignal.timeout(60_000),
    });
    await res.body?.cancel();
  }
  const lua = wrkScript({
    prefix: "k",
    keys,
    putRatio: mode === "put" ? 1 : 0,
    valueBytes: 100,
  });
  // WATCH_BUSY: how many of the watch load's streams are busy (10 by default; 0: idle only).
  const busy = Number(Deno.env.get("WATCH_BUSY") ?? WATCH_LOAD.busy);
  const watchers = Deno.env.get("WATCH") === "1"
    ? await Watchers.open(url, watcherPrefixes({ ...WATCH_LOAD, busy }))
    : undefined;
  const callsBefore = await nodeCalls(nodes);
  const read = watchers?.counts();
  const bytesRead = watchers?.bytes();
  let run;
  try {
    run = await drive(url, lua);
  } finally {
    await watchers?.close();
  }
  const { requests, used } = run;
  const callsAfter = await nodeCalls(nodes);
  const events = watchers === undefined
    ? ""
    : `; busy watcher events per PUT ${
      ((watchers.counts()[0]! - read![0]!) / requests).toFixed(3)
    }, bytes per event ${
      ((watchers.bytes()[0]! - bytesRead![0]!) / (watchers.counts()[0]! - read![0]!)).toFixed(0)
    }`;
  const nodesUs = (used[0]! + used[1]! + used[2]!) / requests * 1e6;
  const proxyUs = used[3]! / requests * 1e6;
  console.log(
    `${mode.toUpperCase()} x${replicas}: ${(requests / 5).toFixed(0)} req/s ` +
      `(p50 ${window.p50} ms, p99 ${window.p99} ms, ${conns} connections); CPU per request: ` +
      `proxy ${proxyUs.toFixed(1)} µs, nodes ${nodesUs.toFixed(1)} µs` +
      `; node calls per request: ${perRequest(callsBefore, callsAfter, requests)}` +
      `${logRounds(callsBefore, callsAfter, nodes.length)}${events}`,
  );
}

/** The lag the children's probes saw over wrk's run, and the CPU of the rig, wrk and host. */
async function printLag(): Promise<void> {
  const s = (window.to - window.from) / 1000;
  console.log(
    `CPU over wrk's run, cores: rig (watch readers) ${(window.rig / s).toFixed(2)}, wrk ${
      (window.wrk / s).toFixed(2)
    }, host ${(window.hostBusy / s).toFixed(2)} of ${(window.hostAll / s).toFixed(2)}`,
  );
  for (const [name, file] of lagFiles) {
    const samples = JSON.parse(await Deno.readTextFile(file)) as [number, number][];
    console.log(lagLine(name, lagSummary(samples, window.from, window.to)));
  }
}

let stopping: Promise<void> | undefined;
/** Stops the children once, newest first: the proxy before the nodes it would log failing. */
function stopChildren(): Promise<void> {
  return stopping ??= (async () => {
    for (const child of children.toReversed()) {
      try {
        child.kill("SIGINT");
      } catch (err) {
        if (!(err instanceof TypeError)) throw err; // it has exited (a Ctrl-C reached it too)
      }
      await child.status;
    }
  })();
}
/** Removes the rig's directory; both a signal and the end of the run may ask. */
async function removeDir(): Promise<void> {
  try {
    await Deno.remove(dir, { recursive: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}
// SIGTERM or Ctrl-C to the rig alone once left its servers running and its directory behind.
let signalled = false;
const onSignal = () => {
  signalled = true;
  stopChildren().finally(() => removeDir().finally(() => Deno.exit(130)));
};
Deno.addSignalListener("SIGINT", onSignal);
Deno.addSignalListener("SIGTERM", onSignal);

try {
  await (mode === "get" || mode === "put"
    ? proxied()
    : mode === "nginx"
    ? nginxed()
    : nodeAlone(mode));
} finally {
  await stopChildren();
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  try {
    if (lag && window.to > 0) await printLag();
    if (parses && window.to > 0) {
      const samples = JSON.parse(await Deno.readTextFile(parseFile));
      console.log(parseLine(countsBetween(samples, window.from, window.to)));
    }
  } finally {
    await removeDir();
    // A run the signal broke (its servers gone under it) exits as the signal says, not 1.
    if (signalled) Deno.exit(130);
  }
}
