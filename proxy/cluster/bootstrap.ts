/**
 * Where a starting proxy gets its cluster map: its own stored map, else a node's map
 * (`--join`), else a new cluster of `--nodes` (unless those nodes already hold a map,
 * which then wins). Also the poll loop that keeps several proxies on the highest epoch
 * and drives rebalancings nobody else is driving.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { startupMap } from "./bootstrap.ts";
 * assert(typeof startupMap === "function");
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import type { ClusterMap, NodeInfo } from "../../shared/wire.ts";
import type { ClusterState } from "./map_view.ts";
import type { MapStore } from "./map_store.ts";
import type { NodeAdmin } from "../nodes/node_admin.ts";
import {
  allNodes,
  defaultReplicas,
  initialMap,
  nodeInfo,
  withNodeUrls,
} from "./map_transitions.ts";
import type { Rebalancer } from "../rebalance/rebalancer.ts";

/** A reason the proxy cannot start that the user can fix; main prints its message. */
export class StartupError extends Error {
  override name = "StartupError";
  /** The exit code: 2 when the command line itself is the mistake (a usage error), else 1. */
  readonly exitCode: 1 | 2;
  constructor(message: string, exitCode: 1 | 2 = 1) {
    super(message);
    this.exitCode = exitCode;
  }
}

/** What {@link startupMap} needs. */
export interface StartupOptions {
  store: MapStore;
  admin: NodeAdmin;
  nodes: readonly string[];
  join?: string;
  /** Undefined: {@link defaultReplicas} of the nodes found. */
  replicas?: number;
  /** Start a new cluster with fewer nodes than `replicas` (each key then has fewer copies). */
  force?: boolean;
  vnodes: number;
  /** The data directory the store reads, for messages. */
  data?: string;
  /** How long to wait for nodes still loading their data (default {@link START_WAIT_MS}). */
  startWaitMs?: number;
  /** Told once per node that is still loading, while the proxy waits for it. */
  onWait?: (message: string) => void;
}

/** How long a starting proxy waits for nodes that are still loading their data. */
export const START_WAIT_MS = 120_000;

/**
 * Waits until none of `urls` answers with its starting gate's 503: a node still loading
 * its data would otherwise look like a node without a map (and the proxy would start a
 * new cluster) or like a failed one (and the proxy would exit).
 */
