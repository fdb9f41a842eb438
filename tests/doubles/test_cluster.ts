/**
 * For proxy tests only: in-process data nodes (real node apps over fake disks) behind a
 * recording `fetch`, a proxy app over them, and a small {@link TopologySource} built
 * straight from a cluster map (the contract, not the thing under test).
 *
 * @module
 */
import type { Hono } from "hono";
import { createNodeApp } from "../../node/http/node_app.ts";
import type { NodeEngine } from "../../node/engine/engine.ts";
import { createFakeDisk, type FakeDisk } from "./fake_disk.ts";
import { openEngine } from "../../node/engine/open_engine.ts";
import { DEFAULT_LIMITS, type Limits } from "../../shared/limits.ts";
import { hashKey, Ring } from "../../shared/ring.ts";
import type { ClusterMap, NodeInfo } from "../../shared/wire.ts";
import { createProxyApp, type ProxyDeps } from "../../proxy/http/proxy_app.ts";
import type { Topology, TopologySource } from "../../proxy/cluster/topology.ts";
import type { NodeFetch } from "../../proxy/nodes/node_client.ts";
import { overRequests } from "./node_fetch.ts";

/** Virtual nodes per node in test rings: enough to spread keys, cheap to build. */
export const TEST_VNODES = 32;

/** The topology of a map: its ring and, while copying, the next ring. */
export async function topologyOf(map: ClusterMap): Promise<Topology> {
  const ring = await Ring.build(map.nodes, map.vnodes);
  const moving = map.rebalancing?.phase === "copying" ? map.rebalancing : null;
  const nextRing = moving ? await Ring.build(moving.next, map.vnodes) : null;
  const all = [...map.nodes, ...(moving?.next ?? [])];
  const urls = new Map(all.map((n) => [n.id, n.url]));
  const incarnations = new Map(all.map((n) => [n.id, n.incarnation]));
  return {
    map,
    ring,
    nextRing,
    nodeUrl: (id) => urls.get(id),
    incarnationOf: (id) => incarnations.get(id),
  };
}

/** A TopologySource whose refreshes adopt whatever the test queued with {@link FakeTopology.queue}. */
export class FakeTopology implements TopologySource {
  /** URLs that `refreshFrom` was called with, in order. */
  readonly refreshes: string[] = [];
  #next: Topology | undefined;

  /** Starts at `topo`. */
  constructor(public topo: Topology) {}

  /** The topology the next refresh adopts. */
  queue(next: Topology): void {
    this.#next = next;
  }

  /** The current topology. */
  current(): Topology {
    return this.topo;
  }

  /** Records the call and adopts the queued topology, if any. */
  refreshFrom(nodeUrl: string): Promise<void> {
    this.refreshes.push(nodeUrl);
    if (this.#next) this.topo = this.#next;
    this.#next = undefined;
    return Promise.resolve();
  }
}

/** One in-process node. */
export interface TestNode {
  info: NodeInfo;
  app: Hono;
  engine: NodeEngine;
  /** The node's fake disk (tests fill it or fail its fsyncs). */
  disk: FakeDisk;
}

/** One internal call the proxy made. */
export interface RecordedCall {
  node: string;
  method: string;
  path: string;
}

/** A proxy over in-process nodes. */
export interface TestCluster {
  proxy: Hono;
  nodes: Map<string, TestNode>;
  topology: FakeTopology;
  calls: RecordedCall[];
  /** Ids of nodes whose calls fail like a refused connection. */
  down: Set<string>;
  /** The proxy's `fetch` to the nodes (honours `down` and `hook`). */
  fetch: NodeFetch;
  /** Runs before each internal call reaches its node (tests hold or inspect calls). */
  hook?: (req: Request, node: TestNode) => Promise<void> | void;
  close(): Promise<void>;
}

/** Node infos `n1..nN` at `http://nI.test`. */
export function nodeInfos(count: number, from = 1): NodeInfo[] {
  return Array.from({ length: count }, (_, i) => ({
    id: `n${from + i}`,
    url: `http://n${from + i}.test`,
    weight: 1,
  }));
}

/** A stable map of `nodes`. */
export function stableMap(nodes: NodeInfo[], epoch = 1): ClusterMap {
  return { epoch, replicas: 1, vnodes: TEST_VNODES, nodes, rebalancing: null };
}

/** Starts `nodes` (default n1..n3) and a proxy routing by `map` (default: stable over them). */
export async function startCluster(options: {
  nodes?: NodeInfo[];
  map?: ClusterMap;
  limits?: Limits;
  proxy?: Partial<ProxyDeps>;
  /** The nodes' wall clock (default `Date.now`). */
  nodeNow?: () => number;
} = {}): Promise<TestCluster> {
  const limits = options.limits ?? DEFAULT_LIMITS;
  const infos = options.nodes ?? nodeInfos(3);
  const nodes = new Map<string, TestNode>();
  for (const info of infos) {
    nodes.set(info.id, await startNode(info, { limits, now: options.nodeNow }));
  }
  const topology = new FakeTopology(await topologyOf(options.map ?? stableMap(infos)));
  const cluster: TestCluster = {
    proxy: undefined as unknown as Hono,
    nodes,
    topology,
    calls: [],
    down: new Set(),
    fetch: (url, init) => fetch(url, init),
    async close() {
      for (const n of nodes.values()) await n.engine.close();
    },
  };
  const fetch = fetchToNodes(nodes, async (req, node) => {
    if (cluster.down.has(node.info.id)) throw refused(req);
    cluster.calls.push({ node: node.info.id, method: req.method, path: new URL(req.url).pathname });
    await cluster.hook?.(req, node);
    return node.app.fetch(req);
  });
  cluster.proxy = createProxyApp({
    topology,
    fetch,
    limits,
    clusterSecret: "s3cret",
    timeoutMs: 5000,
    ...options.proxy,
  });
  return cluster;
}

/** One node (a real node app and engine), over a new fake disk unless given one. */
export async function startNode(
  info: NodeInfo,
  options: { limits?: Limits; disk?: FakeDisk; promiseAgeMs?: number; now?: () => number } = {},
): Promise<TestNode> {
  const { limits = DEFAULT_LIMITS, disk = createFakeDisk(), promiseAgeMs, now } = options;
  const engine = await openEngine({
    disk,
    id: info.id,
    limits,
    firstRetryMs: 5,
    log: () => {},
    ...(now === undefined ? {} : { now }),
  });
  const app = createNodeApp({ engine, limits, clusterSecret: "s3cret", promiseAgeMs });
  return { info, engine, disk, app };
}

/**
 * The proxy's `fetch` to `nodes`, found by the URL's host (another host: refused); `send` takes
 * each call to its node, and may hold, fail or record it on the way.
 */
export function fetchToNodes(
  nodes: Map<string, TestNode>,
  send: (req: Request, node: TestNode) => Promise<Response>,
): NodeFetch {
  return overRequests((req) => {
    // Looked up per call: a test may put a new node (a wiped one) under an id.
    const host = new URL(req.url).host;
    const node = [...nodes.values()].find((n) => new URL(n.info.url).host === host);
    return node === undefined ? Promise.reject(refused(req)) : send(req, node);
  });
}

/** The error fetch throws when nothing listens at the request's URL. */
export function refused(req: Request): TypeError {
  return new TypeError(`error sending request for url (${req.url}): connection refused`);
}

/** The id of the node that owns `key` in `topo` (first owner). */
export async function ownerOf(topo: Topology, key: string, next = false): Promise<string> {
  const ring = next ? topo.nextRing! : topo.ring;
  return ring.ownersOf(await hashKey(key), 1)[0]!;
}
