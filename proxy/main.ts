/**
 * `deno task proxy`: the proxy process. The only proxy code that reads `Deno.args` and
 * `Deno.env` or calls `Deno.serve`. Prints `ringkv proxy listening on <url>` once ready.
 *
 * @module
 */
import { urlHost } from "../shared/node_url.ts";
import { TTL_SWEEP_MS, TtlReaper } from "./routing/ttl_reaper.ts";
import { TOMBSTONE_SWEEP_MS, TombstonePurge } from "./replication/tombstone_purge.ts";
import { ConfigError } from "../shared/config.ts";
import { readPem, readTlsFiles, tlsServeError } from "../shared/tls_files.ts";
import { isBadHost } from "../shared/startup_hint.ts";
import { assembleProxy } from "./http/assemble_proxy.ts";
import {
  createPoller,
  describeStart,
  ignoredReplicas,
  recordMovedNodes,
  StartupError,
  startupMap,
} from "./cluster/bootstrap.ts";
import { ClusterState, phaseOf } from "./cluster/map_view.ts";
import { chooseMap } from "./cluster/map_paxos.ts";
import { RingkvError } from "../shared/errors.ts";
import { HybridClock, randomProxyId } from "../shared/version.ts";
import { sameMap } from "../shared/wire.ts";
import { guard } from "../shared/guard.ts";
import { hostPolicy } from "../shared/browser_guard.ts";
import { type GatedListener, listenBehindGate } from "../shared/starting_gate.ts";
import { DEFAULT_REQUEST_LIMITS } from "../shared/limits.ts";
import { parseProxyConfig, PROXY_ENV, type ProxyConfig, proxyStartupHint } from "./proxy_config.ts";
import { createFileMapStore, MapFileError } from "./cluster/map_store.ts";
import { NodeAdmin } from "./nodes/node_admin.ts";
import type { NodeFetch } from "./nodes/node_client.ts";
import { Rebalancer } from "./rebalance/rebalancer.ts";
import { createReplication } from "./replication/wiring.ts";
import { createLogger, type LogFn } from "../shared/log.ts";
import { instrumentFetch, ProxyMetrics } from "./http/proxy_metrics.ts";
import {
  DataDirInUseError,
  type DataDirLock,
  DataDirUnusableError,
  holderAfterFailedStart,
  lockDataDir,
} from "../shared/data_dir_lock.ts";
import { DataDirKindError } from "../shared/data_dir_kind.ts";
import { orphanLine, PARENT_PID_ENV, parentGone, watchedParent } from "../shared/parent_watch.ts";

/** JSON lines on stderr at `--log-level` (default warn); tokens and secrets never appear. */
function loggerFor(config: ProxyConfig): LogFn {
  const secrets = [config.adminToken, config.clientToken, config.clusterSecret];
  return createLogger({ level: config.logLevel, secrets, write: (l) => console.error(l) });
}

async function pollLoop(
  tick: () => Promise<void>,
  ms: number,
  signal: AbortSignal,
  log: LogFn,
) {
  while (!signal.aborted) {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      signal.addEventListener("abort", () => (clearTimeout(timer), resolve()), { once: true });
    });
    if (signal.aborted) return;
    await tick().catch((err) => log({ msg: "poll failed", error: String(err) }));
  }
}

/**
 * `fetch` to nodes; with `--ca` (its PEM text), one that also trusts that CA. A CA whose PEM
 * body rustls cannot read is a ConfigError here, before the port and the lock.
 */
function nodeFetch(ca: string | undefined, caPath: string | undefined): NodeFetch {
  if (ca === undefined) return (url, init) => globalThis.fetch(url, init);
  let client: Deno.HttpClient;
  try {
    client = Deno.createHttpClient({ caCerts: [ca] });
  } catch (err) {
    if (!(err instanceof Error)) throw err;
    throw new ConfigError(`Cannot use --ca ${caPath}: ${err.message}`);
  }
  return (url, init) => globalThis.fetch(url, { ...init, client });
}

type Listener = GatedListener<Deno.ServeHandlerInfo>;

/**
 * Binds the port before the data directory is touched: a port in use fails the start here,
 * before the lock, a read or a write of the directory.
 */
