/**
 * The bench's report: one row per case (requests/s, its spread, p50, p99, answers that
 * were not 2xx), then every ratio between a case and its reference, each taken round by
 * round (the rounds interleave the cases) and shown with its median and range, and the
 * issue's targets with whether the median meets them. Pure: results in, text out.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ratioRows } from "./table.ts";
 * const r = (rps: number) => ({ requests: rps, seconds: 1, rps, p50Ms: 1, p99Ms: 2,
 *   maxMs: 3, non2xx: 0, socketErrors: 0 });
 * const rows = ratioRows([
 *   { target: "nginx", op: "GET", valueBytes: 100, result: r(1000), runs: [r(1000)] },
 *   { target: "proxy", op: "GET", valueBytes: 100, result: r(1300), runs: [r(1300)] },
 * ]);
 * assertEquals(rows[0]!.median, 1.3);
 * assertEquals(rows[0]!.met, true);
 * ```
 */
import type { CpuUse } from "./cpu_time.ts";
import type { WrkResult } from "./wrk.ts";

/** What a case drives. */
export type Target =
  | "bare"
  | "hono"
  | "floor"
  | "node"
  | "nginx"
  | "proxy"
  | "cluster"
  | "etcd"
  | "watch";
/** The request mix of a case. */
export type Op = "GET" | "PUT" | "MIX";

/** Watch streams open on the proxy while a case runs: `idle` match no key, `busy` every key. */
export interface WatcherCount {
  idle: number;
  busy: number;
}

/** A case before it runs. */
export interface CaseSpec {
  target: Target;
  op: Op;
  valueBytes: number;
  /** Watchers open while it runs (none when absent). */
  watchers?: WatcherCount;
}

/** One measured case. */
export interface CaseResult extends CaseSpec {
  /** The median run (by requests/s) when the case ran several times. */
  result: WrkResult;
  /** Every run, in round order. */
  runs: WrkResult[];
  /** With watchers: events each busy watcher read per second, and idle ones in all, per run. */
  watched?: WatchedRun[];
  /** Per run, the CPU each of the target's processes used, and the host's (Linux). */
  cpu?: CpuUse[];
}

/** What the watchers of one run read while wrk measured. */
export interface WatchedRun {
  /** Events per second per busy watcher (the mean over them). */
  busyEventsPerSec: number;
  /** Events per second all idle watchers read together (0 when their prefix matches nothing). */
  idleEventsPerSec: number;
}

/** A goal on a ratio: at least or at most `value`. */
export interface Goal {
  atLeast?: number;
  atMost?: number;
}

/** A ratio between two cases, `a / b`, of requests/s or of p99 latency. */
export interface Comparison {
  a: CaseSpec;
  b: CaseSpec;
  metric: "rps" | "p99";
  goal?: Goal;
}

/** A ratio as measured: median and range over the rounds. */
export interface RatioRow {
  name: string;
  median: number;
  min: number;
  max: number;
  rounds: number;
  goal?: Goal;
  /** Whether the median meets the goal (undefined without one). */
  met?: boolean;
}

const NAMES: Record<Target, string> = {
  bare: "bare Deno.serve",
  hono: "Hono Map node",
  floor: "node contract floor (no ringkv code)",
  node: "node",
  nginx: "nginx",
  proxy: "proxy",
  cluster: "ringkv 3-replica",
  etcd: "etcd 3-member",
  watch: "ringkv 3-replica",
};

/** The name of a case, as the table shows it. */
export function caseName(c: CaseSpec): string {
  const size = c.valueBytes >= 1024 ? `${c.valueBytes / 1024} KiB` : `${c.valueBytes} B`;
  const name = `${NAMES[c.target]} ${c.op === "MIX" ? "90/10 GET/PUT" : c.op} ${size}`;
  if (c.target !== "watch") return name;
  const w = c.watchers;
  return w === undefined
    ? `${name}, no watcher`
    : `${name}, ${w.idle} idle + ${w.busy} busy watchers`;
}

const at = (target: Target, op: Op, valueBytes = 100): CaseSpec => ({ target, op, valueBytes });

/** The watchers of the watch case (issue 15: what watchers cost writers). */
export const WATCH_LOAD: WatcherCount = { idle: 100, busy: 10 };

/**
 * Every ratio the bench reports; those with a goal are issue 13's and 15's targets (never asserted
 * in tests: the machine's load moves them).
 */
