/**
 * `deno task bench`: starts 3 data nodes and the proxy in a temporary directory, loads
 * keys into them, drives each case with wrk and measures, in the same run and on the same
 * nodes, the references: a node alone, a bare `Deno.serve`, and nginx with consistent
 * hashing over the nodes. Prints one table with ratios and the targets, and writes
 * the numbers as JSON (`.bench/results-<time>.json`). `--big` adds the 1,000,000-key
 * measurements (RSS per key, restart, adding a node). docs/performance.md has a run.
 *
 * @module
 */
import { join } from "@std/path";
import { ConfigError, envNames, type FlagValues, helpText, parseFlags } from "../shared/config.ts";
import { type BigResult, formatBig, measureAddNode, measureNode } from "./bench/big.ts";
import { loadNode, loadProxy } from "./bench/load.ts";
import { hasCommand, Processes, runWrk } from "./bench/processes.ts";
import {
  caseName,
  type CaseResult,
  formatTable,
  formatTargets,
  medianRun,
  type Op,
  type Target,
  targetChecks,
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
    help: "replicas of each key (1 compares with nginx; 3 = every key on the 3 nodes)",
  },
  only: {
    type: "list",
    default: [] as string[],
    help: "only these targets: bare,node,nginx,proxy",
  },
  big: { type: "bool", default: false, help: "also the 1,000,000-key measurements (minutes)" },
  bigKeys: { type: "int", default: 1_000_000, help: "keys of the --big measurements" },
  repeat: { type: "int", default: 1, help: "runs of every case (the median is shown)" },
  out: { type: "string", default: ".bench", help: "directory of the JSON results" },
} as const;

const USAGE = "usage: deno task bench [--quick] [--duration 10] [--connections 64] [--big]";
const MISSING = "deno task bench needs wrk and nginx. Install them with:\n" +
  "  apt-get install wrk nginx      (Debian/Ubuntu; brew install wrk nginx on macOS)";

type Options = FlagValues<typeof SPEC>;

/** The cases of a run, in order: references next to what they are compared with. */
const CASES: { target: Target; op: Op; valueBytes: number }[] = [
  { target: "bare", op: "GET", valueBytes: 100 },
  { target: "node", op: "GET", valueBytes: 100 },
  { target: "node", op: "PUT", valueBytes: 100 },
  { target: "nginx", op: "GET", valueBytes: 100 },
  { target: "proxy", op: "GET", valueBytes: 100 },
  { target: "nginx", op: "PUT", valueBytes: 100 },
  { target: "proxy", op: "PUT", valueBytes: 100 },
  { target: "nginx", op: "MIX", valueBytes: 100 },
  { target: "proxy", op: "MIX", valueBytes: 100 },
  { target: "nginx", op: "GET", valueBytes: 4096 },
  { target: "proxy", op: "GET", valueBytes: 4096 },
  { target: "proxy", op: "PUT", valueBytes: 4096 },
];

const PUT_RATIO: Record<Op, number> = { GET: 0, PUT: 1, MIX: 0.1 };