async function listen(config: ProxyConfig, stop: AbortSignal): Promise<Listener> {
  const tls = config.tls === undefined ? {} : await readTlsFiles(config.tls, Deno.readTextFile);
  return await listenBehindGate<Deno.ServeHandlerInfo>(
    (port, handler, onListen) =>
      Deno.serve({
        port,
        hostname: config.host,
        reusePort: config.reusePort,
        signal: stop,
        ...tls,
        onListen,
      }, handler),
    {
      port: config.port,
      log: loggerFor(config),
      what: `the proxy is loading its cluster map from ${config.data} and the nodes`,
    },
  );
}

/**
 * The cluster map to serve: stored, learnt or new (proxy/cluster/bootstrap.ts), with nodes
 * that moved to new URLs recorded, saved in `--data` and pushed to the nodes when new.
 */
async function openClusterState(
  config: ProxyConfig,
  admin: NodeAdmin,
  log: LogFn,
): Promise<ClusterState> {
  const store = createFileMapStore(config.data);
  const start = await startupMap({ store, admin, ...config, onWait: (m) => console.log(m) });
  console.log(describeStart(start, config.data));
  const ignored = ignoredReplicas(start, config.replicas);
  if (ignored !== undefined) console.error(ignored);
  if (start.source === "new") {
    // Two proxies starting one cluster on the same new nodes: the nodes choose one map.
    const chosen = await chooseMap(null, start.map, {
      admin,
      clock: new HybridClock(randomProxyId()),
    })
      .catch((err) => {
        if (!(err instanceof RingkvError)) throw err;
        throw new StartupError(`Cannot start the cluster: ${err.message}`);
      });
    if (!sameMap(chosen.map, start.map)) {
      // Another proxy started the cluster at the same moment (or an earlier start did).
      console.log(
        `ringkv proxy: the nodes chose another first map (epoch ${chosen.map.epoch}, ` +
          `${chosen.map.replicas} replica(s), nodes ${
            chosen.map.nodes.map((n) => n.id).join(", ")
          }); using it`,
      );
    }
    const state = await ClusterState.open(chosen.map, { store, admin, log });
    await store.save(chosen.map);
    const report = await state.push(chosen.map);
    if (report.failed.length > 0) log({ msg: "map push incomplete", failed: report.failed });
    return opened(state, start.source, log);
  }
  const state = await ClusterState.open(start.map, { store, admin, log });
  if (start.source !== "stored") await store.save(start.map);
  await state.poll();
  // A change whose proxy died right after it was chosen is shown from the first answer on.
  await state.awaitUnpushed();
  return opened(state, start.source, log);
}

function opened(state: ClusterState, source: string, log: LogFn): ClusterState {
  const map = state.current().map;
  log({ msg: "cluster map", epoch: map.epoch, source, phase: phaseOf(map) });
  return state;
}

