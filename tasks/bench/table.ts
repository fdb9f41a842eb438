/**
 * The bench's report: one row per case (requests/s, p50, p99, answers that were not
 * 2xx), ratios to the references measured in the same run, and the targets with
 * whether each is met. Pure: results in, text out.
 *
 * @module
 * @example
 * ```ts
 * import { targetChecks } from "./table.ts";
 * const r = (rps: number) => ({ requests: rps, seconds: 1, rps, p50Ms: 1, p99Ms: 2,
 *   maxMs: 3, non2xx: 0, socketErrors: 0 });
 * const checks = targetChecks([
 *   { target: "nginx", op: "GET", valueBytes: 100, result: r(1000) },
 *   { target: "proxy", op: "GET", valueBytes: 100, result: r(1300) },
 * ]);
 * console.assert(checks[0]!.met === true);
 * ```
 */
import type { WrkResult } from "./wrk.ts";

/** What a case drives. */
export type Target = "bare" | "node" | "nginx" | "proxy";
/** The request mix of a case. */
export type Op = "GET" | "PUT" | "MIX";

/** One measured case. */
export interface CaseResult {
  target: Target;
  op: Op;
  valueBytes: number;
  /** The median run (by requests/s) when the case ran several times. */
  result: WrkResult;
  /** Requests/s of every run, when it ran several times. */
  rpsRuns?: number[];
}

/** One of the targets, checked against a run. */
export interface TargetCheck {
  name: string;
  value: number;
  goal: string;
  met: boolean;
}

/** The name of a case, as the table shows it. */
export function caseName(c: Omit<CaseResult, "result">): string {
  const size = c.valueBytes >= 1024 ? `${c.valueBytes / 1024} KiB` : `${c.valueBytes} B`;
  const what = c.target === "bare" ? "bare Deno.serve" : c.target;
  return `${what} ${c.op === "MIX" ? "90/10 GET/PUT" : c.op} ${size}`;
}

function find(results: readonly CaseResult[], target: Target, op: Op, valueBytes = 100) {
  return results.find((c) => c.target === target && c.op === op && c.valueBytes === valueBytes);
}

/** `a / b`, or NaN when either is missing or b is 0. */
function ratio(a: number | undefined, b: number | undefined): number {
  return a === undefined || b === undefined || b === 0 ? NaN : a / b;
}

/** The run with the median requests/s (the lower middle one of an even count). */
export function medianRun(runs: readonly WrkResult[]): WrkResult {
  if (runs.length === 0) throw new RangeError("medianRun() needs at least one run");
  const sorted = [...runs].sort((a, b) => a.rps - b.rps);
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** (max - min) / median of the runs' requests/s, in percent; NaN for a single run. */
export function spreadPercent(c: CaseResult): number {
  const runs = c.rpsRuns ?? [];
  if (runs.length < 2) return NaN;
  return ((Math.max(...runs) - Math.min(...runs)) / c.result.rps) * 100;
}

/** The targets, as far as the cases measured allow. */
export function targetChecks(results: readonly CaseResult[]): TargetCheck[] {
  const proxyGet = find(results, "proxy", "GET")?.result;
  const nginxGet = find(results, "nginx", "GET")?.result;
  const checks: TargetCheck[] = [];
  const add = (name: string, value: number, goal: string, met: (v: number) => boolean) => {
    if (!Number.isNaN(value)) checks.push({ name, value, goal, met: met(value) });
  };
  add(
    "proxy GET / nginx GET (req/s)",
    ratio(proxyGet?.rps, nginxGet?.rps),
    ">= 1.2",
    (v) => v >= 1.2,
  );
  add(
    "proxy GET p99 / nginx GET p99",
    ratio(proxyGet?.p99Ms, nginxGet?.p99Ms),
    "<= 1.5",
    (v) => v <= 1.5,
  );
  add(
    "proxy durable PUT / proxy GET (req/s)",
    ratio(find(results, "proxy", "PUT")?.result.rps, proxyGet?.rps),
    ">= 0.7",
    (v) => v >= 0.7,
  );
  add(
    "node GET / bare Deno.serve (req/s)",
    ratio(find(results, "node", "GET")?.result.rps, find(results, "bare", "GET")?.result.rps),
    ">= 0.85",
    (v) => v >= 0.85,
  );
  return checks;
}

function fixed(n: number, digits: number): string {
  return Number.isNaN(n) ? "-" : n.toFixed(digits);
}

/**
 * The results as a Markdown table with ratios to nginx (same op and size) and to bare;
 * "spread" is (max - min) / median of the repeated runs.
 */
export function formatTable(results: readonly CaseResult[]): string {
  const bare = find(results, "bare", "GET")?.result.rps;
  const head = "| case | req/s | spread % | p50 ms | p99 ms | non-2xx | vs nginx | vs bare |";
  const rows = results.map((c) => {
    const nginx = find(results, "nginx", c.op, c.valueBytes)?.result.rps;
    const r = c.result;
    const vsNginx = c.target === "nginx" ? NaN : ratio(r.rps, nginx);
    return `| ${caseName(c)} | ${Math.round(r.rps)} | ${fixed(spreadPercent(c), 0)} | ${
      fixed(r.p50Ms, 2)
    } | ${fixed(r.p99Ms, 2)} | ${r.non2xx + r.socketErrors} | ${fixed(vsNginx, 2)} | ${
      fixed(ratio(r.rps, bare), 2)
    } |`;
  });
  return [head, "|---|---:|---:|---:|---:|---:|---:|---:|", ...rows].join("\n");
}

/** The targets as text lines, each with MET or NOT MET. */
export function formatTargets(checks: readonly TargetCheck[]): string {
  return checks.map((c) =>
    `${c.met ? "MET    " : "NOT MET"}  ${c.name}: ${c.value.toFixed(2)} (goal ${c.goal})`
  ).join("\n");
}
