/**
 * The node's command-line and environment configuration, parsed purely: `node/main.ts`
 * passes `Deno.args` and the `RINGKV_*` variables it reads in.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseNodeConfig } from "./node_config.ts";
 * const config = parseNodeConfig(["--port", "0", "--id", "n1"], {});
 * assert(!("help" in config) && config.port === 0 && config.id === "n1");
 * ```
 */
import {
  checkRange,
  ConfigError,
  envNames,
  helpText,
  namingVariables,
  parseFlags,
  SERVER_FLAGS,
} from "../shared/config.ts";
import { TEST_CLOCK_ENV, testClockOffset } from "../shared/test_clock.ts";
import { startupHint } from "../shared/startup_hint.ts";
import { checkExposure, listenHost, type TlsFiles, tlsFiles } from "../shared/exposure.ts";
import { DEFAULT_LIMITS, type Limits } from "../shared/limits.ts";
import { checkLogLevel, type LogLevel } from "../shared/log.ts";
import { isWriterId } from "../shared/version.ts";

const SPEC = {
  port: { type: "int", default: 7001, help: "port to listen on (0: the OS picks)" },
  host: { type: "string", default: "127.0.0.1", help: "address to listen on" },
  data: { type: "string", default: "./data/node", help: "directory of the log and snapshot" },
  id: { type: "string", help: "node id, fixed at the first start (default: generated)" },
  clusterSecret: { type: "string", help: "secret proxies must send (none: open)", secret: true },
  import: { type: "string", help: 'flat JSON image {"key": "value"} to load at start' },
  ...SERVER_FLAGS,
  snapshotEveryBytes: { type: "int", help: "write a snapshot once the log grows past this" },
  reserveMinBytes: {
    type: "int",
    help: "smallest snapshot.reserve, kept for a full disk's snapshot: 1.5 x data + this " +
      "(default 65536; 0: none)",
  },
} as const;

/** The environment variables the node reads: its flags' and the test-only clock offset. */
export const NODE_ENV: readonly string[] = [...envNames(SPEC), TEST_CLOCK_ENV];

const USAGE = "usage: deno task node [--port 7001] [--data ./data/node] [--id n1]";

/** Everything the node's main needs, validated. */
export interface NodeConfig {
  port: number;
  host: string;
  data: string;
  id?: string;
  clusterSecret?: string;
  /** Test-only wall-clock offset (shared/test_clock.ts); unset in production. */
  clockOffsetMs?: number;
  import?: string;
  snapshotEveryBytes?: number;
  /** The smallest snapshot.reserve (node/storage/reserve.ts); 0: none. */
  reserveMinBytes?: number;
  limits: Limits;
  /** Requests answered at once before 503. */
  maxInFlight: number;
  /** Serve https with these files. */
  tls?: TlsFiles;
  /** `--log-level`; absent: warn. */
  logLevel?: LogLevel;
}

/** Parses the node's flags and environment; `{help}` carries the text to print. */
export function parseNodeConfig(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): NodeConfig | { help: string } {
  const parsed = parseFlags(SPEC, args, env);
  if ("help" in parsed) return { help: helpText(USAGE, SPEC) };
  try {
    const v = parsed.values;
    if (parsed.rest.length > 0) {
      throw new ConfigError(`Cannot read "${parsed.rest[0]}": the node takes only --options`);
    }
    if (v.id !== undefined && !isWriterId(v.id)) {
      throw new ConfigError(`Cannot use --id "${v.id}": ids are 1-32 of [A-Za-z0-9_]`);
    }
    const host = listenHost(v.host);
    checkExposure("node", host, [
      { flag: "--cluster-secret", env: "RINGKV_CLUSTER_SECRET", set: Boolean(v.clusterSecret) },
    ]);
    const tls = tlsFiles(v.cert, v.key);
    const config: NodeConfig = {
      ...(tls ? { tls } : {}),
      maxInFlight: checkRange("max-in-flight", v.maxInFlight, 1, 1_000_000),
      port: checkRange("port", v.port, 0, 65535),
      host,
      ...clockOffset(env),
      data: v.data,
      limits: {
        ...DEFAULT_LIMITS,
        maxValueBytes: checkRange("max-value-bytes", v.maxValueBytes, 1),
        maxKeyBytes: checkRange("max-key-bytes", v.maxKeyBytes, 1),
        bodyTimeoutMs: checkRange("body-timeout-ms", v.bodyTimeoutMs, 1, 3_600_000),
      },
    };
    if (v.id !== undefined) config.id = v.id;
    if (v.clusterSecret) config.clusterSecret = v.clusterSecret;
    if (v.import) config.import = v.import;
    if (v.logLevel !== undefined) config.logLevel = checkLogLevel(v.logLevel);
    if (v.snapshotEveryBytes !== undefined) {
      config.snapshotEveryBytes = checkRange("snapshot-every-bytes", v.snapshotEveryBytes, 1);
    }
    if (v.reserveMinBytes !== undefined) {
      config.reserveMinBytes = checkRange("reserve-min-bytes", v.reserveMinBytes, 0);
    }
    return config;
  } catch (err) {
    throw namingVariables(err, parsed.fromEnv);
  }
}

/** What to do about a taken port or a path the task may not touch (shared/startup_hint.ts). */
export function nodeStartupHint(
  err: unknown,
  config: NodeConfig | { help: string },
  args: readonly string[],
): string | undefined {
  if ("help" in config) return undefined;
  const read = [config.import, config.tls?.cert, config.tls?.key].filter((p) => p !== undefined);
  return startupHint("node", err, { ...config, paths: { read, write: [config.data] }, args });
}

/** The test-only clock offset, when one is set (shared/test_clock.ts). */
function clockOffset(env: Record<string, string | undefined>): { clockOffsetMs?: number } {
  const offset = testClockOffset(env);
  return offset === 0 ? {} : { clockOffsetMs: offset };
}
