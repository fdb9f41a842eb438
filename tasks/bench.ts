/**
 * `deno task bench`: starts, each in its own part of a temporary directory, 3 data nodes
 * and the proxy, the references over the same nodes (a node alone, nginx with consistent
 * hashing), a bare `Deno.serve` and a minimal Hono Map node, and a default 3-replica ringkv
 * cluster next to a 3-member etcd; loads keys into them, drives each case with wrk in
 * interleaved rounds (the watch case: PUTs to its own 3-replica cluster with no watcher, then
 * with 100 idle and 10 busy watch streams reading) and prints one table of cases and one of
 * ratios (median and range over the rounds) with the targets. Writes the numbers as JSON
 * (`.bench/results-<time>.json`). `--big` adds the 1,000,000-key measurements (RSS per key,
 * restart, adding a node). docs/performance.md describes it and has a run.
 *
 * @module
 */
import { join } from "@std/path";
import {
  checkRange,
  ConfigError,
  envNames,
  type FlagValues,
  helpText,
  parseFlags,
} from "../shared/config.ts";
import { type BigResult, formatBig, measureAddNode, measureNode } from "./bench/big.ts";
import { onlyTargets, planCases, TOOLS } from "./bench/cases.ts";
import { hasCommand } from "./bench/processes.ts";
import { runCases } from "./bench/rounds.ts";
import { newRun, type Run, startTargets } from "./bench/targets.ts";
import {
  type CaseResult,
  type CaseSpec,
  formatCpu,
  formatRatios,
  formatTable,
  formatWatched,
  ratioRows,
} from "./bench/table.ts";

const SPEC = {
  quick: {
    type: "bool",
    default: false,
    help: "short run: 3 s per case (over --duration), 1 s warm-up",
  },
  duration: { type: "int", default: 10, help: "seconds of each measured case" },
  connections: { type: "int", default: 64, help: "wrk connections" },
  threads: { type: "int", default: 2, help: "wrk threads" },
  keys: { type: "int", default: 100_000, help: "keys of 100 B (keys/10 of 4 KiB)" },
  proxies: { type: "int", default: 1, help: "proxy processes sharing the port (reusePort)" },
  replicas: {
    type: "int",
    default: 1,
    help: "replicas of the proxy target (1 compares with nginx; the cluster target has 3)",
  },
  only: {
    type: "list",
    default: [] as string[],
    help: "only these targets: bare,floor,hono,node,nginx,proxy,etcd,cluster,watch",
  },
  big: { type: "bool", default: false, help: "also the 1,000,000-key measurements (minutes)" },
  bigKeys: { type: "int", default: 1_000_000, help: "keys of the --big measurements" },
  repeat: { type: "int", default: 1, help: "rounds of every case, interleaved (median shown)" },
  out: { type: "string", default: ".bench", help: "directory of the JSON results" },
} as const;

const USAGE = "usage: deno task bench [--quick] [--repeat 3] [--only nginx,proxy] [--big]";
const INSTALL = "  apt-get install wrk nginx etcd-server   " +
  "(Debian/Ubuntu; brew install wrk nginx etcd on macOS)";
const MISSING = "deno task bench needs wrk, and nginx and etcd for two of its references. " +
  "Install them with:\n" + INSTALL;

type Options = FlagValues<typeof SPEC>;

/** Parses the command line; the options, or an exit code (help printed, or a bad flag). */
function options(): Options | number {
  try {
    const env = Object.fromEntries(envNames(SPEC).map((name) => [name, Deno.env.get(name)]));
    const parsed = parseFlags(SPEC, Deno.args, env);
    if ("help" in parsed) {
      console.log(helpText(USAGE, SPEC) + "\n\n" + MISSING);
      return 0;
    }
    if (parsed.rest.length > 0) throw new ConfigError(`Unexpected argument "${parsed.rest[0]}"`);
    const o = checkNumbers(parsed.values);
    if (o.replicas !== 1 && o.replicas !== 3) {
      // nginx and the node reference read any key on any node: all of them, or one owner.
      throw new ConfigError(`Cannot use --replicas ${o.replicas}: the bench runs 1 or 3`);
    }
    onlyTargets(o.only);
    return o;
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    return 2;
  }
}

/** `o` when every count is one wrk and the rounds can run (`--repeat 0` left no median). */
function checkNumbers(o: Options): Options {
  checkRange("duration", o.duration, 1, 3600);
  checkRange("repeat", o.repeat, 1, 1000);
  checkRange("threads", o.threads, 1, 1000);
  checkRange("connections", o.connections, 1, 100_000);
  if (o.connections < o.threads) {
    // wrk refuses it, but only once every process has started and the keys are loaded.
    throw new ConfigError(
      `Cannot use --connections ${o.connections} with --threads ${o.threads}: ` +
        "wrk needs at least one connection per thread",
    );
  }
  checkRange("keys", o.keys, 1, 100_000_000);
  checkRange("big-keys", o.bigKeys, 1, 100_000_000);
  checkRange("proxies", o.proxies, 1, 64);
  return o;
}