async function nodesStarted(options: StartupOptions, urls: readonly string[]): Promise<void> {
  const deadline = performance.now() + (options.startWaitMs ?? START_WAIT_MS);
  const told = new Set<string>();
  for (;;) {
    const flags = await Promise.all(urls.map((url) => options.admin.starting(url)));
    const loading = urls.filter((_, i) => flags[i]);
    if (loading.length === 0) return;
    for (const url of loading.filter((u) => !told.has(u))) {
      told.add(url);
      options.onWait?.(`ringkv proxy: waiting for node ${url}: it is still loading its data`);
    }
    if (performance.now() >= deadline) {
      throw new StartupError(
        `Cannot start the proxy: node(s) ${loading.join(", ")} still loading their data after ` +
          `${Math.round((options.startWaitMs ?? START_WAIT_MS) / 1000)} s; start the proxy again ` +
          `once their /health answers 200`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

/** The map to start with and where it came from. */
export interface StartupMap {
  map: ClusterMap;
  source: "stored" | "join" | "nodes" | "new";
  /** `--nodes` that are not members of a stored map, which the proxy does not use. */
  ignored?: string[];
}

/**
 * The highest map the nodes hold; null only when every node answered that it holds none
 * (a node that refuses, e.g. another cluster secret, may hold another cluster's map).
 */
async function highestMap(admin: NodeAdmin, urls: readonly string[]): Promise<ClusterMap | null> {
  const unread: string[] = [];
  const maps = await Promise.all(urls.map((url) =>
    admin.getMap(url).catch((err) => {
      if (!(err instanceof RingkvError)) throw err;
      unread.push(`node ${url} did not give its cluster map (${err.message})`);
      return null;
    })
  ));
  let best: ClusterMap | null = null;
  for (const map of maps) if (map !== null && map.epoch > (best?.epoch ?? 0)) best = map;
  if (best === null && unread.length > 0) {
    throw new StartupError(`Cannot start a new cluster: ${unread[0]}`);
  }
  return best;
}

async function learnNodes(admin: NodeAdmin, urls: readonly string[]): Promise<NodeInfo[]> {
  const nodes = await Promise.all(urls.map(async (url) => {
    const health = await admin.health(url).catch((err) => {
      if (!(err instanceof RingkvError)) throw err;
      throw new StartupError(`Cannot start a new cluster with node ${url}: ${err.message}`);
    });
    return nodeInfo(health, url, 1);
  }));
  const seen = new Map<string, string>();
  for (const node of nodes) {
    const other = seen.get(node.id);
    if (other !== undefined) {
      throw new StartupError(
        `Cannot start a new cluster: ${other} and ${node.url} both have id ${node.id}`,
      );
    }
    seen.set(node.id, node.url);
  }
  return nodes;
}

function nodeList(map: ClusterMap): string {
  return allNodes(map).map((n) => `${n.id} ${n.url}`).join(", ");
}

/**
 * The `--nodes` that are not members of the stored map (by URL, or by the id a node at a
 * new URL answers with). When none is, the user meant another cluster than the directory
 * holds: refused. A few strangers (a node removed since, say) are only reported.
 */
async function otherNodes(options: StartupOptions, stored: ClusterMap): Promise<string[]> {
  const members = allNodes(stored);
  const strangers = await Promise.all(options.nodes.map(async (url) => {
    if (members.some((n) => n.url === url)) return null;
    const id = await options.admin.health(url).then((h) => h.id, (err) => {
      if (!(err instanceof RingkvError)) throw err;
      return null;
    });
    if (id !== null && members.some((n) => n.id === id)) return null;
    return id === null ? `${url} (does not answer)` : `${url} (node ${id})`;
  }));
  const others = strangers.filter((s) => s !== null);
  if (options.nodes.length === 0 || others.length < options.nodes.length) return others;
  const dir = options.data ?? "its data directory";
  throw new StartupError(
    `Cannot start the proxy with --nodes ${options.nodes.join(",")}: ${dir} holds the map of ` +
      `another cluster (epoch ${stored.epoch}: ${nodeList(stored)}), and none of the --nodes ` +
      `is in it (${others.join(", ")}). To start a new cluster, give another --data ` +
      `directory; to use the stored one, give --nodes of its nodes (or none)`,
    2,
  );
}

/** The line a starting proxy prints: which map it uses and where that map came from. */
export function describeStart(start: StartupMap, data: string): string {
  const from = {
    stored: `stored in ${data}`,
    join: "learnt through --join",
    nodes: "held by the --nodes",
    new: "new, of the --nodes",
  }[start.source];
  const m = start.map;
  const ignored = start.ignored === undefined
    ? ""
    : `; --nodes not in it, ignored: ${
      start.ignored.join(", ")
    } (add one with POST /cluster/nodes)`;
  return `ringkv proxy: cluster map ${from}: epoch ${m.epoch}, ${m.replicas} replica(s), ` +
    `nodes ${nodeList(m)}${ignored}`;
}

/**
 * The warning for a `--replicas` that a map already chosen overrides, or undefined: a cluster
 * keeps the replica count it started with (QA: the proxy dropped `--replicas 5` without a word,
 * where `deno task cluster` says so).
 */
export function ignoredReplicas(
  start: StartupMap,
  replicas: number | undefined,
): string | undefined {
  if (start.source === "new" || replicas === undefined || replicas === start.map.replicas) {
    return undefined;
  }
  return `ringkv proxy: --replicas ${replicas} is ignored: the cluster keeps the ` +
    `${start.map.replicas} replica(s) it started with (give another --data and new nodes for ` +
    "a new cluster)";
}

/** Finds the map to start with; throws a {@link StartupError} when there is none. */
export async function startupMap(options: StartupOptions): Promise<StartupMap> {
  const stored = await options.store.load();
  if (stored !== null) {
    const ignored = await otherNodes(options, stored);
    return { map: stored, source: "stored", ...(ignored.length > 0 ? { ignored } : {}) };
  }
  if (options.join !== undefined) {
    await nodesStarted(options, [options.join]);
    const map = await options.admin.getMap(options.join).catch((err) => {
      if (!(err instanceof RingkvError)) throw err;
      throw new StartupError(`Cannot join through ${options.join}: ${err.message}`);
    });
    if (map === null) {
      throw new StartupError(
        `Cannot join through ${options.join}: the node has no cluster map yet (start the first proxy with --nodes)`,
      );
    }
    return { map, source: "join" };
  }
  if (options.nodes.length === 0) {
    throw new StartupError(
      "Cannot start the proxy: it has no stored cluster map; give --nodes URL,URL or --join URL",
    );
  }
  await nodesStarted(options, options.nodes);
  const held = await highestMap(options.admin, options.nodes);
  if (held !== null) {
    // A --nodes of another cluster (or a fresh one) is left out of the map: say so.
    const ignored = await otherNodes(options, held);
    return { map: held, source: "nodes", ...(ignored.length > 0 ? { ignored } : {}) };
  }
  const replicas = options.replicas ?? defaultReplicas(options.nodes.length);
  if (replicas > options.nodes.length && options.force !== true) {
    // A write would be acknowledged with fewer copies than the cluster says it keeps.
    throw new StartupError(
      `Cannot start a new cluster keeping ${replicas} replicas of each key on ` +
        `${options.nodes.length} node(s): give --nodes of at least ${replicas} nodes, ` +
        `--replicas ${options.nodes.length}, or --force to start under-replicated`,
      2,
    );
  }
  const nodes = await learnNodes(options.admin, options.nodes);
  return { map: initialMap(nodes, replicas, options.vnodes), source: "new" };
}

/**
 * Asks each `--nodes` URL for its id; where a node of `map` now answers at another URL
 * (e.g. restarted on another port), returns the map with the new URLs (epoch + 1).
 */
export async function movedNodes(
  admin: NodeAdmin,
  map: ClusterMap,
  urls: readonly string[],
): Promise<ClusterMap | null> {
  const found = await Promise.all(urls.map(async (url) => {
    try {
      return { id: (await admin.health(url)).id, url, weight: 1 };
    } catch (err) {
      if (!(err instanceof RingkvError)) throw err;
      return null;
    }
  }));
  return withNodeUrls(map, found.filter((n) => n !== null));
}

/**
 * Records the nodes of the current map that answer at other `urls` (restarted on other ports)
 * as any change is: chosen by the nodes, then pushed. False when that could not be done now
 * (too few nodes vote, or another change won): the poller tries again.
 */
export async function recordMovedNodes(
  state: ClusterState,
  admin: NodeAdmin,
  urls: readonly string[],
  log: (obj: Record<string, unknown>) => void,
): Promise<boolean> {
  const moved = await movedNodes(admin, state.current().map, urls);
  if (moved === null) return true;
  const recorded = await state.propose(moved, "moved nodes").catch((err) => {
    if (!(err instanceof RingkvError)) throw err;
    log({ level: "warn", msg: "nodes' new URLs not recorded yet", error: err.message });
    return false;
  });
  if (!recorded) return false;
  log({ msg: "nodes moved to new URLs", epoch: moved.epoch });
  const report = await state.push(moved);
  if (report.failed.length > 0) log({ msg: "map push incomplete", failed: report.failed });
  return true;
}

/** The poll loop's dependencies. */
export interface PollerDeps {
  state: ClusterState;
  rebalancer: Rebalancer;
  /** Polls without an epoch change before this proxy drives another proxy's rebalancing. */
  takeoverPolls?: number;
  /** A step left to do, tried at each poll until it says it is done (moved nodes' URLs). */
  pending?: () => Promise<boolean>;
}

/**
 * One poll: adopt the highest map, and drive a rebalancing this proxy started, or one
 * whose epoch has not moved for `takeoverPolls` polls (its proxy may be gone).
 */
export function createPoller(deps: PollerDeps): { tick(): Promise<void> } {
  let lastEpoch = -1;
  let still = 0;
  let pending = deps.pending;
  return {
    async tick() {
      await deps.state.poll();
      // A step left to do must not hold up the takeover below when it fails.
      if (pending !== undefined && await pending().catch(() => false)) pending = undefined;
      const map = deps.state.current().map;
      still = map.epoch === lastEpoch ? still + 1 : 0;
      lastEpoch = map.epoch;
      if (map.rebalancing === null) return;
      if (deps.rebalancer.owns(map) || still >= (deps.takeoverPolls ?? 5)) {
        void deps.rebalancer.run();
      }
    },
  };
}
