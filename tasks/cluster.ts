/**
 * `deno task cluster`: starts a local ringkv cluster (N nodes and a proxy on 127.0.0.1),
 * prints how to use it, and stops everything on Ctrl-C. Run again on the same `--data`
 * directory, it comes back with all the data, the same node ids and the same tokens.
 *
 * @module
 */
import { urlHost } from "../shared/node_url.ts";
import { listenHost } from "../shared/exposure.ts";
import { denoCommand, shellQuote } from "../shared/startup_hint.ts";
import {
  dataDirInUse,
  DataDirInUseError,
  type DataDirLock,
  DataDirUnusableError,
  LOCK_FILE,
  lockDataDir,
} from "../shared/data_dir_lock.ts";
import { DataDirKindError } from "../shared/data_dir_kind.ts";
import {
  ALL_ACCESS_WHY,
  isAllAccessPath,
  needsAllAccess,
  RAM_DISKS,
} from "../shared/all_access_paths.ts";
import { basename, dirname, join, resolve } from "@std/path";
import {
  checkDistinctTokens,
  checkRange,
  checkToken,
  ConfigError,
  envNames,
  helpText,
  namingVariables,
  parseFlags,
} from "../shared/config.ts";
import { type Child, ChildExitError, startChild } from "./children.ts";
import {
  adminTokenFile,
  givenToken,
  holdsOtherToken,
  newToken,
  secretFile,
} from "./cluster_tokens.ts";
import { printWelcome } from "./cluster_welcome.ts";
import { NODE_ENV, NODE_V8_FLAGS } from "./node_settings.ts";
import { defaultReplicas } from "../proxy/cluster/map_transitions.ts";
import { checkProxyPort, planCluster, proxyDir, storedMap, unreadableDir } from "./cluster_plan.ts";
import { PARENT_PID_ENV, parentGone } from "../shared/parent_watch.ts";

/**
 * The process that started this task, read first: one that ends while the task reads its options
 * and takes its locks is still seen as gone (review).
 */
const STARTED_BY = Deno.ppid;

const SPEC = {
  port: { type: "int", default: 8080, help: "proxy port (0: the OS picks)" },
  // No default here: one given is told apart from none, a stored cluster deciding (cluster_plan.ts).
  nodes: { type: "int", help: "number of data nodes of a new cluster (default: 3)" },
  nodePort: {
    type: "int",
    default: 7001,
    help: "port of the first node; the others follow (0: the OS picks)",
  },
  data: { type: "string", default: "./data", help: "directory for every process's data" },
  replicas: {
    type: "int",
    help: "copies of each key in a new cluster, at most --nodes (quorum: a majority; default: 3, " +
      "or --nodes if fewer)",
  },
  host: { type: "string", default: "127.0.0.1", help: "address every process binds" },
} as const;

const USAGE = "usage: deno task cluster [--port 8080] [--nodes 3] [--node-port 7001] " +
  "[--data ./data] [--replicas 3] [--host 127.0.0.1]";

/** A `--data` the task and its servers cannot reach: a failure at run time (exit 1). */
class DataOutOfReachError extends Error {
  constructor(data: string) {
    super(
      `Cannot use ${data} as --data: ${ALL_ACCESS_WHY}, and deno task cluster and the nodes and ` +
        "proxy it starts run with less (each may touch only its own directory, " +
        `docs/security.md). Give --data a directory elsewhere (${RAM_DISKS})`,
    );
  }
}

/**
 * Where `path` really is: the real path of its nearest existing ancestor with the rest
 * appended (a symlink to /dev/shm is seen through), or undefined when Deno refuses to say.
 */
async function realLocation(path: string): Promise<string | undefined> {
  const rest: string[] = [];
  for (let at = path;; at = dirname(at)) {
    try {
      return join(await Deno.realPath(at), ...rest);
    } catch (err) {
      if (needsAllAccess(err)) return undefined;
      if (!(err instanceof Deno.errors.NotFound) || dirname(at) === at) return path;
      rest.unshift(basename(at));
    }
  }
}

/**
 * Refuses a `--data` under /dev, /proc or /sys (as given, or through a symlink) before anything
 * reads it: Deno opens those only to --allow-all, which neither this task nor its servers have.
 */
async function checkReachable(data: string): Promise<void> {
  const real = await realLocation(data);
  if (isAllAccessPath(data) || real === undefined || isAllAccessPath(real)) {
    throw new DataOutOfReachError(data);
  }
}

