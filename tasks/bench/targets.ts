/**
 * Starting what `deno task bench` drives: the 3 nodes with the proxy and nginx over them,
 * the default 3-replica cluster, the watch case's own 3-replica cluster, etcd, the bare server and the Hono Map node, each loaded
 * with the bench's keys; and the run that owns them and stops them all once.
 *
 * @module
 */
import { join } from "@std/path";
import { startEtcd } from "./etcd_cluster.ts";
import { loadEtcd, loadNode, loadProxy } from "./load.ts";
import { Processes } from "./processes.ts";
import type { CpuWatched, Urls } from "./rounds.ts";
import { childPids, type Watched } from "./cpu_time.ts";
import type { CaseSpec, Target } from "./table.ts";

/** The options the targets are started with. */
export interface TargetOptions {
  keys: number;
  replicas: number;
  proxies: number;
}

type Options = TargetOptions;

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

/**
 * The watch case's cluster (3 nodes, 3 replicas) in its own directory, loaded through its
 * proxy like the default cluster, so that its PUTs replace keys as theirs do.
 */
async function startWatchCluster(procs: Processes, o: Options, urls: Urls) {
  const nodes = [];
  for (const id of ["w1", "w2", "w3"]) nodes.push(await procs.node(id));
  const [proxy] = await procs.proxies(nodes.map((n) => n.url), o.proxies, 3);
  console.log(`Loading ${o.keys} keys of 100 B into the watch case's 3-replica cluster...`);
  await loadProxy(proxy!.url, { prefix: "k", count: o.keys, valueBytes: 100 });
  urls.watch = proxy!.url;
}

/** What the cases drive: each target's URL, and the processes whose CPU the bench reads. */
export interface Started {
  urls: Urls;
  processes: CpuWatched;
}

/** Starts what the cases drive; their URLs and processes. */
export async function startTargets(
  run: Run,
  o: Options,
  cases: readonly CaseSpec[],
): Promise<Started> {
  const targets = new Set(cases.map((c) => c.target));
  const urls: Urls = {};
  let etcd: Watched[] = [];
  if (targets.has("node") || targets.has("nginx") || targets.has("proxy")) {
    await startRingTargets(run.procs, o, targets, urls);
  }
  if (targets.has("cluster")) await startCluster(run.replicated, o, urls);
  if (targets.has("watch")) await startWatchCluster(run.watched, o, urls);
  if (targets.has("etcd")) {
    const started = await startEtcd(join(run.dir, "etcd"), (child) => run.procs.adopt(child));
    urls.etcd = started.url;
    etcd = started.members;
    console.log(`Loading ${o.keys} keys of 100 B into etcd...`);
    await loadEtcd(urls.etcd, { prefix: "k", count: o.keys, valueBytes: 100 });
  }
  if (targets.has("bare")) urls.bare = (await run.procs.bare()).url;
  if (targets.has("floor")) {
    urls.floor = (await run.procs.floor(o.keys)).url;
  }
  if (targets.has("hono")) {
    const big = Math.max(1, Math.floor(o.keys / 10));
    urls.hono = (await run.procs.hono([`k:${o.keys}:100`, `b:${big}:4096`])).url;
  }
  return { urls, processes: await processesOf(run, etcd) };
}

/**
 * Each target's processes, by the names they were started with: the server a case drives and
 * what serves behind it (nginx's workers too: they answer, its master waits).
 */
async function processesOf(run: Run, etcd: Watched[]): Promise<CpuWatched> {
  const of = (children: readonly Watched[], names: RegExp) =>
    children.filter((c) => names.test(c.name)).map(({ name, pid }) => ({ name, pid }));
  const ring = of(run.procs.children, /^n\d$/);
  const nginx = of(run.procs.children, /^nginx$/);
  const workers = (await Promise.all(nginx.map((m) => childPids(m.pid)))).flat()
    .map((pid, i) => ({ name: `nginx-worker${i === 0 ? "" : i + 1}`, pid }));
  return {
    bare: of(run.procs.children, /^bare$/),
    floor: of(run.procs.children, /^floor$/),
    hono: of(run.procs.children, /^hono$/),
    node: ring.slice(0, 1),
    nginx: [...nginx, ...workers, ...ring],
    proxy: [...of(run.procs.children, /^proxy\d+$/), ...ring],
    etcd,
    cluster: of(run.replicated.children, /./),
    watch: of(run.watched.children, /./),
  };
}

/** A run's processes, each phase in its own directory (a proxy must not find another's map). */
export interface Run {
  dir: string;
  procs: Processes;
  replicated: Processes;
  /** The watch case's cluster. */
  watched: Processes;
  big: Processes;
  /** Aborts the wrk that is running (Ctrl-C). */
  abort: AbortController;
  /** Stops everything and removes the directory, once however often it is called. */
  stop(): Promise<void>;
}

/** A new run: its temporary directory and the (not yet started) processes of each phase. */
export async function newRun(): Promise<Run> {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-bench-" });
  await Deno.chmod(dir, 0o755); // nginx workers may run as another user
  const token = () => crypto.getRandomValues(new Uint8Array(16)).toHex();
  const secrets = { clusterSecret: token(), adminToken: token() };
  const procs = new Processes(join(dir, "throughput"), secrets);
  await Deno.mkdir(procs.dir, { recursive: true }); // the wrk scripts go there
  const replicated = new Processes(join(dir, "replicated"), secrets);
  const watched = new Processes(join(dir, "watch"), secrets);
  const big = new Processes(join(dir, "big"), secrets);
  const abort = new AbortController();
  let stopping: Promise<void> | undefined;
  // Ctrl-C and main's finally may both ask: both wait for the one stop.
  const stop = () =>
    stopping ??= (async () => {
      abort.abort();
      for (const p of [procs, replicated, watched, big]) await p.stopAll();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    })();
  return { dir, procs, replicated, watched, big, abort, stop };
}
