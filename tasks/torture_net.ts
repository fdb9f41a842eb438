/**
 * `deno task torture --net [--runs N] [--seconds S] [--kinds a,b]`: network fault runs
 * (tests/helpers/net_scenarios.ts) with nodes and two proxies in their own network
 * namespaces, N runs of S seconds (default 1 of 60) per fault kind. Prints one line per run
 * and a markdown table (the one in docs/replication.md); exits 1 when any run had a
 * linearizability violation, a lost acknowledged write or replicas that did not converge.
 * Needs root, `ip netns` and `nft`.
 *
 * @module
 */
import { ConfigError } from "../shared/config.ts";
import { labUnavailable, NetLab } from "../tests/helpers/netns.ts";
import {
  FAULT_KINDS,
  type FaultKind,
  runFaults,
  type RunResult,
} from "../tests/helpers/net_scenarios.ts";

const USAGE = "usage: deno task torture --net [--runs N] [--seconds S] [--kinds kind,kind]";

/** Reads `--runs`, `--seconds`, `--kinds` (and `--net`); throws ConfigError on anything else. */
export function netArgs(args: string[]): { runs: number; seconds: number; kinds: FaultKind[] } {
  const given = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--net") continue;
    if (arg !== "--runs" && arg !== "--seconds" && arg !== "--kinds") {
      throw new ConfigError(`Unknown argument ${arg} (${USAGE})`);
    }
    const value = args[++i];
    if (value === undefined) throw new ConfigError(`${arg} needs a value (${USAGE})`);
    given.set(arg, value);
  }
  const runs = Number(given.get("--runs") ?? 1);
  const seconds = Number(given.get("--seconds") ?? 60);
  const kinds = (given.get("--kinds")?.split(",") ?? [...FAULT_KINDS]) as FaultKind[];
  const bad = kinds.find((k) => !FAULT_KINDS.includes(k));
  if (!Number.isInteger(runs) || runs < 1 || !(seconds > 0) || bad !== undefined) {
    throw new ConfigError(`${USAGE}\n(kinds: ${FAULT_KINDS.join(", ")})`);
  }
  return { runs, seconds, kinds };
}

function pct(n: number, of: number): string {
  return of === 0 ? "-" : `${(100 * n / of).toFixed(2)} %`;
}

/** The docs table: one row per fault kind, summed over its runs. */
export function table(results: RunResult[]): string {
  const rows = [
    "| fault kind | runs | requests | violations | lost writes | not converged | slowest convergence | unfinished | without a definite answer (all) | (majority side, after 1st timeout) | (no fault) |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
  ];
  for (const kind of new Set(results.map((r) => r.kind))) {
    const rs = results.filter((r) => r.kind === kind);
    const sum = (f: (r: RunResult) => number) => rs.reduce((a, r) => a + f(r), 0);
    const req = sum((r) => r.all.requests);
    const maj = sum((r) => r.majority.requests);
    const calm = sum((r) => r.calm.requests);
    rows.push(
      `| ${kind} | ${rs.length} | ${req} | ${sum((r) => r.violation === null ? 0 : 1)} | ` +
        `${sum((r) => r.lost.length)} | ${sum((r) => r.diverged.length)} | ` +
        `${Math.max(...rs.map((r) => r.convergedMs))} ms | ` +
        `${sum((r) => r.unfinished === undefined ? 0 : 1)} | ` +
        `${pct(sum((r) => r.all.indefinite), req)} | ` +
        `${pct(sum((r) => r.majority.indefinite), maj)} of ${maj} | ` +
        `${pct(sum((r) => r.calm.indefinite), calm)} of ${calm} |`,
    );
  }
  return rows.join("\n");
}

/** One run; a run that cannot finish (the cluster never settles) counts as unfinished. */
async function runOne(lab: NetLab, kind: FaultKind, seconds: number): Promise<RunResult> {
  try {
    return await runFaults(lab, kind, seconds * 1000, (l) => console.log(`  ${l}`));
  } catch (err) {
    if (!(err instanceof Error)) throw err;
    console.log(`${kind}: the run did not finish: ${err.message}`);
    for (const [name, p] of lab.proxies) {
      console.log(`  ${name} stderr:\n${p.proc.stderrLines.slice(-20).join("\n")}`);
    }
    const none = { requests: 0, indefinite: 0 };
    return {
      kind,
      faults: 0,
      seenInForce: 0,
      all: none,
      majority: none,
      calm: none,
      violation: null,
      lost: [],
      diverged: [],
      convergedMs: 0,
      unfinished: err.message,
    };
  }
}

/** Runs every run; returns the exit code. */
export async function tortureNet(args: string[]): Promise<number> {
  if (args.includes("--help") || args.includes("-h")) {
    console.log(`${USAGE}\n(kinds: ${FAULT_KINDS.join(", ")})`);
    return 0;
  }
  let parsed;
  try {
    parsed = netArgs(args);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    return 2;
  }
  const { runs, seconds, kinds } = parsed;
  const unavailable = await labUnavailable();
  if (unavailable !== null) {
    console.error(`Cannot run torture --net: ${unavailable}`);
    return 1;
  }
  const results: RunResult[] = [];
  // Run-major, so that a torture stopped early has as many runs of every kind.
  for (let run = 1; run <= runs; run++) {
    for (const kind of kinds) {
      const lab = await NetLab.create();
      try {
        const r = await runOne(lab, kind, seconds);
        results.push(r);
        console.log(
          `${kind} run ${run}: ${r.all.requests} requests, ${r.faults} faults ` +
            `(${r.seenInForce} seen in force), ` +
            `${pct(r.all.indefinite, r.all.requests)} indefinite (majority side ` +
            `${pct(r.majority.indefinite, r.majority.requests)}, calm ` +
            `${pct(r.calm.indefinite, r.calm.requests)}), ` +
            `${r.violation === null ? "linearizable" : `NOT linearizable (key ${r.violation})`}, ` +
            `${r.lost.length} lost, ${r.diverged.length} diverged (${r.convergedMs} ms), ` +
            `fast writes ${JSON.stringify(r.fast ?? {})}`,
        );
        for (const l of [...r.lost, ...r.diverged]) console.log(`  ! ${l}`);
      } finally {
        await lab.stop();
      }
    }
  }
  console.log(`\n${table(results)}`);
  const bad = results.some((r) =>
    r.violation !== null || r.lost.length + r.diverged.length > 0 || r.unfinished !== undefined
  );
  return bad ? 1 : 0;
}
