/**
 * The proxy's command-line and environment configuration, parsed purely:
 * `proxy/main.ts` passes `Deno.args` and the `RINGKV_*` variables it reads in.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseProxyConfig } from "./proxy_config.ts";
 * const config = parseProxyConfig(["--port", "0", "--nodes", "http://127.0.0.1:7001"], {});
 * assert(!("help" in config) && config.port === 0);
 * ```
 */
import {
  checkDistinctTokens,
  checkRange,
  ConfigError,
  envNames,
  helpText,
  namingVariables,
  parseFlags,
  SERVER_FLAGS,
} from "../shared/config.ts";
import { parseNodeUrl } from "../shared/node_url.ts";
import { TEST_CLOCK_ENV, testClockOffset } from "../shared/test_clock.ts";
import { startupHint } from "../shared/startup_hint.ts";
import { checkExposure, listenHost, type TlsFiles, tlsFiles } from "../shared/exposure.ts";
import { parseAllowedHosts } from "../shared/browser_guard.ts";
import { DEFAULT_LIMITS, type Limits } from "../shared/limits.ts";
import { checkLogLevel, type LogLevel } from "../shared/log.ts";
import { DEFAULT_VNODES } from "../shared/ring.ts";
import { DEFAULT_TOMBSTONE_GRACE_MS, MIN_TOMBSTONE_GRACE_MS } from "../shared/tombstone_grace.ts";

const SPEC = {
  port: { type: "int", default: 8080, help: "port to listen on (0: the OS picks)" },
  host: { type: "string", default: "127.0.0.1", help: "address to listen on" },
  nodes: {
    type: "list",
    default: [] as string[],
    help: "initial node URLs, when there is no stored map",
  },
  join: { type: "string", help: "learn the cluster map from this node's URL" },
  data: { type: "string", default: "./data/proxy", help: "directory of the proxy's map file" },
  replicas: {
    type: "int",
    help: "copies of each key, new clusters only (default: 3, or the number of nodes if fewer)",
  },
  force: {
    type: "bool",
    default: false,
    help: "start a new cluster with fewer nodes than --replicas (keys get fewer copies)",
  },
  vnodes: { type: "int", default: DEFAULT_VNODES, help: "ring points per unit of weight" },
  adminToken: { type: "string", help: "token of the admin API", secret: true },
  clientToken: { type: "string", help: "token clients must send (none: open)", secret: true },
  clusterSecret: { type: "string", help: "secret sent to nodes", secret: true },
  timeoutMs: {
    type: "int",
    default: 2000,
    help:
      "timeout of each wait for a node, in ms, a queue included (data: up to +1/5, at most +200)",
  },
  pollMs: { type: "int", default: 1000, help: "how often to read the nodes' cluster maps, in ms" },
  probeMs: { type: "int", default: 500, help: "how often to probe each node's health, in ms" },
  antiEntropyMs: {
    type: "int",
    default: 30_000,
    help: "how often to compare replicas range by range and sync them, in ms (0: never)",
  },
  tombstoneGraceMs: {
    type: "int",
    default: DEFAULT_TOMBSTONE_GRACE_MS,
    help:
      `forget a deleted key's tombstone once every replica holds it and it is this old, in ms (at least ${MIN_TOMBSTONE_GRACE_MS}; 0: keep tombstones for good)`,
  },
  fastWrites: {
    type: "bool",
    default: true,
    help: "a key's next write from this proxy in one round trip (--no-fast-writes: always two)",
  },
  ...SERVER_FLAGS,
  ca: { type: "string", help: "CA certificate file (PEM) to trust for https node URLs" },
  keyCache: {
    type: "int",
    default: 1_000_000,
    help:
      "ring positions of this many recent keys kept in memory (about 60-100 B each, and at most 32 Mi characters of keys in all)",
  },
  reusePort: {
    type: "bool",
    default: false,
    help: "share --port with other proxy processes started with it too (Linux SO_REUSEPORT)",
  },
  allowedHosts: {
    type: "string",
    help:
      "host names clients may use in URLs, comma-separated (.example.com: its subdomains too; *: any); IP addresses and one-label names (localhost) always pass (default: none, or * with a client token)",
  },
} as const;

/** The environment variables the proxy reads: its flags' and the test-only clock offset. */
export const PROXY_ENV: readonly string[] = [...envNames(SPEC), TEST_CLOCK_ENV];

const USAGE =
  "usage: deno task proxy [--port 8080] (--nodes URL,URL | --join URL) [--data ./data/proxy]";

/** Everything the proxy's main needs, validated. */
export interface ProxyConfig {
  port: number;
  host: string;
  nodes: string[];
  join?: string;
  data: string;
  /** Undefined: a new cluster gets {@link defaultReplicas} of its nodes. */
  replicas?: number;
  /** Start a new cluster with fewer nodes than `replicas`. */
  force: boolean;
  vnodes: number;
  adminToken?: string;
  clientToken?: string;
  clusterSecret?: string;
  timeoutMs: number;
  pollMs: number;
  /** Health probe interval of each node (replication's failure detector). */
  probeMs: number;
  /** Interval of anti-entropy sweeps (0: none). */
  antiEntropyMs: number;
  /** One-round-trip writes of keys this proxy wrote last (docs/replication.md). */
  fastWrites: boolean;
  /** Age of a tombstone every replica holds before it is forgotten (0: never). */
  tombstoneGraceMs: number;
  /** Test-only wall-clock offset of ballots (shared/test_clock.ts); unset in production. */
  clockOffsetMs?: number;
  limits: Limits;
  /** Requests answered at once before 503. */
  maxInFlight: number;
  /** Serve https with these files. */
  tls?: TlsFiles;
  /** Extra CA certificate file to trust when calling nodes. */
  ca?: string;
  /** `--log-level`; absent: warn. */
  logLevel?: LogLevel;
  /** Several proxy processes listen on the same port (the kernel spreads connections). */
  reusePort: boolean;
  /** How many keys' ring positions the proxy remembers (saves a SHA-1 per request). */
  keyCache: number;
  /**
   * Host names a request's `Host` may carry besides IP addresses and one-label names
   * (shared/browser_guard.ts): `--allowed-hosts`; else every name with a client token (a page
   * cannot send it), none without one (DNS rebinding).
   */
  allowedHosts: "*" | string[];
}

