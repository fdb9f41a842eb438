/**
 * `deno task bench`: starts, each in its own part of a temporary directory, 3 data nodes
 * and the proxy, the references over the same nodes (a node alone, nginx with consistent
 * hashing), a bare `Deno.serve` and a minimal Hono Map node, and a default 3-replica ringkv
 * cluster next to a 3-member etcd; loads keys into them, drives each case with wrk in
 * interleaved rounds and prints one table of cases and one of ratios (median and range over
 * the rounds) with the targets. Writes the numbers as JSON
 * (`.bench/results-<time>.json`). `--big` adds the 1,000,000-key measurements (RSS per key,
 * restart, adding a node). docs/performance.md describes it and has a run.
 *
 * @module
 */
import { join } from "@std/path";
import { ConfigError, envNames, type FlagValues, helpText, parseFlags } from "../shared/config.ts";
import { type BigResult, formatBig, measureAddNode, measureNode } from "./bench/big.ts";
import { onlyTargets, planCases, TOOLS } from "./bench/cases.ts";
import { startEtcd } from "./bench/etcd_cluster.ts";
import { loadEtcd, loadNode, loadProxy } from "./bench/load.ts";
import { hasCommand, Processes, runWrk } from "./bench/processes.ts";
import {
  caseName,
  type CaseResult,
  type CaseSpec,
  formatRatios,
  formatTable,
  medianRun,
  ratioRows,
  type Target,
} from "./bench/table.ts";
import { type WrkResult, wrkScript } from "./bench/wrk.ts";

