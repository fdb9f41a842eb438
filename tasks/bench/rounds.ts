/**
 * The measuring side of `deno task bench`: the wrk script of each case, the warm-up pass over
 * every key, and the rounds, each running every case once in order so that a case and its
 * reference are measured seconds apart.
 *
 * @module
 */
import { join } from "@std/path";
import { type Processes, runWrk } from "./processes.ts";
import {
  caseName,
  type CaseResult,
  type CaseSpec,
  medianRun,
  sum,
  type Target,
  type WatchedRun,
  type WatcherCount,
} from "./table.ts";
import { cpuSnapshot, type CpuUse, cpuUse, settle, type Watched } from "./cpu_time.ts";
import { Watchers } from "./watchers.ts";
import { type WrkResult, wrkScript } from "./wrk.ts";

/** The options the rounds read. */
export interface RoundOptions {
  quick: boolean;
  duration: number;
  connections: number;
  threads: number;
  keys: number;
  repeat: number;
}

/** The URL of each target started. */
export type Urls = Partial<Record<Target, string>>;

/** The processes of each target whose CPU use is reported (every process it runs). */
export type CpuWatched = Partial<Record<Target, Watched[]>>;

type Options = RoundOptions;

/** Share of PUTs of each op. */
const PUT_RATIO: Record<CaseSpec["op"], number> = { GET: 0, PUT: 1, MIX: 0.1 };

/** Writes the Lua script of case `c` into the run's directory; its path. */
async function writeScript(procs: Processes, o: Options, c: CaseSpec) {
  const big = c.valueBytes > 100;
  const script = join(procs.dir, `${c.target}-${c.op}-${c.valueBytes}.lua`);
  // The Hono Map node and the contract floor get the node's request, secret included.
  const direct = c.target === "node" || c.target === "hono" || c.target === "floor";
  await Deno.writeTextFile(
    script,
    wrkScript({
      prefix: big ? "b" : "k",
      keys: big ? Math.max(1, Math.floor(o.keys / 10)) : o.keys,
      putRatio: PUT_RATIO[c.op],
      valueBytes: c.valueBytes,
      headers: direct ? { Authorization: `Bearer ${procs.secrets.clusterSecret}` } : {},
      api: c.target === "etcd" ? "etcd" : "kv",
    }),
  );
  return script;
}

/** wrk's threads and connections, the same for every case. */
const wrkShape = (o: Options) => ({ connections: o.connections, threads: o.threads });

/**
 * Reads every key once through nginx and the proxy before the first round, so that the
 * rounds measure both in steady state: the proxy has then seen each key's ring point (as it
 * has for keys written through it; the bench loads them into the nodes directly), and nginx
 * has its upstream connections. A cold proxy hashes each key it has not seen with Web
 * Crypto (docs/performance.md).
 */
async function primeKeys(procs: Processes, o: Options, urls: Urls, signal: AbortSignal) {
  const big = Math.max(1, Math.floor(o.keys / 10));
  const sets = [{ prefix: "k", keys: o.keys }, { prefix: "b", keys: big }];
  for (const target of (["nginx", "proxy"] as const)) {
    const url = urls[target];
    if (url === undefined) continue;
    for (const { prefix, keys } of sets) {
      const script = join(procs.dir, `prime-${target}-${prefix}.lua`);
      const sequential = { threads: o.threads };
      await Deno.writeTextFile(
        script,
        wrkScript({ prefix, keys, putRatio: 0, valueBytes: 0, sequential }),
      );
      // Passes until one covers every key (each starts again at the first key).
      let seconds = Math.max(1, Math.ceil((keys * 1.2) / 20_000));
      let result = await runWrk(url, script, { ...wrkShape(o), seconds }, signal);
      for (let pass = 2; pass <= 3 && result.requests < keys; pass++) {
        seconds = Math.ceil((keys * 1.2) / Math.max(1000, result.rps));
        result = await runWrk(url, script, { ...wrkShape(o), seconds }, signal);
      }
      console.log(
        `${target}: ${result.requests} reads over the ${keys} "${prefix}" keys (warm-up)`,
      );
    }
  }
}

function logRun(c: CaseSpec, result: WrkResult, watched?: WatchedRun): void {
  const errors = result.non2xx + result.socketErrors > 0
    ? `  (${result.non2xx} non-2xx, ${result.socketErrors} socket errors)`
    : "";
  const events = watched === undefined
    ? ""
    : `  busy watchers read ${Math.round(watched.busyEventsPerSec)} events/s each, idle ${
      Math.round(watched.idleEventsPerSec)
    }/s`;
  console.log(
    `${caseName(c).padEnd(34)} ${String(Math.round(result.rps)).padStart(7)} req/s  ` +
      `p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms${errors}${events}`,
  );
}

/** The prefixes of the watch case's streams: busy ones match every key its wrk writes. */
export function watcherPrefixes(w: WatcherCount): string[] {
  return [...Array(w.busy).fill("k"), ...Array(w.idle).fill("idle-nothing-written-here/")];
}

/** What the watchers read between two counts, `seconds` apart. */
function watchedRun(w: WatcherCount, before: number[], after: number[], seconds: number) {
  const read = after.map((n, i) => n - before[i]!);
  return {
    busyEventsPerSec: sum(read.slice(0, w.busy)) / Math.max(1, w.busy) / seconds,
    idleEventsPerSec: sum(read.slice(w.busy)) / seconds,
  };
}

/** The processes a case drives, and the run's others (idle clusters, references, the bench's). */
export interface CaseProcesses {
  own: readonly Watched[];
  rest: readonly Watched[];
}