/** The cases to run with the tools installed; the lines about references left out. */
async function plan(o: Options) {
  const missing = new Set<string>();
  for (const tool of Object.values(TOOLS)) {
    if (!(await hasCommand(tool.cmd, tool.versionFlag))) missing.add(tool.cmd);
  }
  return planCases(onlyTargets(o.only), missing);
}

/** The cases to run, or an exit code when wrk is missing or nothing is left to measure. */
async function preflight(o: Options) {
  if (!(await hasCommand("wrk"))) {
    console.error(MISSING);
    return 1;
  }
  const planned = await plan(o);
  for (const line of planned.skipped) console.error(line);
  if (planned.cases.length === 0) {
    console.error(`Cannot run the bench: nothing left to measure. Install with:\n${INSTALL}`);
    return 1;
  }
  return planned;
}

/** Starts, measures, stops; the report and the JSON file. */
async function measure(run: Run, o: Options, cases: CaseSpec[], skipped: string[]) {
  const started = new Date();
  const { urls, processes } = await startTargets(run, o, cases);
  const results = await runCases(run.procs, o, urls, cases, run.abort.signal, processes);
  await run.procs.stopAll();
  await run.replicated.stopAll();
  await run.watched.stopAll();
  let big: BigResult | undefined;
  if (o.big) {
    console.log(`\nLarge data: ${o.bigKeys} keys (this takes a few minutes)...`);
    big = await measureNode(run.big, o.bigKeys);
    console.log(formatBig(big));
    big.addNode = await measureAddNode(run.big, o.bigKeys, o);
    await run.big.stopAll();
  }
  report(o, started, results, skipped, big);
  await writeJson(o, started, results, skipped, big);
}

async function main(): Promise<number> {
  const o = options();
  if (typeof o === "number") return o;
  const planned = await preflight(o);
  if (typeof planned === "number") return planned;
  const run = await newRun();
  const onSignal = () => run.stop().finally(() => Deno.exit(130));
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  try {
    await measure(run, o, planned.cases, planned.skipped);
    return 0;
  } finally {
    await run.stop();
    Deno.removeSignalListener("SIGINT", onSignal);
    Deno.removeSignalListener("SIGTERM", onSignal);
  }
}

function report(
  o: Options,
  started: Date,
  results: CaseResult[],
  skipped: string[],
  big?: BigResult,
): void {
  console.log(
    `\nringkv bench, ${started.toISOString()}: ${o.connections} connections, ` +
      `${o.quick ? 3 : o.duration} s per case, ${o.keys} keys, ${o.proxies} proxy process(es), ` +
      `${o.replicas} replica(s) behind the proxy, ${o.repeat} interleaved round(s), ` +
      `${navigator.hardwareConcurrency} cores\n`,
  );
  console.log(formatTable(results));
  const watched = formatWatched(results);
  if (watched !== "") console.log("\nWhat the watchers read:\n" + watched);
  const cpu = formatCpu(results);
  if (cpu !== "") {
    console.log(
      "\nCPU by process (median over the rounds): µs per request, then cores busy " +
        "(all threads / the main thread); the host's busy cores:\n" + cpu,
    );
  }
  const ratios = ratioRows(results);
  if (ratios.length > 0) {
    console.log("\nRatios, round by round (median, lowest–highest round):\n");
    console.log(formatRatios(ratios));
  } else {
    // e.g. --only bare: no case with its reference.
    console.log("\nNo ratios: no case ran beside the reference it is compared with (see --only).");
  }
  if (skipped.length > 0) console.log("\n" + skipped.join("\n"));
  if (big) console.log("\n" + formatBig(big));
}

async function writeJson(
  o: Options,
  started: Date,
  results: CaseResult[],
  skipped: string[],
  big?: BigResult,
) {
  await Deno.mkdir(o.out, { recursive: true });
  const file = join(o.out, `results-${started.toISOString().replace(/[:.]/g, "-")}.json`);
  const options = { ...o };
  const ratios = ratioRows(results);
  const body = {
    started: started.toISOString(),
    options,
    results,
    ratios,
    skipped,
    big: big ?? null,
  };
  await Deno.writeTextFile(file, JSON.stringify(body, null, 2) + "\n");
  console.log(`\nResults written to ${file}`);
}

if (import.meta.main) Deno.exit(await main());