export const COMPARISONS: readonly Comparison[] = [
  { a: at("proxy", "GET"), b: at("nginx", "GET"), metric: "rps", goal: { atLeast: 1.0 } },
  { a: at("proxy", "GET"), b: at("nginx", "GET"), metric: "p99", goal: { atMost: 1.5 } },
  { a: at("proxy", "PUT"), b: at("nginx", "PUT"), metric: "rps" },
  { a: at("proxy", "MIX"), b: at("nginx", "MIX"), metric: "rps" },
  { a: at("proxy", "GET", 4096), b: at("nginx", "GET", 4096), metric: "rps" },
  { a: at("proxy", "PUT"), b: at("proxy", "GET"), metric: "rps" },
  { a: at("node", "GET"), b: at("hono", "GET"), metric: "rps", goal: { atLeast: 0.9 } },
  // What the node's contract (auth, 431 pass, ETag) leaves of the target, without ringkv.
  { a: at("floor", "GET"), b: at("hono", "GET"), metric: "rps" },
  { a: at("node", "GET"), b: at("floor", "GET"), metric: "rps" },
  { a: at("node", "GET"), b: at("bare", "GET"), metric: "rps" },
  { a: at("hono", "GET"), b: at("bare", "GET"), metric: "rps" },
  { a: at("cluster", "GET"), b: at("etcd", "GET"), metric: "rps", goal: { atLeast: 2.0 } },
  { a: at("cluster", "PUT"), b: at("etcd", "PUT"), metric: "rps", goal: { atLeast: 1.5 } },
  { a: at("cluster", "GET"), b: at("etcd", "GET"), metric: "p99" },
  { a: at("cluster", "PUT"), b: at("etcd", "PUT"), metric: "p99" },
  {
    a: { ...at("watch", "PUT"), watchers: WATCH_LOAD },
    b: at("watch", "PUT"),
    metric: "rps",
    goal: { atLeast: 0.9 },
  },
];

/** Whether two cases are the same (target, mix, size and watchers). */
export function sameCase(a: CaseSpec, b: CaseSpec): boolean {
  return a.target === b.target && a.op === b.op && a.valueBytes === b.valueBytes &&
    a.watchers?.idle === b.watchers?.idle && a.watchers?.busy === b.watchers?.busy;
}

function find(results: readonly CaseResult[], s: CaseSpec): CaseResult | undefined {
  return results.find((c) => sameCase(c, s));
}