/** How the run's other processes show in a case's CPU: one sum, no main thread. */
export const REST = "the bench's other processes";

/** Runs case `c` once (warm-up, then measured), with its watchers open when it has some. */
async function runCase(
  url: string,
  script: string,
  c: CaseSpec,
  shape: { connections: number; threads: number; warm: number; seconds: number },
  signal: AbortSignal,
  procs: CaseProcesses = { own: [], rest: [] },
): Promise<{ result: WrkResult; watched?: WatchedRun; cpu: CpuUse }> {
  // What an earlier case left running (a node's snapshot, a sweep of an idle cluster) is not
  // this case's to pay for: every process of the run settles first.
  if (!(await settle([...procs.own, ...procs.rest]))) {
    console.log(
      `  (${caseName(c)}: the bench's processes were still busy after 15 s; measuring anyway)`,
    );
  }
  const watchers = c.watchers && await Watchers.open(url, watcherPrefixes(c.watchers));
  try {
    await runWrk(url, script, { ...shape, seconds: shape.warm }, signal);
    const before = watchers?.counts();
    // The bench itself (it reads the watch streams) and wrk count as the case's own CPU too;
    // the run's other processes are read too, so that "other programs" means outside the bench.
    const all = procs.own.length === 0
      ? []
      : [...procs.own, { name: "bench", pid: Deno.pid }, ...procs.rest];
    const cpuBefore = await cpuSnapshot(all);
    const result = await runWrk(url, script, shape, signal);
    const used = cpuUse(cpuBefore, await cpuSnapshot(all), result.requests);
    const cpu = withWrk(foldRest(used, procs.rest), result);
    if (watchers === undefined || c.watchers === undefined) return { result, cpu };
    const watched = watchedRun(c.watchers, before!, watchers.counts(), result.seconds);
    return { result, watched, cpu };
  } finally {
    await watchers?.close();
  }
}

/** `use` with the `rest` processes summed into one entry, {@link REST}. */
export function foldRest(use: CpuUse, rest: readonly Watched[]): CpuUse {
  if (rest.length === 0) return use;
  const names = new Set(rest.map((p) => p.name));
  const fold = (values: Record<string, number>, into: boolean) => {
    const out: Record<string, number> = {};
    let sum = 0;
    for (const [name, v] of Object.entries(values)) {
      if (names.has(name)) sum += v;
      else out[name] = v;
    }
    if (into) out[REST] = sum;
    return out;
  };
  return {
    ...use,
    perRequest: fold(use.perRequest, true),
    cores: fold(use.cores, true),
    mainCores: fold(use.mainCores, false),
  };
}

/** `use` with wrk's own CPU (when it was read) as one more process. */
function withWrk(use: CpuUse, wrk: WrkResult): CpuUse {
  if (wrk.cpuSeconds === undefined || wrk.seconds <= 0) return use;
  return {
    ...use,
    perRequest: { ...use.perRequest, wrk: (wrk.cpuSeconds / wrk.requests) * 1e6 },
    cores: { ...use.cores, wrk: wrk.cpuSeconds / wrk.seconds },
  };
}

/**
 * Every process of the run but `own`, each once (a target's processes may serve others too: the
 * ring's nodes serve node, nginx and proxy), named apart from `own`'s.
 */
export function restOf(all: CpuWatched, own: readonly Watched[]): Watched[] {
  const taken = new Set(own.map((p) => p.pid));
  const rest: Watched[] = [];
  for (const [target, procs] of Object.entries(all)) {
    for (const p of procs ?? []) {
      if (taken.has(p.pid)) continue;
      taken.add(p.pid);
      rest.push({ name: `${target}/${p.name}`, pid: p.pid });
    }
  }
  return rest;
}

/** Every case `--repeat` times, in rounds that interleave the cases; the median run of each. */
export async function runCases(
  procs: Processes,
  o: Options,
  urls: Urls,
  cases: readonly CaseSpec[],
  signal: AbortSignal,
  cpuWatched: CpuWatched = {},
): Promise<CaseResult[]> {
  const seconds = o.quick ? 3 : o.duration;
  const warm = o.quick ? 1 : 2;
  const runs: WrkResult[][] = cases.map(() => []);
  const watched: WatchedRun[][] = cases.map(() => []);
  const cpu: CpuUse[][] = cases.map(() => []);
  // Each case's processes and the run's others, the same in every round.
  const processes = cases.map((c) => {
    const own = cpuWatched[c.target] ?? [];
    return { own, rest: restOf(cpuWatched, own) };
  });
  await primeKeys(procs, o, urls, signal);
  for (let round = 1; round <= o.repeat; round++) {
    console.log(`Round ${round} of ${o.repeat}`);
    for (const [i, c] of cases.entries()) {
      const script = await writeScript(procs, o, c);
      const shape = { ...wrkShape(o), warm, seconds };
      const run = await runCase(urls[c.target]!, script, c, shape, signal, processes[i]);
      runs[i]!.push(run.result);
      if (cpuWatched[c.target] !== undefined) cpu[i]!.push(run.cpu);
      if (run.watched) watched[i]!.push(run.watched);
      logRun(c, run.result, run.watched);
    }
  }
  return cases.map((c, i) => ({
    ...c,
    result: medianRun(runs[i]!),
    runs: runs[i]!,
    ...(c.watchers ? { watched: watched[i]! } : {}),
    ...(cpuWatched[c.target] ? { cpu: cpu[i]! } : {}),
  }));
}