async function writeScript(procs: Processes, o: Options, c: Omit<CaseResult, "result">) {
  const big = c.valueBytes > 100;
  const script = join(procs.dir, `${c.target}-${c.op}-${c.valueBytes}.lua`);
  await Deno.writeTextFile(
    script,
    wrkScript({
      prefix: big ? "b" : "k",
      keys: big ? Math.max(1, Math.floor(o.keys / 10)) : o.keys,
      putRatio: PUT_RATIO[c.op],
      valueBytes: c.valueBytes,
      headers: c.target === "node"
        ? { Authorization: `Bearer ${procs.secrets.clusterSecret}` }
        : {},
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
async function primeKeys(
  procs: Processes,
  o: Options,
  urls: Record<Target, string>,
  targets: Target[],
) {
  const big = Math.max(1, Math.floor(o.keys / 10));
  const sets = [{ prefix: "k", keys: o.keys }, { prefix: "b", keys: big }];
  for (const target of (["nginx", "proxy"] as const).filter((t) => targets.includes(t))) {
    for (const { prefix, keys } of sets) {
      const script = join(procs.dir, `prime-${target}-${prefix}.lua`);
      const sequential = { threads: o.threads };
      await Deno.writeTextFile(
        script,
        wrkScript({ prefix, keys, putRatio: 0, valueBytes: 0, sequential }),
      );
      // Passes until one covers every key (each starts again at the first key).
      let seconds = Math.max(1, Math.ceil((keys * 1.2) / 20_000));
      let result = await runWrk(urls[target], script, { ...wrkShape(o), seconds });
      for (let pass = 2; pass <= 3 && result.requests < keys; pass++) {
        seconds = Math.ceil((keys * 1.2) / Math.max(1000, result.rps));
        result = await runWrk(urls[target], script, { ...wrkShape(o), seconds });
      }
      console.log(
        `${target}: ${result.requests} reads over the ${keys} "${prefix}" keys (warm-up)`,
      );
    }
  }
}

/** Every case `--repeat` times (rounds interleave the cases); the median run of each. */
async function runCases(procs: Processes, o: Options, urls: Record<Target, string>) {
  const seconds = o.quick ? 3 : o.duration;
  const warm = o.quick ? 1 : 2;
  const cases = CASES.filter((c) => o.only.length === 0 || o.only.includes(c.target));
  const runs: WrkResult[][] = cases.map(() => []);
  const wrk = wrkShape(o);
  await primeKeys(procs, o, urls, cases.map((c) => c.target));
  for (let round = 1; round <= o.repeat; round++) {
    for (const [i, c] of cases.entries()) {
      const script = await writeScript(procs, o, c);
      await runWrk(urls[c.target], script, { ...wrk, seconds: warm });
      const result = await runWrk(urls[c.target], script, { ...wrk, seconds });
      runs[i]!.push(result);
      console.log(
        `${caseName(c).padEnd(28)} ${String(Math.round(result.rps)).padStart(7)} req/s  ` +
          `p50 ${result.p50Ms.toFixed(2)} ms  p99 ${result.p99Ms.toFixed(2)} ms` +
          (result.non2xx + result.socketErrors > 0
            ? `  (${result.non2xx} non-2xx, ${result.socketErrors} socket errors)`
            : ""),
      );
    }
  }
  return cases.map((c, i): CaseResult => ({
    ...c,
    result: medianRun(runs[i]!),
    rpsRuns: runs[i]!.map((r) => Math.round(r.rps)),
  }));
}

async function throughput(procs: Processes, o: Options): Promise<CaseResult[]> {
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
    [proxy] = await procs.proxies(nodeUrls, o.proxies);
  }
  const bare = await procs.bare();
  const nginx = await procs.nginx(nodeUrls);
  return await runCases(procs, o, {
    bare: bare.url,
    node: nodeUrls[0]!,
    nginx: nginx.url,
    proxy: proxy!.url,
  });
}

async function main(): Promise<number> {
  let o: Options;
  try {
    const env = Object.fromEntries(envNames(SPEC).map((name) => [name, Deno.env.get(name)]));
    const parsed = parseFlags(SPEC, Deno.args, env);
    if ("help" in parsed) {
      console.log(helpText(USAGE, SPEC) + "\n\n" + MISSING);
      return 0;
    }
    if (parsed.rest.length > 0) throw new ConfigError(`Unexpected argument "${parsed.rest[0]}"`);
    o = parsed.values;
    if (o.replicas !== 1 && o.replicas !== 3) {
      // nginx and the node reference read any key on any node: all of them, or one owner.
      throw new ConfigError(`Cannot use --replicas ${o.replicas}: the bench runs 1 or 3`);
    }
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    return 2;
  }
  if (!(await hasCommand("wrk")) || !(await hasCommand("nginx"))) {
    console.error(MISSING);
    return 1;
  }
  const dir = await Deno.makeTempDir({ prefix: "ringkv-bench-" });
  await Deno.chmod(dir, 0o755); // nginx workers may run as another user
  const token = () => crypto.getRandomValues(new Uint8Array(16)).toHex();
  const secrets = { clusterSecret: token(), adminToken: token() };
  // Each phase in its own directory: a proxy must not find the map of an earlier phase.
  const procs = new Processes(join(dir, "throughput"), secrets);
  const bigProcs = new Processes(join(dir, "big"), secrets);
  const stop = async () => {
    await procs.stopAll();
    await bigProcs.stopAll();
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  Deno.addSignalListener("SIGINT", () => stop().finally(() => Deno.exit(130)));
  try {
    const started = new Date();
    const results = await throughput(procs, o);
    await procs.stopAll();
    let big: BigResult | undefined;
    if (o.big) {
      console.log(`\nLarge data: ${o.bigKeys} keys (this takes a few minutes)...`);
      big = await measureNode(bigProcs, o.bigKeys);
      console.log(formatBig(big));
      big.addNode = await measureAddNode(bigProcs, o.bigKeys, o);
      await bigProcs.stopAll();
    }
    report(o, started, results, big);
    await writeJson(o, started, results, big);
    return 0;
  } finally {
    await stop();
  }
}

function report(o: Options, started: Date, results: CaseResult[], big?: BigResult): void {
  console.log(
    `\nringkv bench, ${started.toISOString()}: ${o.connections} connections, ` +
      `${o.quick ? 3 : o.duration} s per case, ${o.keys} keys, ${o.proxies} proxy process(es), ` +
      `${o.replicas} replica(s), ` +
      `${navigator.hardwareConcurrency} cores\n`,
  );
  console.log(formatTable(results));
  console.log("\nTargets:\n" + formatTargets(targetChecks(results)));
  if (big) console.log("\n" + formatBig(big));
}

async function writeJson(o: Options, started: Date, results: CaseResult[], big?: BigResult) {
  await Deno.mkdir(o.out, { recursive: true });
  const file = join(o.out, `results-${started.toISOString().replace(/[:.]/g, "-")}.json`);
  const options = { ...o };
  const body = { started: started.toISOString(), options, results, big: big ?? null };
  await Deno.writeTextFile(file, JSON.stringify(body, null, 2) + "\n");
  console.log(`\nResults written to ${file}`);
}

if (import.meta.main) Deno.exit(await main());
