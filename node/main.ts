/**
 * `deno task node`: opens the data directory (snapshot + log replay), loads an optional
 * flat JSON image, serves the node API and prints one line when it is ready:
 * `ringkv node <id> listening on http://<host>:<port>`. SIGINT/SIGTERM stop it cleanly.
 *
 * @module
 */
import { ConfigError } from "../shared/config.ts";
import { RingkvError } from "../shared/errors.ts";
import { createNodeApp } from "./app.ts";
import { guard } from "../shared/guard.ts";
import { keepServing, type StartedServer } from "../shared/keep_serving.ts";
import { DEFAULT_REQUEST_LIMITS } from "../shared/limits.ts";
import { NODE_ENV, type NodeConfig, parseNodeConfig } from "./config.ts";
import { createDenoDisk } from "./disk.ts";
import { createLogger, type LogFn } from "../shared/log.ts";
import { RequestCounters } from "./metrics.ts";
import { timedDisk } from "./timed_disk.ts";
import type { NodeEngine } from "./engine.ts";
import { parseFlatImage } from "./flat_image.ts";
import { openEngine, RecoveryError } from "./open_engine.ts";
import { diskFloorStore } from "./acceptor_floor.ts";

const SHUTDOWN_TIMEOUT_MS = 5_000;

/** Loads `--import FILE` into the engine. */
async function importFile(engine: NodeEngine, config: NodeConfig, file: string): Promise<number> {
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
    return await engine.importFlat(parseFlatImage(image, config.limits));
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
      ...(config.snapshotEveryBytes ? { snapshotEveryBytes: config.snapshotEveryBytes } : {}),
    });
  } catch (err) {
    if (err instanceof RecoveryError || !(err instanceof Error)) throw err;
    // e.g. a data directory that belongs to another node id, or one that cannot be read.
    throw new ConfigError(err.message);
  }
}

/** JSON lines on stderr at `--log-level` (default warn); the cluster secret never appears. */
function loggerFor(config: NodeConfig): LogFn {
  const write = (line: string) => console.error(line);
  return createLogger({ level: config.logLevel, secrets: [config.clusterSecret], write });
}

function urlHost(host: string): string {
  return host.includes(":") ? `[${host}]` : host;
}

async function serve(
  engine: NodeEngine,
  config: NodeConfig,
  counters: RequestCounters,
): Promise<void> {
  const app = createNodeApp({
    engine,
    floorStore: await diskFloorStore(config.data),
    counters,
    limits: config.limits,
    ...(config.clusterSecret ? { clusterSecret: config.clusterSecret } : {}),
    log: loggerFor(config),
  });
  const tls = config.tls === undefined ? {} : {
    cert: await Deno.readTextFile(config.tls.cert),
    key: await Deno.readTextFile(config.tls.key),
  };
  const scheme = config.tls ? "https" : "http";
  const limits = { ...DEFAULT_REQUEST_LIMITS, maxInFlight: config.maxInFlight };
  const handler = guard(app.fetch, limits);
  let announced = false;
  let server: Deno.HttpServer | undefined;
  const serving = keepServing((port) =>
    Deno.serve({
      hostname: config.host,
      port,
      ...tls,
      onListen: ({ port }) => {
        if (announced) return; // a restart after running out of descriptors
        announced = true;
        console.log(
          `ringkv node ${engine.id} listening on ${scheme}://${urlHost(config.host)}:${port}`,
        );
      },
    }, handler), {
    port: config.port,
    log: loggerFor(config),
    onStart: (s: StartedServer) => server = s as Deno.HttpServer,
  });
  const stop = Promise.withResolvers<void>();
  Deno.addSignalListener("SIGINT", stop.resolve);
  Deno.addSignalListener("SIGTERM", stop.resolve);
  await Promise.race([stop.promise, serving]);
  // In-flight requests get a moment to finish; a stuck scan stream must not block the exit.
  const shutdown = server?.shutdown() ?? Promise.resolve();
  await Promise.race([shutdown, new Promise((r) => setTimeout(r, SHUTDOWN_TIMEOUT_MS))]);
  await engine.close();
}

async function main(): Promise<number> {
  let engine: NodeEngine | undefined;
  try {
    // Only RINGKV_* variables: the process may be given --allow-env for just those.
    const env = Object.fromEntries(NODE_ENV.map((name) => [name, Deno.env.get(name)]));
    const config = parseNodeConfig(Deno.args, env);
    if ("help" in config) {
      console.log(config.help);
      return 0;
    }
    await Deno.mkdir(config.data, { recursive: true });
    const counters = new RequestCounters();
    engine = await open(config, counters);
    if (config.import) {
      const n = await importFile(engine, config, config.import);
      loggerFor(config)({ level: "info", msg: "imported", file: config.import, keys: n });
    }
    await serve(engine, config, counters);
    return 0;
  } catch (err) {
    if (
      !(err instanceof ConfigError || err instanceof RecoveryError ||
        err instanceof Deno.errors.AddrInUse || err instanceof Deno.errors.PermissionDenied ||
        err instanceof Deno.errors.NotCapable || err instanceof Deno.errors.NotFound)
    ) throw err;
    const hint = err instanceof Deno.errors.NotCapable
      ? " (deno task node may read and write only ./data: see docs/security.md)"
      : "";
    console.error(`ringkv node: ${err.message}${hint}`);
    await engine?.close();
    return 1;
  }
}

if (import.meta.main) Deno.exit(await main());