/** The run with the median requests/s (the lower middle one of an even count). */
export function medianRun(runs: readonly WrkResult[]): WrkResult {
  if (runs.length === 0) throw new RangeError("medianRun() needs at least one run");
  const sorted = [...runs].sort((a, b) => a.rps - b.rps);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** The median of numbers (the mean of the middle two of an even count). */
export function median(values: readonly number[]): number {
  if (values.length === 0) throw new RangeError("median() needs at least one value");
  const s = [...values].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** (max - min) / median of the runs' requests/s, in percent; NaN for a single run. */
export function spreadPercent(c: CaseResult): number {
  if (c.runs.length < 2) return NaN;
  const rps = c.runs.map((r) => r.rps);
  return ((Math.max(...rps) - Math.min(...rps)) / median(rps)) * 100;
}

function meets(goal: Goal, value: number): boolean {
  return (goal.atLeast === undefined || value >= goal.atLeast) &&
    (goal.atMost === undefined || value <= goal.atMost);
}

/**
 * The ratios whose two cases were both measured, each from the runs of the same round
 * (run i of `a` over run i of `b`, measured minutes apart at most).
 */
export function ratioRows(
  results: readonly CaseResult[],
  comparisons: readonly Comparison[] = COMPARISONS,
): RatioRow[] {
  const rows: RatioRow[] = [];
  for (const cmp of comparisons) {
    const a = find(results, cmp.a);
    const b = find(results, cmp.b);
    if (a === undefined || b === undefined) continue;
    const value = (r: WrkResult) => (cmp.metric === "rps" ? r.rps : r.p99Ms);
    const rounds = Math.min(a.runs.length, b.runs.length);
    const ratios = [];
    for (let i = 0; i < rounds; i++) ratios.push(value(a.runs[i]!) / value(b.runs[i]!));
    const finite = ratios.filter(Number.isFinite);
    if (finite.length === 0) continue;
    const suffix = cmp.metric === "p99" ? " p99" : "";
    const m = median(finite);
    rows.push({
      name: `${caseName(cmp.a)}${suffix} / ${caseName(cmp.b)}${suffix}`,
      median: m,
      min: Math.min(...finite),
      max: Math.max(...finite),
      rounds: finite.length,
      ...(cmp.goal ? { goal: cmp.goal, met: meets(cmp.goal, m) } : {}),
    });
  }
  return rows;
}

function fixed(n: number, digits: number): string {
  return Number.isNaN(n) ? "-" : n.toFixed(digits);
}

/** The cases as a Markdown table; "spread" is (max - min) / median of the repeated runs. */
export function formatTable(results: readonly CaseResult[]): string {
  const head = "| case | req/s | spread % | p50 ms | p99 ms | non-2xx |";
  const rows = results.map((c) => {
    const r = c.result;
    return `| ${caseName(c)} | ${Math.round(r.rps)} | ${fixed(spreadPercent(c), 0)} | ${
      fixed(r.p50Ms, 2)
    } | ${fixed(r.p99Ms, 2)} | ${r.non2xx + r.socketErrors} |`;
  });
  return [head, "|---|---:|---:|---:|---:|---:|", ...rows].join("\n");
}

/**
 * What the watchers read in each case that had some: events per second per busy watcher
 * against the case's writes per second (a watcher that gets nothing cannot look cheap).
 */
export function formatWatched(results: readonly CaseResult[]): string {
  const lines = [];
  for (const c of results) {
    if (c.watched === undefined) continue;
    const runs = c.watched.map((w, i) => {
      const share = w.busyEventsPerSec / c.runs[i]!.rps;
      return `${Math.round(w.busyEventsPerSec)}/s per busy watcher (${
        (share * 100).toFixed(0)
      } % of writes), idle ${Math.round(w.idleEventsPerSec)}/s`;
    });
    lines.push(`${caseName(c)}: ${runs.join("; ")}`);
  }
  return lines.join("\n");
}

/** The sum of numbers. */
export function sum(values: readonly number[]): number {
  return values.reduce((a, b) => a + b, 0);
}

/** Cores under which a process counts as idle in {@link formatCpu}. */
const IDLE_CORES = 0.005;

/** A main thread busy this share of a core or more is what caps its case's requests/s. */
export const THREAD_BOUND = 0.85;

/**
 * CPU by process of the cases that measured it, each value the median over the runs: µs per
 * request (the cost behind a ratio, which load on a shared machine moves less than requests/s),
 * then the cores it kept busy, all threads / its main thread, and the host's busy cores. A
 * process whose main thread was busy {@link THREAD_BOUND} of a core or more is named at the
 * end of its line: a Deno server runs its JavaScript on that one thread, so it caps the case.
 */
export function formatCpu(results: readonly CaseResult[]): string {
  const lines = [];
  for (const c of results) {
    const runs = c.cpu ?? [];
    const med = (pick: (r: CpuUse) => number | undefined) => {
      const values = runs.map(pick).filter((v): v is number => v !== undefined);
      return values.length === 0 ? NaN : median(values);
    };
    // A process that stayed idle (nginx's master; the bench with no stream to read) is left out.
    const names = [...new Set(runs.flatMap((r) => Object.keys(r.perRequest)))]
      .filter((name) => med((r) => r.cores[name]) >= IDLE_CORES);
    if (names.length === 0) continue;
    const bound: string[] = [];
    const parts = names.map((name) => {
      const main = med((r) => r.mainCores[name]);
      if (main >= THREAD_BOUND) bound.push(name);
      const cores = med((r) => r.cores[name]).toFixed(2);
      // wrk's CPU is read as a whole (it has ended): no main thread of its own to show.
      const busy = Number.isNaN(main) ? cores : `${cores}/${main.toFixed(2)}`;
      return `${name} ${Math.round(med((r) => r.perRequest[name]))} µs ${busy}`;
    });
    const hosts = runs.flatMap((r) =>
      r.host ? [{ ...r.host, ours: sum(Object.values(r.cores)) }] : []
    );
    const host = hosts.length === 0
      ? ""
      : `; host ${median(hosts.map((h) => h.busy)).toFixed(2)} of ${hosts[0]!.cores} cores busy, ${
        median(hosts.map((h) => Math.max(0, h.busy - h.ours))).toFixed(2)
      } of them by other programs`;
    const note = bound.length === 0 ? "" : ` (main thread at its limit: ${bound.join(", ")})`;
    lines.push(`${caseName(c)}: ${parts.join(", ")}${host}${note}`);
  }
  return lines.join("\n");
}

function goalText(goal: Goal | undefined): string {
  if (goal === undefined) return "";
  return goal.atLeast !== undefined ? `>= ${goal.atLeast.toFixed(1)}` : `<= ${goal.atMost}`;
}

/**
 * The ratios as a Markdown table: the median over the rounds, the lowest and highest
 * round, and the goal with MET or NOT MET (by the median).
 */
export function formatRatios(rows: readonly RatioRow[]): string {
  const head = "| ratio | median | min–max over rounds | goal | |";
  const lines = rows.map((r) => {
    const verdict = r.met === undefined ? "" : r.met ? "MET" : "NOT MET";
    return `| ${r.name} | ${r.median.toFixed(2)} | ${r.min.toFixed(2)}–${
      r.max.toFixed(2)
    } (${r.rounds}) | ${goalText(r.goal)} | ${verdict} |`;
  });
  return [head, "|---|---:|---:|---:|---|", ...lines].join("\n");
}