async function serve(
  config: ProxyConfig,
  rawFetch: NodeFetch,
  listener: Listener,
  stop: AbortController,
) {
  const log = loggerFor(config);
  const metrics = new ProxyMetrics();
  const fetch = instrumentFetch(rawFetch, metrics);
  const admin = new NodeAdmin({ fetch, timeoutMs: config.timeoutMs, ...secret(config) });
  const state = await openClusterState(config, admin, log);
  // Nodes restarted on other ports: recorded now, else at the polls that follow.
  const recordMoved = () => recordMovedNodes(state, admin, config.nodes, log);
  const moved = await recordMoved();
  const replication = createReplication({
    fetch,
    timeoutMs: config.timeoutMs,
    probeMs: config.probeMs,
    antiEntropyMs: config.antiEntropyMs,
    clockOffsetMs: config.clockOffsetMs,
    fastWrites: config.fastWrites,
    maps: state, // catches up and records a node back on a wiped directory (proxy/replication/rejoin.ts)
    limits: config.limits,
    ...secret(config),
    log,
  });
  const accept = replication.client.accept.bind(replication.client);
  const rebalancer = new Rebalancer({ state, admin, log, accept, limits: config.limits });
  let reaper: TtlReaper | undefined;
  let purge: TombstonePurge | undefined;
  const app = assembleProxy({
    state,
    rebalancer,
    admin,
    metrics,
    replication,
    fetch: rawFetch,
    adminFetch: fetch,
    limits: config.limits,
    clusterSecret: config.clusterSecret,
    clientToken: config.clientToken,
    adminToken: config.adminToken,
    timeoutMs: config.timeoutMs,
    keyPointsCapacity: config.keyCache,
    startedAt: Date.now(),
    memory: () => Deno.memoryUsage(),
    log,
    onRouter: (router, client) => {
      reaper = new TtlReaper({ topology: state, router, client, log, counted: metrics.ttlReaped });
      if (config.tombstoneGraceMs === 0) return;
      purge = new TombstonePurge({
        topology: state,
        client,
        dropStrays: (node, epoch, ranges) => admin.drop(node.url, ranges, epoch, node.incarnation),
        mapEpochOf: async (node) => (await admin.getMap(node.url))?.epoch ?? 0,
        graceMs: config.tombstoneGraceMs,
        log,
        counted: metrics.tombstonesPurged,
      });
    },
  });
  const scheme = config.tls ? "https" : "http";
  const limits = { ...DEFAULT_REQUEST_LIMITS, maxInFlight: config.maxInFlight };
  listener.gate.open(guard(app.fetch, limits, hostPolicy(config.allowedHosts)));
  console.log(`ringkv proxy listening on ${scheme}://${urlHost(config.host)}:${listener.port}`);
  if (state.current().map.rebalancing !== null) void rebalancer.run();
  replication.start(state);
  reaper?.start(TTL_SWEEP_MS);
  purge?.start(TOMBSTONE_SWEEP_MS);
  const poller = createPoller({ state, rebalancer, ...(moved ? {} : { pending: recordMoved }) });
  const polling = config.pollMs > 0 ? pollLoop(poller.tick, config.pollMs, stop.signal, log) : null;

  const onSignal = () => stop.abort();
  Deno.addSignalListener("SIGINT", onSignal);
  Deno.addSignalListener("SIGTERM", onSignal);
  await listener.serving;
  replication.stop();
  reaper?.stop();
  purge?.stop();
  await polling;
  Deno.removeSignalListener("SIGINT", onSignal);
  Deno.removeSignalListener("SIGTERM", onSignal);
  return 0;
}

function secret(config: ProxyConfig): { clusterSecret?: string } {
  return config.clusterSecret === undefined ? {} : { clusterSecret: config.clusterSecret };
}

async function main(): Promise<number> {
  let config;
  try {
    // Only RINGKV_* variables: the process may be given --allow-env for just those.
    const env = Object.fromEntries(PROXY_ENV.map((name) => [name, Deno.env.get(name)]));
    config = parseProxyConfig(Deno.args, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(err.message);
    return 2;
  }
  if ("help" in config) {
    console.log(config.help);
    return 0;
  }
  let lock: DataDirLock | undefined;
  try {
    // The files, the port, the lock, then the directory: a failed start writes nothing there.
    const ca = config.ca === undefined
      ? undefined
      : await readPem("ca", config.ca, Deno.readTextFile);
    const rawFetch = nodeFetch(ca, config.ca);
    const stop = new AbortController();
    const parent = watchedParent({ [PARENT_PID_ENV]: Deno.env.get(PARENT_PID_ENV) });
    // Orphaned (deno task cluster killed): stop as on SIGTERM, freeing the port and the lock.
    if (parent !== undefined) {
      void parentGone(parent, { signal: stop.signal }).then(() => {
        loggerFor(config)(orphanLine("proxy", parent));
        stop.abort();
      });
    }
    const listener = await listen(config, stop.signal).catch((err) => {
      throw tlsServeError(err, config.tls) ?? err;
    });
    lock = await lockDataDir(config.data, "proxy");
    return await serve(config, rawFetch, listener, stop);
  } catch (err) {
    if (
      !(err instanceof StartupError || err instanceof MapFileError || err instanceof ConfigError ||
        err instanceof DataDirInUseError || err instanceof DataDirUnusableError ||
        err instanceof DataDirKindError || err instanceof Deno.errors.NotFound ||
        err instanceof Deno.errors.PermissionDenied ||
        err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.AddrInUse ||
        isBadHost(err))
    ) throw err;
    // A start that failed leaves no lock file, nor the directory it made for it.
    await lock?.abandon();
    // One reason, not two: a port taken by the holder of this data directory is this proxy
    // started twice, and stopping it frees both.
    const held = await holderAfterFailedStart(err, config.data);
    console.error(held?.message ?? proxyStartupHint(err, config, Deno.args) ?? err.message);
    return err instanceof StartupError ? err.exitCode : 1;
  } finally {
    lock?.release();
  }
}

if (import.meta.main) Deno.exit(await main());
