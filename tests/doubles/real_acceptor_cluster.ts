/**
 * For replication tests over REAL acceptors: three in-process nodes (real node apps, with their
 * CASPaxos acceptors and engines over fake disks) and any number of proxies, each with its own
 * `fetch` and replication (proxy/replication/wiring.ts). A test can hold one proxy's calls of a
 * route to a node, hold or slow a node's statfs (the engine asks it before it stores a log line
 * of 64 KiB or more), and make calls fail at random as a flaky network does.
 *
 * @module
 */
import type { Hono } from "hono";
import { hashKey } from "../../shared/ring.ts";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { createProxyApp } from "../../proxy/http/proxy_app.ts";
import type { Replicas } from "../../proxy/replication/caspaxos.ts";
import { createReplication, type Replication } from "../../proxy/replication/wiring.ts";
import type { Chaos } from "./fake_acceptors.ts";
import { createFakeDisk } from "./fake_disk.ts";
import { overrideDisk } from "./engine_test_helpers.ts";
import {
  FakeTopology,
  fetchToNodes,
  nodeInfos,
  refused,
  stableMap,
  startNode,
  type TestNode,
  topologyOf,
} from "./test_cluster.ts";

/** Calls held on their way to a node until {@link Hold.release}. */
export interface Hold {
  /** How many calls are waiting. */
  arrived: number;
  release(): void;
}

/** One proxy: its app and its replication parts. */
export interface TestProxy {
  app: Hono;
  replication: Replication;
}

/** Nodes with real acceptors and proxies over them. */
export interface RealAcceptorCluster {
  nodes: Map<string, TestNode>;
  proxies: Map<string, TestProxy>;
  /** Random faults on every call while set: down (nothing done) or lost (done, no answer). */
  chaos: Omit<Chaos, "stale"> | undefined;
  /** Holds the calls of `proxy` to `node` on `path` (`/internal/accept`, say). */
  hold(proxy: string, node: string, path: string): Hold;
  /** Holds every statfs of `node`. */
  holdStatfs(node: string): Hold;
  /** A key's replicas as the proxies' router finds them (every node). */
  replicas(key: string): Promise<Replicas>;
  /** Releases every hold, then closes the engines. */
  close(): Promise<void>;
}

/** What {@link startRealAcceptorCluster} builds. */
export interface RealAcceptorOptions {
  /** The proxies' ids (13 characters, as wiring.ts makes them). */
  proxies: string[];
  fastWrites?: boolean;
  /** Awaited by each statfs (a real one takes a few ms). */
  statfsDelay?: () => Promise<void>;
  /** How long the acceptors keep a promise on a key without an entry (0: fold at every prepare). */
  promiseAgeMs?: number;
}

/** Starts nodes n1..n3 (3 replicas of every key) and `options.proxies` over them. */
export async function startRealAcceptorCluster(
  options: RealAcceptorOptions,
): Promise<RealAcceptorCluster> {
  const holds = new Map<string, Hold & { gate: Promise<void> }>();
  const hold = (name: string): Hold => {
    const { promise, resolve } = Promise.withResolvers<void>();
    const held = {
      arrived: 0,
      gate: promise,
      release() {
        if (holds.get(name) === held) holds.delete(name);
        resolve();
      },
    };
    holds.set(name, held);
    return held;
  };
  const pass = async (name: string) => {
    const held = holds.get(name);
    if (held === undefined) return;
    held.arrived++;
    await held.gate;
  };
  const nodes = new Map<string, TestNode>();
  for (const info of nodeInfos(3)) {
    const inner = createFakeDisk();
    const disk = overrideDisk(inner, {
      freeBytes: async () => {
        await pass(`statfs ${info.id}`);
        await options.statfsDelay?.();
        return await inner.freeBytes();
      },
    });
    nodes.set(info.id, await startNode(info, { disk, promiseAgeMs: options.promiseAgeMs }));
  }
  const map = { ...stableMap(nodeInfos(3)), replicas: 3 };
  const topology = new FakeTopology(await topologyOf(map));
  const cluster: RealAcceptorCluster = {
    nodes,
    proxies: new Map(),
    chaos: undefined,
    hold: (proxy, node, path) => hold(`${proxy} ${node} ${path}`),
    holdStatfs: (node) => hold(`statfs ${node}`),
    replicas: async (key) => ({
      owners: map.nodes.map(({ id, url }) => ({ id, url })),
      joining: [],
      key,
      point: await hashKey(key),
      epoch: map.epoch,
    }),
    async close() {
      for (const held of [...holds.values()]) held.release();
      for (const n of nodes.values()) await n.engine.close();
    },
  };
  for (const id of options.proxies) {
    const fetch = fetchToNodes(nodes, async (req, node) => {
      await pass(`${id} ${node.info.id} ${new URL(req.url).pathname}`);
      return await flaky(cluster.chaos, req, () => node.app.fetch(req));
    });
    const common = { fetch, clusterSecret: "s3cret", timeoutMs: 5_000 };
    const replication = createReplication({
      ...common,
      proxyId: id,
      fastWrites: options.fastWrites,
    });
    const app = createProxyApp({ ...common, topology, limits: DEFAULT_LIMITS, replication });
    cluster.proxies.set(id, { app, replication });
  }
  return cluster;
}

/** Sends a call under `chaos`: delayed, and maybe not sent or its answer lost. */
async function flaky(
  chaos: Omit<Chaos, "stale"> | undefined,
  req: Request,
  send: () => Response | Promise<Response>,
): Promise<Response> {
  if (chaos === undefined) return await send();
  const roll = chaos.random();
  await chaos.delay();
  if (roll < chaos.rate / 2) throw refused(req);
  const res = await send();
  await chaos.delay();
  if (roll >= chaos.rate) return res;
  await res.body?.cancel();
  throw new TypeError(`error reading a response body from ${req.url}: connection reset`);
}