/** Environment variables a server may read: its own settings, nothing else. */
const ENV_PERMISSION = "--allow-env=RINGKV_*";

/**
 * The deno permissions of a node: listen on its host (it calls no one), read and write
 * its own data directory, read RINGKV_* variables. docs/security.md lists them.
 */
function nodeArgs(dir: string, host: string): string[] {
  return [
    "run",
    `--allow-net=${urlHost(host)}`, // IPv6 in brackets, as Deno reads it
    `--allow-read=${dir}`,
    `--allow-write=${dir}`,
    ENV_PERMISSION,
    // GcHint compacts after bulk work; less garbage kept during it (tasks/node_settings.ts).
    NODE_V8_FLAGS,
    new URL("../node/main.ts", import.meta.url).pathname,
  ];
}

/** The proxy's: the network (nodes can be added at any address), its own data directory. */
function proxyArgs(dir: string): string[] {
  return [
    "run",
    "--allow-net",
    `--allow-read=${dir}`,
    `--allow-write=${dir}`,
    ENV_PERMISSION,
    new URL("../proxy/main.ts", import.meta.url).pathname,
  ];
}

/** NODE_ENV as `NAME=value ` words for a shell command line. */
function envWords(): string {
  return Object.entries(NODE_ENV).map(([name, value]) => `${name}=${value} `).join("");
}

/**
 * How a printed restart line gives the node its cluster secret: from the file this task keeps,
 * or, when the secret came from RINGKV_CLUSTER_SECRET (then there is no file), from that
 * variable, the line failing in the shell when it is unset: a node started without a secret
 * would serve its internal API to anyone (`$(cat missing-file)` gave it an empty one).
 */
function secretWords(data: string): string {
  return Deno.env.get("RINGKV_CLUSTER_SECRET")
    ? 'RINGKV_CLUSTER_SECRET="${RINGKV_CLUSTER_SECRET:?set it as for this cluster}" '
    : `RINGKV_CLUSTER_SECRET=$(cat ${shellQuote(secretFile(data))}) `;
}

/** A node's arguments with the port it got, so a restart keeps its URL. */
function restartArgs(args: string[], url: string): string[] {
  const port = args.indexOf("--port");
  return args.with(port + 1, new URL(url).port);
}

/** The options with the counts filled in: 3 nodes, 3 replicas or every node when fewer. */
function withCounts<T extends { nodes?: number; replicas?: number }>(v: T) {
  const nodes = v.nodes ?? 3;
  return { ...v, nodes, replicas: v.replicas ?? defaultReplicas(nodes) };
}

/** Node and replica counts that make a cluster: each key's copies on distinct nodes. */
function checkCounts(v: { nodes: number; replicas: number }): void {
  if (v.nodes < 1 || v.nodes > 64) {
    throw new ConfigError(`Cannot start ${v.nodes} nodes: --nodes must be 1 to 64`);
  }
  if (v.replicas < 1 || v.replicas > v.nodes) {
    // More nodes only help a count above them (`--nodes 1` did not help `--replicas 0`).
    const give = v.replicas > v.nodes
      ? `; give --nodes ${v.replicas} or --replicas ${Math.min(v.nodes, 3)}`
      : "";
    throw new ConfigError(
      `Cannot keep ${v.replicas} replicas of each key on ${v.nodes} node(s): --replicas must be ` +
        `1 to --nodes (${v.nodes})${give}`,
    );
  }
}

/** The names of the directories in `dir`; none when it is missing or no directory. */
async function directoriesIn(dir: string): Promise<Set<string>> {
  const names = new Set<string>();
  try {
    for await (const entry of Deno.readDir(dir)) {
      // A node's directory moved elsewhere and linked back is its directory (review).
      const isDir = entry.isDirectory ||
        (entry.isSymlink &&
          await Deno.stat(join(dir, entry.name)).then((s) => s.isDirectory, () => false));
      if (isDir) names.add(entry.name);
    }
  } catch (err) {
    // lockDataDir says what is wrong with a --data that is no directory of ours.
    if (!(err instanceof Deno.errors.NotFound || unreadableDir(err))) throw err;
  }
  return names;
}

/**
 * The errors for the `dirs` other processes hold: nodes left running by a killed task hold
 * theirs, and a node started there would fail on its port first. All of them, not the first:
 * after restarting two killed nodes by hand, one start names both (QA).
 */