function checkUrl(flag: string, url: string): string {
  const parsed = parseNodeUrl(url);
  if ("problem" in parsed) {
    throw new ConfigError(`Cannot read --${flag}: "${url.slice(0, 200)}" ${parsed.problem}`);
  }
  return parsed.origin;
}

/** Parses the proxy's flags and environment; `{help}` carries the text to print. */
export function parseProxyConfig(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): ProxyConfig | { help: string } {
  const parsed = parseFlags(SPEC, args, env);
  if ("help" in parsed) return { help: helpText(USAGE, SPEC) };
  try {
    if (parsed.rest.length > 0) {
      throw new ConfigError(`Unexpected argument "${parsed.rest[0]}" (see --help)`);
    }
    const v = parsed.values;
    const empty = (s: string | undefined) => (s === undefined || s === "" ? undefined : s);
    const host = listenHost(v.host);
    checkExposure("proxy", host, [
      { flag: "--admin-token", env: "RINGKV_ADMIN_TOKEN", set: empty(v.adminToken) !== undefined },
    ]);
    checkDistinctTokens({
      "--admin-token (or RINGKV_ADMIN_TOKEN)": empty(v.adminToken),
      "--client-token (or RINGKV_CLIENT_TOKEN)": empty(v.clientToken),
      "--cluster-secret (or RINGKV_CLUSTER_SECRET)": empty(v.clusterSecret),
    });
    const tls = tlsFiles(v.cert, v.key);
    if (v.nodes.length > 0 && v.join !== undefined && v.join !== "") {
      // Which one was meant is unknown (a RINGKV_JOIN left set in the shell, say): join won.
      throw new ConfigError(
        "Cannot use both --nodes (or RINGKV_NODES) and --join (or RINGKV_JOIN): --nodes names " +
          "the nodes of a cluster this proxy starts or restarts, --join a node of a running " +
          "cluster to learn its map from; give one",
      );
    }
    return {
      ...(tls ? { tls } : {}),
      ...(empty(v.ca) ? { ca: v.ca } : {}),
      ...(v.logLevel !== undefined ? { logLevel: checkLogLevel(v.logLevel) } : {}),
      maxInFlight: checkRange("max-in-flight", v.maxInFlight, 1, 1_000_000),
      port: checkRange("port", v.port, 0, 65535),
      reusePort: v.reusePort,
      keyCache: checkRange("key-cache", v.keyCache, 1, 100_000_000),
      host,
      nodes: v.nodes.map((url) => checkUrl("nodes", url)),
      join: v.join === undefined || v.join === "" ? undefined : checkUrl("join", v.join),
      data: v.data,
      ...(v.replicas === undefined ? {} : { replicas: checkRange("replicas", v.replicas, 1, 16) }),
      force: v.force,
      vnodes: checkRange("vnodes", v.vnodes, 1, 10_000),
      allowedHosts: v.allowedHosts === undefined
        ? (empty(v.clientToken) === undefined ? [] : "*")
        : parseAllowedHosts(v.allowedHosts),
      adminToken: empty(v.adminToken),
      clientToken: empty(v.clientToken),
      clusterSecret: empty(v.clusterSecret),
      timeoutMs: checkRange("timeout-ms", v.timeoutMs, 1, 600_000),
      pollMs: checkRange("poll-ms", v.pollMs, 0, 3_600_000),
      probeMs: checkRange("probe-ms", v.probeMs, 10, 3_600_000),
      antiEntropyMs: checkRange("anti-entropy-ms", v.antiEntropyMs, 0, 86_400_000),
      fastWrites: v.fastWrites,
      tombstoneGraceMs: v.tombstoneGraceMs === 0 ? 0 : checkRange(
        "tombstone-grace-ms",
        v.tombstoneGraceMs,
        MIN_TOMBSTONE_GRACE_MS,
        31_536_000_000,
      ),
      ...clockOffset(env),
      limits: {
        ...DEFAULT_LIMITS,
        maxValueBytes: checkRange("max-value-bytes", v.maxValueBytes, 1, 1024 ** 3),
        maxKeyBytes: checkRange("max-key-bytes", v.maxKeyBytes, 1, 65536),
        bodyTimeoutMs: checkRange("body-timeout-ms", v.bodyTimeoutMs, 1, 3_600_000),
      },
    };
  } catch (err) {
    throw namingVariables(err, parsed.fromEnv);
  }
}

/** What to do about a taken port or a path the task may not touch (shared/startup_hint.ts). */
export function proxyStartupHint(
  err: unknown,
  config: ProxyConfig,
  args: readonly string[],
): string | undefined {
  const read = [config.ca, config.tls?.cert, config.tls?.key].filter((p) => p !== undefined);
  return startupHint("proxy", err, { ...config, paths: { read, write: [config.data] }, args });
}

/** The test-only clock offset, when one is set (shared/test_clock.ts). */
function clockOffset(env: Record<string, string | undefined>): { clockOffsetMs?: number } {
  const offset = testClockOffset(env);
  return offset === 0 ? {} : { clockOffsetMs: offset };
}