const SPEC = {
  quick: { type: "bool", default: false, help: "short run: 3 s per case, 1 s warm-up" },
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
    help: "only these targets: bare,hono,node,nginx,proxy,etcd,cluster",
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
type Urls = Partial<Record<Target, string>>;

const PUT_RATIO: Record<CaseSpec["op"], number> = { GET: 0, PUT: 1, MIX: 0.1 };

async function writeScript(procs: Processes, o: Options, c: CaseSpec) {
  const big = c.valueBytes > 100;
  const script = join(procs.dir, `${c.target}-${c.op}-${c.valueBytes}.lua`);
  // The Hono Map node gets the node's request, secret included, byte for byte.
  const direct = c.target === "node" || c.target === "hono";
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

function logRun(c: CaseSpec, result: WrkResult): void {
  const errors = result.non2xx + result.socketErrors > 0
    ? `  (${result.non2xx} non-2xx, ${result.socketErrors} socket errors)`
    : "";
  console.log(
    `${caseName(c).padEnd(34)} ${String(Math.round(result.rps)).padStart(7)} req/s  ` +
      `p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms${errors}`,
  );
}

/** Every case `--repeat` times, in rounds that interleave the cases; the median run of each. */
async function runCases(
  procs: Processes,
  o: Options,
  urls: Urls,
  cases: readonly CaseSpec[],
  signal: AbortSignal,
): Promise<CaseResult[]> {
  const seconds = o.quick ? 3 : o.duration;
  const warm = o.quick ? 1 : 2;
  const runs: WrkResult[][] = cases.map(() => []);
  await primeKeys(procs, o, urls, signal);
  for (let round = 1; round <= o.repeat; round++) {
    console.log(`Round ${round} of ${o.repeat}`);
    for (const [i, c] of cases.entries()) {
      const url = urls[c.target]!;
      const script = await writeScript(procs, o, c);
      await runWrk(url, script, { ...wrkShape(o), seconds: warm }, signal);
      const result = await runWrk(url, script, { ...wrkShape(o), seconds }, signal);
      runs[i]!.push(result);
      logRun(c, result);
    }
  }
  return cases.map((c, i) => ({ ...c, result: medianRun(runs[i]!), runs: runs[i]! }));
}

/** 3 nodes holding every key, the proxy (`--replicas`) over them and nginx, as asked. */
async function startRingTargets(procs: Processes, o: Options, targets: Set<Target>, urls: Urls) {
  const nodes = [];
  for (const id of ["n1", "n2", "n3"]) nodes.push(await procs.node(id));
  const nodeUrls = nodes.map((n) => n.url);
  console.log(`Loading ${o.keys} keys of 100 B and ${Math.floor(o.keys / 10)} of 4 KiB...`);
  const small = { prefix: "k", count: o.keys, valueBytes: 100 };
  const large = { prefix: "b", count: Math.max(1, Math.floor(o.keys / 10)), valueBytes: 4096 };
  let proxy;
  if (o.replicas > 1) {
    // Through the proxy: the replicas then hold each key under one version, as in use.
    [proxy] = await procs.proxies(nodeUrls, o.proxies, o.replicas);
    await loadProxy(proxy!.url, small);
    await loadProxy(proxy!.url, large);
  } else {
    // Every key on every node: nginx's hash places keys unlike the ring, and must find them.
    const secret = procs.secrets.clusterSecret;
    await Promise.all(nodeUrls.map(async (url) => {
      await loadNode(url, secret, small);
      await loadNode(url, secret, large);
    }));
    if (targets.has("proxy")) [proxy] = await procs.proxies(nodeUrls, o.proxies);
  }
  urls.node = nodeUrls[0]!;
  if (proxy !== undefined) urls.proxy = proxy.url;
  if (targets.has("nginx")) urls.nginx = (await procs.nginx(nodeUrls)).url;
}

/** The default cluster (3 nodes, 3 replicas) in its own directory, loaded through its proxy. */
async function startCluster(procs: Processes, o: Options, urls: Urls) {
  const nodes = [];
  for (const id of ["r1", "r2", "r3"]) nodes.push(await procs.node(id));
  const [proxy] = await procs.proxies(nodes.map((n) => n.url), o.proxies, 3);
  console.log(`Loading ${o.keys} keys of 100 B into the 3-replica cluster...`);
  await loadProxy(proxy!.url, { prefix: "k", count: o.keys, valueBytes: 100 });
  urls.cluster = proxy!.url;
}

/** Starts what the cases drive; their URLs. */
async function startTargets(run: Run, o: Options, cases: readonly CaseSpec[]): Promise<Urls> {
  const targets = new Set(cases.map((c) => c.target));
  const urls: Urls = {};
  if (targets.has("node") || targets.has("nginx") || targets.has("proxy")) {
    await startRingTargets(run.procs, o, targets, urls);
  }
  if (targets.has("cluster")) await startCluster(run.replicated, o, urls);
  if (targets.has("etcd")) {
    urls.etcd = await startEtcd(join(run.dir, "etcd"), (child) => run.procs.adopt(child));
    console.log(`Loading ${o.keys} keys of 100 B into etcd...`);
    await loadEtcd(urls.etcd, { prefix: "k", count: o.keys, valueBytes: 100 });
  }
  if (targets.has("bare")) urls.bare = (await run.procs.bare()).url;
  if (targets.has("hono")) {
    const big = Math.max(1, Math.floor(o.keys / 10));
    urls.hono = (await run.procs.hono([`k:${o.keys}:100`, `b:${big}:4096`])).url;
  }
  return urls;
}

/** A run's processes, each phase in its own directory (a proxy must not find another's map). */
interface Run {
  dir: string;
  procs: Processes;
  replicated: Processes;
  big: Processes;
  /** Aborts the wrk that is running (Ctrl-C). */
  abort: AbortController;
  /** Stops everything and removes the directory, once however often it is called. */
  stop(): Promise<void>;
}

async function newRun(): Promise<Run> {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-bench-" });
  await Deno.chmod(dir, 0o755); // nginx workers may run as another user
  const token = () => crypto.getRandomValues(new Uint8Array(16)).toHex();
  const secrets = { clusterSecret: token(), adminToken: token() };
  const procs = new Processes(join(dir, "throughput"), secrets);
  await Deno.mkdir(procs.dir, { recursive: true }); // the wrk scripts go there
  const replicated = new Processes(join(dir, "replicated"), secrets);
  const big = new Processes(join(dir, "big"), secrets);
  const abort = new AbortController();
  let stopping: Promise<void> | undefined;
  // Ctrl-C and main's finally may both ask: both wait for the one stop.
  const stop = () =>
    stopping ??= (async () => {
      abort.abort();
      for (const p of [procs, replicated, big]) await p.stopAll();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    })();
  return { dir, procs, replicated, big, abort, stop };
}

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
    const o = parsed.values;
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
  const urls = await startTargets(run, o, cases);
  const results = await runCases(run.procs, o, urls, cases, run.abort.signal);
  await run.procs.stopAll();
  await run.replicated.stopAll();
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
  console.log("\nRatios, round by round (median, lowest–highest round):\n");
  console.log(formatRatios(ratioRows(results)));
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
