/**
 * A real ringkv cluster for end-to-end tests: nodes and proxies as processes on
 * 127.0.0.1 with OS-picked ports, in one temp directory, all stopped by `stop()`.
 *
 * @module
 */
import { join } from "@std/path";
import type { WireEntry } from "../../shared/wire.ts";
import { type ServerProcess, spawnServer } from "./process.ts";

const NODE = new URL("../../node/main.ts", import.meta.url);
const PROXY = new URL("../../proxy/main.ts", import.meta.url);

/** The tokens every test cluster uses. */
export const SECRET = "e2e-cluster-secret";
export const ADMIN_TOKEN = "e2e-admin-token";
/** Headers for admin calls. */
export const ADMIN = { authorization: `Bearer ${ADMIN_TOKEN}` };
const ENV = { RINGKV_CLUSTER_SECRET: SECRET, RINGKV_ADMIN_TOKEN: ADMIN_TOKEN };

/** A node of the cluster view (`GET /cluster`). */
export interface ClusterNode {
  id: string;
  url: string;
  state: string;
  keys: number | null;
}

/** Processes of one test cluster. */
export class ProcessCluster {
  readonly nodes = new Map<string, ServerProcess>();
  readonly proxies = new Map<string, ServerProcess>();

  private constructor(readonly dir: string) {}

  /** Makes the temp directory; call `stop()` in `finally`. */
  static async create(): Promise<ProcessCluster> {
    return new ProcessCluster(await Deno.makeTempDir({ prefix: "ringkv-e2e-" }));
  }

  /**
   * Starts (or restarts, on the same data) node `id`; `port` 0 lets the OS pick; `env` adds
   * variables (a test clock offset).
   */
  async startNode(id: string, port = 0, env: Record<string, string> = {}): Promise<ServerProcess> {
    const node = await spawnServer({
      script: NODE,
      args: ["--id", id, "--port", String(port), "--data", join(this.dir, id)],
      env: { ...ENV, ...env },
    });
    this.nodes.set(id, node);
    return node;
  }

  /** Starts (or restarts) proxy `name` with extra args (`--nodes`, `--join`) and `env`. */
  async startProxy(
    name: string,
    args: string[] = [],
    env: Record<string, string> = {},
  ): Promise<ServerProcess> {
    const proxy = await spawnServer({
      script: PROXY,
      args: ["--port", "0", "--data", join(this.dir, name), "--poll-ms", "200", ...args],
      env: { ...ENV, ...env },
    });
    this.proxies.set(name, proxy);
    return proxy;
  }

  /** Starts nodes n1..nN and proxy "p1" over them (the proxy's default replicas unless given). */
  async startAll(nodeCount: number, replicas?: number): Promise<ServerProcess> {
    for (let i = 1; i <= nodeCount; i++) await this.startNode(`n${i}`);
    const urls = [...this.nodes.values()].map((n) => n.url).join(",");
    const copies = replicas === undefined ? [] : ["--replicas", String(replicas)];
    return await this.startProxy("p1", ["--nodes", urls, ...copies]);
  }

  /** Every key (tombstones left out) a node holds, read from its internal listing. */
  async nodeKeys(id: string): Promise<string[]> {
    return (await this.nodeEntries(id)).filter((e) => e.v !== null).map((e) => e.k);
  }

  /** Every entry (tombstones included) a node holds, read from its internal listing. */
  async nodeEntries(id: string): Promise<WireEntry[]> {
    const node = this.nodes.get(id)!;
    const entries: WireEntry[] = [];
    let after = "";
    for (let page = 0; page < 10_000; page++) {
      const url = `${node.url}/internal/keys?limit=1000&after=${encodeURIComponent(after)}`;
      const res = await fetch(url, {
        headers: { authorization: `Bearer ${SECRET}` },
        signal: AbortSignal.timeout(10_000),
      });
      const body = await res.json();
      if (res.status !== 200) throw new Error(`listing ${id}: ${JSON.stringify(body)}`);
      entries.push(...body.entries);
      if (!body.more || body.entries.length === 0) return entries;
      after = body.entries.at(-1).k;
    }
    throw new Error(`listing ${id} did not end`);
  }

  /** Stops every process (proxies first) and removes the directory. */
  async stop(): Promise<void> {
    const all = [...this.proxies.values(), ...this.nodes.values()];
    await Promise.all(all.map((p) => p.stop()));
    await Deno.remove(this.dir, { recursive: true });
  }
}

/** `GET /cluster` through a proxy. */
export async function clusterView(
  proxyUrl: string,
  timeoutMs = 10_000,
): Promise<{ epoch: number; nodes: ClusterNode[]; rebalancing: unknown }> {
  const res = await fetch(`${proxyUrl}/cluster`, {
    headers: ADMIN,
    signal: AbortSignal.timeout(timeoutMs),
  });
  if (res.status !== 200) throw new Error(`GET /cluster: ${res.status} ${await res.text()}`);
  return await res.json();
}

/** Polls `GET /cluster` until no rebalancing runs (and the epoch is at least `epoch`). */
export async function waitStable(proxyUrl: string, epoch = 0, timeoutMs = 60_000) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    // One answer may take most of the wait: on a loaded host a proxy's answer waited 8-12 s
    // (QA; a ring's thousands of digests each wait for the thread pool), past a 10 s cap.
    const view = await clusterView(proxyUrl, Math.max(1, deadline - Date.now()));
    if (view.epoch >= epoch && view.rebalancing === null) return view;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the cluster did not become stable within ${timeoutMs} ms`);
}

/** Sends an admin call and returns status and JSON body. */
export async function admin(
  proxyUrl: string,
  method: string,
  path: string,
  body?: unknown,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${proxyUrl}${path}`, {
    method,
    headers: ADMIN,
    body: body === undefined ? undefined : JSON.stringify(body),
    // A change with a member cut off waits a node-call timeout at each of its steps: 7.4-7.6 s
    // with the net lab's 1 s timeouts on a quiet host (net_faults_test "membership-partition"
    // passed 10 s twice under a loaded suite); what these tests check is the outcome.
    signal: AbortSignal.timeout(30_000),
  });
  return { status: res.status, body: await res.json() };
}

/** Sets `count` keys `${prefix}${i}` = `value-${i}` through the proxy's batch route. */
export async function loadKeys(proxyUrl: string, prefix: string, count: number): Promise<void> {
  for (let start = 0; start < count; start += 500) {
    const set: Record<string, string> = {};
    for (let i = start; i < Math.min(count, start + 500); i++) set[`${prefix}${i}`] = `value-${i}`;
    const res = await fetch(`${proxyUrl}/kv`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ set }),
      signal: AbortSignal.timeout(30_000),
    });
    if (res.status !== 200) throw new Error(`loading keys: ${res.status} ${await res.text()}`);
    await res.body?.cancel();
  }
}
