/**
 * `deno task node`: reads and checks an optional flat JSON image, opens the data directory
 * (snapshot + log replay), loads the image, serves the node API and prints one line when it
 * is ready: `ringkv node <id> listening on http://<host>:<port>`. SIGINT/SIGTERM stop it cleanly.
 *
 * @module
 */
import { urlHost } from "../shared/node_url.ts";
import { ConfigError } from "../shared/config.ts";
import { readTlsFiles, tlsServeError } from "../shared/tls_files.ts";
import { isBadHost } from "../shared/startup_hint.ts";
import { RingkvError } from "../shared/errors.ts";
import { createNodeApp } from "./http/node_app.ts";
import { guard } from "../shared/guard.ts";
import { hostPolicy } from "../shared/browser_guard.ts";
import { type GatedListener, listenBehindGate } from "../shared/starting_gate.ts";
import { DEFAULT_REQUEST_LIMITS } from "../shared/limits.ts";
import { NODE_ENV, type NodeConfig, nodeStartupHint, parseNodeConfig } from "./node_config.ts";
import { createDenoDisk } from "./storage/disk.ts";
import { createLogger, type LogFn } from "../shared/log.ts";
import { RequestCounters } from "./http/node_metrics.ts";
import { timedDisk } from "./storage/timed_disk.ts";
import type { NodeEngine } from "./engine/engine.ts";
import { type FlatImage, parseFlatImage } from "./http/flat_image.ts";
import type { Limits } from "../shared/limits.ts";
import { openEngine, RecoveryError, ShutdownSnapshotError } from "./engine/open_engine.ts";
import { diskFloorStore, firstWatermark } from "./paxos/acceptor_floor.ts";
import type { FloorStore } from "./paxos/acceptor.ts";
import {
  DataDirInUseError,
  type DataDirLock,
  DataDirUnusableError,
  holderAfterFailedStart,
  lockDataDir,
} from "../shared/data_dir_lock.ts";
import { DataDirKindError } from "../shared/data_dir_kind.ts";
import { offsetClock } from "../shared/test_clock.ts";
import { orphanLine, PARENT_PID_ENV, parentGone, watchedParent } from "../shared/parent_watch.ts";

const SHUTDOWN_TIMEOUT_MS = 5_000;

/**
 * The `--import FILE` image, read and checked before the data directory is touched: a bad
 * image fails the start with nothing written there (DESIGN: a failed start writes nothing).
 */
async function readImage(file: string, limits: Limits): Promise<FlatImage> {
  let text: string;
  try {
    text = await Deno.readTextFile(file);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    throw new ConfigError(`Cannot import ${file}: the file does not exist`);
  }
  let image: unknown;
  try {
    image = JSON.parse(text);
  } catch (err) {
    throw new ConfigError(`Cannot import ${file}: it is not JSON (${(err as Error).message})`);
  }
  try {
    return parseFlatImage(image, limits);
  } catch (err) {
    if (!(err instanceof RingkvError)) throw err;
    throw new ConfigError(`Cannot import ${file}: ${err.message}`);
  }
}

/** Loads an image {@link readImage} checked into the engine. */
async function importImage(engine: NodeEngine, file: string, image: FlatImage): Promise<number> {
  try {
    return await engine.importFlat(image);
  } catch (err) {
    if (!(err instanceof RingkvError)) throw err;
    throw new ConfigError(`Cannot import ${file}: ${err.message}`);
  }
}

/** Opens the engine; every failure to open is the operator's to read, without a stack. */
async function open(config: NodeConfig, counters: RequestCounters): Promise<NodeEngine> {
  try {
    return await openEngine({
      disk: timedDisk(await createDenoDisk(config.data), counters.fsync),
      ...(config.id ? { id: config.id } : {}),
      limits: config.limits,
      ...(config.clockOffsetMs ? { now: offsetClock(config.clockOffsetMs) } : {}),
      ...(config.snapshotEveryBytes ? { snapshotEveryBytes: config.snapshotEveryBytes } : {}),
      ...(config.reserveMinBytes === undefined ? {} : { reserveMinBytes: config.reserveMinBytes }),
    });
  } catch (err) {
    if (err instanceof RecoveryError || !(err instanceof Error)) throw err;
    // e.g. a data directory that belongs to another node id, or one that cannot be read.
    throw new ConfigError(err.message);
  }
}

/** The acceptor's watermark file, read once now: a node that cannot read it says so at start. */
async function openFloor(config: NodeConfig): Promise<FloorStore> {
  const floor = await diskFloorStore(config.data);
  try {
    await floor.load();
  } catch (err) {
    if (!(err instanceof Error)) throw err;
    throw new ConfigError(err.message);
  }
  return floor;
}

/** JSON lines on stderr at `--log-level` (default warn); the cluster secret never appears. */
function loggerFor(config: NodeConfig): LogFn {
  const write = (line: string) => console.error(line);
  return createLogger({ level: config.logLevel, secrets: [config.clusterSecret], write });
}

/**
 * Binds the port before the data directory is touched: a port in use fails the start here,
 * before the lock, a read or a write of the directory.
 */