async function heldDirs(dirs: readonly string[]): Promise<Error[]> {
  const held: Error[] = [];
  for (const dir of dirs) {
    const err = await dataDirInUse(dir).catch((err) => {
      // A file in a node's place, or no permission: makeDir and the node say so.
      if (unreadableDir(err)) return null;
      throw err;
    });
    if (err !== null) held.push(err);
  }
  return held;
}

/** Whether `dir` is missing, empty (nothing of an earlier cluster is there), or used. */
async function dirState(dir: string): Promise<"missing" | "empty" | "used"> {
  try {
    for await (const _ of Deno.readDir(dir)) return "used";
    return "empty";
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return "missing";
    // Not a directory, or unreadable: lockDataDir says so.
    if (unreadableDir(err)) return "used";
    throw err;
  }
}

/**
 * Removes what a failed first start wrote in `dir` (`created`: its tokens and the nodes' and
 * proxy's directories; no client could write through a cluster whose proxy never started),
 * then its lock file (unlinked while still held), and the directory itself when this start
 * made it and nothing else is in it.
 */
async function undoFirstStart(
  dir: string,
  lock: DataDirLock,
  before: "missing" | "empty",
  created: readonly string[],
): Promise<void> {
  for (const path of created.toReversed()) await Deno.remove(path, { recursive: true });
  await Deno.remove(join(dir, LOCK_FILE));
  lock.release();
  if (before === "empty") return;
  await Deno.remove(dir).catch((err) => {
    // Something else was put there meanwhile (or it went): it stays as it is.
    const gone = err instanceof Deno.errors.NotFound;
    if (!gone && (err as { code?: string }).code !== "ENOTEMPTY") throw err;
  });
}

/** Ports that exist: the proxy's, and one for each node from --node-port on. */
function checkPorts(v: { port: number; nodePort: number; nodes: number }): void {
  checkRange("port", v.port, 0, 65535);
  checkRange("node-port", v.nodePort, 0, 65536 - v.nodes);
}

/** Added to a node's failure to start: its port hint says --port, which is the proxy's here. */
const NODE_PORT_HINT =
  " (in deno task cluster, --node-port N moves the nodes to ports N, N+1, ...; 0 lets the OS pick)";

/**
 * Creates `dir` (and its parents) unless it exists, a file in its place named as the problem;
 * `created` gets it when this made it.
 */
async function makeDir(dir: string, created: string[]): Promise<void> {
  const existed = await Deno.lstat(dir).then(() => true, (err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    return false;
  });
  try {
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 }); // tokens and values: owner only
  } catch (err) {
    if (!(err instanceof Deno.errors.AlreadyExists)) throw err;
    throw new Error(`${dir} is a file, not a directory: move it away or give another --data`);
  }
  if (!existed) created.push(dir);
}

/**
 * The options and the tokens already chosen (environment or saved files), or a ConfigError:
 * a token the servers would refuse stops the task before the lock and any child.
 */
async function readOptions() {
  const env = Object.fromEntries(envNames(SPEC).map((name) => [name, Deno.env.get(name)]));
  const parsed = parseFlags(SPEC, Deno.args, env);
  if ("help" in parsed) return parsed;
  try {
    if (parsed.rest.length > 0) {
      // A stray word (`-port 9000`, say) must not start a cluster on the default ports.
      throw new ConfigError(
        `Cannot read "${parsed.rest[0]}": deno task cluster takes only --options (see --help)`,
      );
    }
    const opts = { ...withCounts(parsed.values), host: listenHost(parsed.values.host) };
    checkCounts(opts);
    checkPorts(opts);
    await checkReachable(opts.data);
    const given = (["nodes", "replicas"] as const).filter((f) => parsed.values[f] !== undefined);
    const present = await directoriesIn(opts.data);
    const plan = planCluster(
      { ...opts, given },
      await storedMap(opts.data),
      (id) => present.has(id),
    );
    checkPorts({ ...opts, nodes: Math.max(0, ...plan.offsets) + 1 });
    checkProxyPort(opts.port, opts.nodePort, plan);
    const admin = await givenToken("RINGKV_ADMIN_TOKEN", adminTokenFile(opts.data));
    const cluster = await givenToken("RINGKV_CLUSTER_SECRET", secretFile(opts.data));
    const client = Deno.env.get("RINGKV_CLIENT_TOKEN");
    if (client) checkToken("RINGKV_CLIENT_TOKEN", client); // the proxy would refuse it, later
    checkDistinctTokens({
      RINGKV_ADMIN_TOKEN: admin,
      RINGKV_CLUSTER_SECRET: cluster,
      RINGKV_CLIENT_TOKEN: client || undefined,
    });
    const staleAdminFile = Deno.env.get("RINGKV_ADMIN_TOKEN") !== undefined &&
      admin !== undefined &&
      await holdsOtherToken(adminTokenFile(opts.data), admin);
    return { opts, plan, given: { admin, cluster }, staleAdminFile };
  } catch (err) {
    throw namingVariables(err, parsed.fromEnv);
  }
}

type Options = Exclude<Awaited<ReturnType<typeof readOptions>>, { help: true }>;

/** The options, or the exit code of a run that starts nothing (help, a usage error). */
async function optionsOrExit(): Promise<Options | number> {
  let read;
  try {
    read = await readOptions();
  } catch (err) {
    if (!(err instanceof ConfigError || err instanceof DataOutOfReachError)) throw err;
    console.error(err.message);
    return err instanceof ConfigError ? 2 : 1;
  }
  if ("help" in read) {
    console.log(helpText(USAGE, SPEC));
    return 0;
  }
  return read;
}

/** The lock of `data`, or null once it said why it cannot be had. */
async function lockOrSay(data: string): Promise<DataDirLock | null> {
  try {
    // A second `task cluster` on the same directory stops here, before its nodes touch theirs.
    return await lockDataDir(data, "deno task cluster");
  } catch (err) {
    if (
      !(err instanceof DataDirInUseError || err instanceof DataDirUnusableError ||
        err instanceof DataDirKindError)
    ) throw err;
    console.error(err.message);
    return null;
  }
}

/** What starting the children needs, and what they tell each other. */
interface Start {
  read: Options;
  /** The absolute `--data`: a printed restart line then works from any directory. */
  home: string;
  env: Record<string, string>;
  /** What this start wrote, taken back if a first start fails. */
  created: string[];
  children: Child[];
  life: { stopping: boolean; signalled: boolean };
}

/** Thrown by {@link startAll} when a signal came before every child was started. */
const STOPPED_WHILE_STARTING = "stopped by a signal while starting";

/**
 * Starts every node of the plan, then the proxy, into `s.children`; throws on a signal that
 * comes before the proxy is started (the start is then undone as a failed one is).
 */
async function startAll(s: Start, adminToken: string): Promise<void> {
  const { opts, plan } = s.read;
  for (const [i, id] of plan.ids.entries()) {
    if (s.life.signalled) throw new Error(STOPPED_WHILE_STARTING);
    const dir = join(s.home, id);
    await makeDir(dir, s.created);
    const port = opts.nodePort === 0 ? 0 : opts.nodePort + plan.offsets[i]!;
    const args = [...nodeArgs(dir, opts.host), "--id", id, "--port", String(port), "--data", dir];
    args.push("--host", opts.host);
    const node = await startChild(id, args, { ...s.env, ...NODE_ENV });
    s.children.push(node);
    node.exited.then((code) => {
      if (s.life.stopping) return;
      console.error(
        `[${id}] exited with code ${code}. ${
          plan.replicas > 1
            ? "The other replicas serve its keys meanwhile"
            : "Its keys answer 503 until it is back"
        }; restart it with:\n` +
          `  ${secretWords(s.home)}${envWords()}` +
          `${denoCommand(Deno.execPath())} ` +
          restartArgs(args, node.url).map(shellQuote).join(" "),
      );
    });
  }
  if (s.life.signalled) throw new Error(STOPPED_WHILE_STARTING);
  const dir = proxyDir(s.home);
  await makeDir(dir, s.created);
  const nodeUrls = s.children.map((c) => c.url).join(",");
  const proxy = await startChild("proxy", [
    ...proxyArgs(dir),
    ...["--port", String(opts.port), "--data", dir, "--nodes", nodeUrls],
    ...["--replicas", String(plan.replicas)],
    ...["--host", opts.host],
  ], s.env);
  s.children.push(proxy);
  printWelcome(proxy.url, opts.data, adminToken, s.children, opts.host, s.read.staleAdminFile);
}

/**
 * Says why the start failed (nothing when `err` is undefined: stopped by a signal), stops the
 * children started, and takes back what it wrote.
 */