async function listen(config: NodeConfig): Promise<Listener> {
  const tls = config.tls === undefined ? {} : await readTlsFiles(config.tls, Deno.readTextFile);
  try {
    return await listenBehindGate<Deno.ServeHandlerInfo>(
      (port, handler, onListen) =>
        Deno.serve({ hostname: config.host, port, ...tls, onListen }, handler),
      { port: config.port, log: loggerFor(config), what: `the node is loading ${config.data}` },
    );
  } catch (err) {
    throw tlsServeError(err, config.tls) ?? err;
  }
}

type Listener = GatedListener<Deno.ServeHandlerInfo>;

/** Opens the gate to the node's app, announces it, serves until a signal; returns the exit code. */
async function serve(
  listener: Listener,
  engine: NodeEngine,
  config: NodeConfig,
  counters: RequestCounters,
  floorStore: FloorStore,
  orphaned: Promise<void>,
): Promise<number> {
  const app = createNodeApp({
    engine,
    floorStore,
    counters,
    limits: config.limits,
    ...(config.clusterSecret ? { clusterSecret: config.clusterSecret } : {}),
    log: loggerFor(config),
  });
  const limits = { ...DEFAULT_REQUEST_LIMITS, maxInFlight: config.maxInFlight };
  // Without a cluster secret (loopback only), a web page could reach the node as it could a
  // proxy: the same Host and Origin checks (shared/browser_guard.ts); proxies call nodes by
  // address or a name of their map, with no Origin.
  listener.gate.open(guard(app.fetch, limits, hostPolicy(config.clusterSecret ? "*" : [])));
  const scheme = config.tls ? "https" : "http";
  console.log(
    `ringkv node ${engine.id} listening on ${scheme}://${urlHost(config.host)}:${listener.port}`,
  );
  const stop = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGINT", stop.resolve);
  Deno.addSignalListener("SIGTERM", stop.resolve);
  // Orphaned (deno task cluster killed): stop as on SIGTERM, freeing the port and the lock.
  await Promise.race([stop.promise, listener.serving, orphaned]);
  // In-flight requests get a moment to finish; a stuck scan stream must not block the exit.
  // Proxies' long polls of the change log are answered now: they would hold it up to 5 s.
  engine.changes.close();
  await Promise.race([listener.shutdown(), new Promise((r) => setTimeout(r, SHUTDOWN_TIMEOUT_MS))]);
  try {
    await engine.close();
  } catch (err) {
    if (!(err instanceof ShutdownSnapshotError)) throw err;
    console.error(`ringkv node: ${err.message}`);
    return 1;
  }
  return 0;
}

async function main(): Promise<number> {
  let engine: NodeEngine | undefined;
  let lock: DataDirLock | undefined;
  let config;
  try {
    // Only RINGKV_* variables: the process may be given --allow-env for just those.
    const env = Object.fromEntries(NODE_ENV.map((name) => [name, Deno.env.get(name)]));
    config = parseNodeConfig(Deno.args, env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`ringkv node: ${err.message}`);
    return 2; // a usage error, as for the proxy, the cluster and kv
  }
  try {
    if ("help" in config) {
      console.log(config.help);
      return 0;
    }
    const parent = watchedParent({ [PARENT_PID_ENV]: Deno.env.get(PARENT_PID_ENV) });
    // Said once, so a stray RINGKV_PARENT_PID is not a silent exit 0 (review).
    const orphaned = parent === undefined
      ? new Promise<void>(() => {})
      : parentGone(parent).then(() => loggerFor(config)(orphanLine("node", parent)));
    // The image, the port, the lock, then the directory: a failed start writes nothing there.
    const image = config.import === undefined
      ? undefined
      : await readImage(config.import, config.limits);
    const listener = await listen(config);
    lock = await lockDataDir(config.data, "node");
    const counters = new RequestCounters();
    const floor = await openFloor(config);
    engine = await open(config, counters);
    await firstWatermark(floor, engine);
    if (config.import !== undefined && image !== undefined) {
      const n = await importImage(engine, config.import, image);
      loggerFor(config)({ level: "info", msg: "imported", file: config.import, keys: n });
    }
    return await serve(listener, engine, config, counters, floor, orphaned);
  } catch (err) {
    if (
      !(err instanceof ConfigError || err instanceof RecoveryError ||
        err instanceof Deno.errors.AddrInUse || err instanceof Deno.errors.PermissionDenied ||
        err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.NotFound ||
        err instanceof DataDirInUseError || err instanceof DataDirUnusableError ||
        err instanceof DataDirKindError || isBadHost(err))
    ) throw err;
    // One reason, not two: a port taken by the process that holds this data directory is that
    // same server started twice, and stopping it frees both.
    const held = "help" in config ? null : await holderAfterFailedStart(err, config.data);
    const hint = held?.message ?? nodeStartupHint(err, config, Deno.args) ?? err.message;
    console.error(`ringkv node: ${hint}`);
    await engine?.close();
    return 1;
  } finally {
    lock?.release();
  }
}

if (import.meta.main) Deno.exit(await main());