async function undoFailedStart(
  err: unknown,
  s: Start,
  stopAll: () => Promise<void>,
  lock: DataDirLock,
  before: Awaited<ReturnType<typeof dirState>>,
): Promise<void> {
  // A node's own hint names its --port; in this task that is --node-port (only then: a bad
  // --host is no port's fault).
  const portAdvice = err instanceof ChildExitError &&
    err.stderr.some((l) => l.includes("--port"));
  const hint = s.children.length < s.read.plan.ids.length && portAdvice ? NODE_PORT_HINT : "";
  if (err !== undefined) {
    console.error(`Cannot start the cluster: ${err instanceof Error ? err.message : err}${hint}`);
  }
  await stopAll();
  if (before === "used" || s.children.some((c) => c.name === "proxy")) return;
  const data = s.read.opts.data;
  // Best effort, the start having failed already: say what is left rather than crash.
  await undoFirstStart(data, lock, before, s.created).catch((undo) => {
    console.error(
      `Could not remove what this start wrote in ${data}: ${
        undo instanceof Error ? undo.message : undo
      }; remove it by hand before the next start`,
    );
  });
}

async function main(): Promise<number> {
  const read = await optionsOrExit();
  if (typeof read === "number") return read;
  const { opts, plan, given } = read;
  const data = opts.data;
  const home = resolve(data);
  for (const note of plan.notes) console.error(note);
  // A first start that fails takes back what it wrote (DESIGN: a failed start writes nothing).
  const before = await dirState(data);
  const lock = await lockOrSay(data);
  if (lock === null) return 1;
  using _lock = lock;
  const taken = await heldDirs([...plan.ids.map((id) => join(home, id)), proxyDir(home)]);
  if (taken.length > 0) {
    for (const err of taken) console.error(`Cannot start the cluster: ${err.message}`);
    return 1;
  }
  const created: string[] = [];
  const adminToken = given.admin ?? await newToken(adminTokenFile(data), created);
  const clusterSecret = given.cluster ?? await newToken(secretFile(data), created);
  const env = {
    RINGKV_CLUSTER_SECRET: clusterSecret,
    RINGKV_ADMIN_TOKEN: adminToken,
    // Children stop once this process is gone (a kill -9 forwards no signal).
    [PARENT_PID_ENV]: String(Deno.pid),
  };
  const s: Start = {
    read,
    home,
    env,
    created,
    children: [],
    life: { stopping: false, signalled: false },
  };
  const stopAll = async () => {
    s.life.stopping = true;
    for (const child of s.children.toReversed()) await child.stop();
  };
  const stopped = Promise.withResolvers<void>();
  const onSignal = () => {
    s.life.signalled = true;
    stopped.resolve();
  };
  // From the first child on: a signal while they start stops those started (none left behind).
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  // Orphaned (its `deno task` killed): everything stops, as on Ctrl-C.
  const watch = new AbortController();
  void parentGone(STARTED_BY, { signal: watch.signal }).then(onSignal);
  try {
    await startAll(s, adminToken);
  } catch (err) {
    // Ctrl-C in a terminal reaches the children too: a node still starting exits 130 then,
    // which is the user's stop, not a failure (QA: "n2 exited with code 130 before listening").
    // The child's exit can be seen before this process's own signal is (CI saw it): wait a
    // moment for that signal before calling the start failed.
    if (!s.life.signalled && endedBySignal(err)) await withinMs(stopped.promise, SIGNAL_GRACE_MS);
    const signalled = s.life.signalled;
    await undoFailedStart(signalled ? undefined : err, s, stopAll, lock, before);
    if (!signalled) return 1;
    console.log("Stopped while starting; nothing is left running.");
    return 0;
  }

  let proxyFailed = false;
  const proxyExit = s.children.find((c) => c.name === "proxy")?.exited.then((code) => {
    // Ctrl-C reaches the proxy too, which then exits 0; any other code is a failure.
    if (!s.life.stopping && code !== 0) {
      proxyFailed = true;
      console.error(`[proxy] exited with code ${code}: stopping the nodes`);
    }
    stopped.resolve();
  });
  await stopped.promise;
  console.log("\nStopping the cluster...");
  await stopAll();
  await proxyExit;
  watch.abort();
  console.log("Stopped. Run the same command again to come back with all the data.");
  return proxyFailed ? 1 : 0;
}

/** How long a child's exit by SIGINT or SIGTERM waits for the same signal to reach the task. */
const SIGNAL_GRACE_MS = 2_000;

/** A child that exited as SIGINT or SIGTERM ends a process (128 + the signal's number). */
function endedBySignal(err: unknown): boolean {
  return err instanceof ChildExitError && (err.code === 130 || err.code === 143);
}

/** Resolves when `promise` does or after `ms`, whichever comes first. */
async function withinMs(promise: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<void>((resolve) => timer = setTimeout(resolve, ms));
  await Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

if (import.meta.main) Deno.exit(await main());
