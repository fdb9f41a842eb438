/**
 * proxy/cluster/ (this folder's main module): the epoch-numbered cluster map, where it is
 * stored, its transitions and bootstrap. May import proxy/nodes and shared/ (and the rebalancer
 * it starts).
 *
 * The proxy's cluster map and the topology the data path routes by. Every change
 * builds a new immutable {@link Topology} and swaps it in whole; changes are stored
 * (map store) before they are seen. Maps from nodes are adopted when their epoch is
 * higher, which is how several proxies converge.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { ClusterState } from "./map_view.ts";
 * import { createMemoryMapStore } from "./map_store.ts";
 * import { NodeAdmin } from "../nodes/node_admin.ts";
 * const admin = new NodeAdmin({ fetch: () => Promise.reject(new Error("offline")), timeoutMs: 10 });
 * const map = { epoch: 1, replicas: 1, vnodes: 8, nodes: [], rebalancing: null };
 * const state = await ClusterState.open(map, { store: createMemoryMapStore(), admin });
 * assert(state.current().map.epoch === 1);
 * ```
 */
import { Ring } from "../../shared/ring.ts";
import { type ClusterMap, sameMap } from "../../shared/wire.ts";
import type { Topology, TopologySource } from "./topology.ts";
import type { MapStore } from "./map_store.ts";
import type { NodeAdmin } from "../nodes/node_admin.ts";
import { allNodes } from "./map_transitions.ts";
import { foreignMapMessage, sameCluster } from "./map_lineage.ts";
import { RingkvError } from "../../shared/errors.ts";
import { HybridClock, randomProxyId } from "../../shared/version.ts";
import { chooseMap, finishMap } from "./map_paxos.ts";
import { acceptedNext, UNPUSHED_GRACE_MS, UnpushedWatch } from "./unpushed_map.ts";

/** What a {@link ClusterState} needs. */
export interface ClusterStateDeps {
  store: MapStore;
  admin: NodeAdmin;
  log?: (obj: Record<string, unknown>) => void;
  /** Attempts per node when pushing a map (default 3). */
  pushAttempts?: number;
  /** First wait between attempts, doubled each time (default 100 ms). */
  backoffMs?: number;
  /** Waits; tests pass one that does not. */
  sleep?: (ms: number) => Promise<void>;
  /** This proxy's ballots for choosing maps (map_paxos.ts); a random proxy id when absent. */
  clock?: HybridClock;
  /** How long a map accepted but not pushed is left to its proposer (unpushed_map.ts). */
  unpushedGraceMs?: number;
  /** The wall clock, for that grace from a ballot; tests pass their own. */
  now?: () => number;
  /** The monotonic clock, for that grace from when first seen; tests pass their own. */
  monotonic?: () => number;
}

/**
 * What became of a proposed map: chosen; another proxy's map of its epoch finished instead
 * (accepted in the nodes' votes, not pushed); or the cluster was past it already.
 */
export type Choice = "ours" | "finished" | "behind";

/** The outcome of pushing a map to every node it mentions. */
export interface PushReport {
  /** Nodes that did not take the map, with why. */
  failed: { url: string; message: string }[];
  /** A node held a newer map, which was adopted; the push stopped there. */
  superseded: boolean;
}

/** Builds the immutable topology of a map (rings are built, never edited). */
export async function buildTopology(map: ClusterMap): Promise<Topology> {
  const vnodes = map.vnodes > 0 ? map.vnodes : undefined;
  const rb = map.rebalancing;
  const [ring, nextRing] = await Promise.all([
    Ring.build(map.nodes, vnodes),
    rb?.phase === "copying" ? Ring.build(rb.next, vnodes) : Promise.resolve(null),
  ]);
  const urls = new Map(allNodes(map).map((n) => [n.id, n.url]));
  const incarnations = new Map(allNodes(map).map((n) => [n.id, n.incarnation]));
  return Object.freeze({
    map,
    ring,
    nextRing,
    nodeUrl: (id: string) => urls.get(id),
    incarnationOf: (id: string) => incarnations.get(id),
  });
}

const realSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** The proxy's cluster map: stored, swapped whole, converging on the highest epoch. */
export class ClusterState implements TopologySource {
  #topology: Topology;
  #queue: Promise<unknown> = Promise.resolve();
  #listeners: ((map: ClusterMap) => void)[] = [];
  #finishedListeners: ((map: ClusterMap) => void)[] = [];
  #unpushed: UnpushedWatch;
  #finishing: Promise<void> | null = null;
  #lastFinished: ClusterMap | null = null;
  /** The last failure talking to each node (push or poll), by URL; cleared on success. */
  readonly nodeErrors: Map<string, string> = new Map();

  readonly #clock: HybridClock;

  private constructor(topology: Topology, private readonly deps: ClusterStateDeps) {
    this.#topology = topology;
    this.#clock = deps.clock ?? new HybridClock(randomProxyId());
    const grace = deps.unpushedGraceMs ?? UNPUSHED_GRACE_MS;
    this.#unpushed = new UnpushedWatch(grace, deps.now, deps.monotonic);
  }

  /** Opens with `map` as the current map (not stored again). */
  static async open(map: ClusterMap, deps: ClusterStateDeps): Promise<ClusterState> {
    return new ClusterState(await buildTopology(map), deps);
  }

  /** The topology to route a request that starts now. */
  current(): Topology {
    return this.#topology;
  }

  /** The last map this proxy finished for another proposer (null: none). */
  get lastFinished(): ClusterMap | null {
    return this.#lastFinished;
  }

  /** Calls `fn` with every map that becomes current. */
  onChange(fn: (map: ClusterMap) => void): void {
    this.#listeners.push(fn);
  }

  /**
   * Calls `fn` with each map this proxy finished for another proposer (installed and pushed):
   * nobody may be driving its rebalancing.
   */
  onFinished(fn: (map: ClusterMap) => void): void {
    this.#finishedListeners.push(fn);
  }

  // Changes run one at a time, so an epoch check and its swap cannot interleave.
  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /**
   * Proposes `next`, built from the current map one epoch on, as the map of its epoch: the
   * current map's nodes choose it (map_paxos.ts), then it is stored and swapped in; the
   * caller pushes it. False when another proxy's map was chosen (adopted and pushed instead)
   * or the current map moved on meanwhile. 409 when a competing change keeps winning, 503
   * when too few nodes vote.
   */
  async propose(next: ClusterMap, source: string): Promise<boolean> {
    return (await this.choose(next, source)) === "ours";
  }

  /** {@link propose}, saying what became of `next`. */
  async choose(next: ClusterMap, source: string): Promise<Choice> {
    const base = this.#topology.map;
    if (next.epoch !== base.epoch + 1) return "behind";
    const deps = { admin: this.deps.admin, clock: this.#clock, sleep: this.deps.sleep };
    const outcome = await chooseMap(base, next, deps).catch(async (err) => {
      // A node votes on a later epoch: load the map it comes from before the caller retries.
      if (err instanceof RingkvError && err.code === "conflict") await this.poll().catch(() => {});
      throw err;
    });
    if (outcome.kind === "decided") {
      await this.install(outcome.map, outcome.url);
      return "behind";
    }
    if (sameMap(outcome.map, next)) {
      const installed = await this.install(outcome.map, source);
      return installed || sameMap(this.#topology.map, next) ? "ours" : "behind";
    }
    // Another proxy's map, accepted and maybe never pushed (its proxy may be gone).
    return (await this.#finished(outcome.map)) ? "finished" : "behind";
  }

  /**
   * Installs `map`, another proposer's that this proxy got chosen, and pushes it: its proxy may
   * be gone, so nobody else would. Whether it was installed here.
   */
  async #finished(map: ClusterMap): Promise<boolean> {
    if (!(await this.install(map, "finished proposal"))) return false;
    this.#lastFinished = map;
    this.deps.log?.({
      level: "warn",
      msg: "finished a cluster map another proxy had not pushed",
      epoch: map.epoch,
      phase: phaseOf(map),
    });
    await this.push(map);
    for (const fn of this.#finishedListeners) fn(map);
    return true;
  }

  /**
   * Finishes a map accepted for the next epoch that no node holds yet, once its proposer had
   * its time to push it (unpushed_map.ts): a proxy killed right after its map was chosen leaves
   * one, and nothing else would show it before the next change. One at a time.
   */
  #finishUnpushed(): Promise<void> {
    this.#finishing ??= this.#finishOnce().finally(() => (this.#finishing = null));
    return this.#finishing;
  }

  /**
   * At startup: finishes a map accepted for the next epoch that no node holds, waiting out what
   * is left of its proposer's grace (at most the grace) rather than until a later poll, so that
   * the proxy serves with the change shown (the poll before left it when it was not due).
   */
  async awaitUnpushed(): Promise<void> {
    const accepted = await acceptedNext(this.#topology.map, this.deps.admin);
    if (accepted === null) return;
    const wait = this.#unpushed.waitFor(accepted.ballot);
    if (wait > 0) await (this.deps.sleep ?? realSleep)(wait);
    await this.#finishUnpushed();
  }

  async #finishOnce(): Promise<void> {
    const base = this.#topology.map;
    const accepted = await acceptedNext(base, this.deps.admin);
    if (!this.#unpushed.due(accepted?.ballot ?? null)) return;
    const deps = { admin: this.deps.admin, clock: this.#clock, sleep: this.deps.sleep };
    try {
      const outcome = await finishMap(base, deps);
      if (outcome?.kind === "decided") await this.install(outcome.map, outcome.url);
      else if (outcome?.kind === "chosen") await this.#finished(outcome.map);
    } catch (err) {
      if (!(err instanceof RingkvError)) throw err;
      this.deps.log?.({
        level: "warn",
        msg: "unpushed cluster map not finished",
        error: err.message,
      });
    }
  }

  /**
   * Stores and swaps in `map` if its epoch is higher than the current one; whether it did.
   * Only for maps chosen already (a node's, or one {@link propose} got chosen).
   */
  install(map: ClusterMap, source: string): Promise<boolean> {
    return this.#serial(async () => {
      const from = this.#topology.map.epoch;
      if (map.epoch <= from) return false;
      await this.#swap(map, source);
      return true;
    });
  }

  /**
   * Nodes hold another map of our epoch. Each epoch's map is chosen once, so only a cluster
   * whose majority lost its votes (new data directories) can get there: the copy most nodes
   * hold wins, as they refuse ours, and the operator is told. The next map, built from it,
   * reaches every node (a higher epoch is taken).
   */
  #diverged(map: ClusterMap, url: string): Promise<void> {
    return this.#serial(async () => {
      const current = this.#topology.map;
      if (map.epoch !== current.epoch || sameMap(map, current)) return;
      const message =
        `node ${url} holds another cluster map of epoch ${map.epoch} than this proxy; adopted it`;
      this.nodeErrors.set(url, message);
      this.deps.log?.({
        level: "error",
        msg: "two cluster maps of one epoch",
        url,
        epoch: map.epoch,
      });
      await this.#swap(map, url);
    });
  }

  /** Stores and swaps in `map` (inside #serial). */
  async #swap(map: ClusterMap, source: string): Promise<void> {
    const from = this.#topology.map.epoch;
    const topology = await buildTopology(map);
    await this.deps.store.save(map);
    this.#topology = topology;
    this.deps.log?.({ msg: "cluster map", epoch: map.epoch, from, source, phase: phaseOf(map) });
    for (const fn of this.#listeners) fn(map);
  }

  /** A node said our epoch is stale: load its map and adopt it if newer. */
  async refreshFrom(nodeUrl: string): Promise<void> {
    const map = await this.deps.admin.getMap(nodeUrl);
    if (map !== null) await this.#adopt(map, nodeUrl);
  }

  /** Installs a newer map a node holds unless it is another cluster's (noted, and logged). */
  async #adopt(map: ClusterMap, url: string): Promise<boolean> {
    if (!this.#foreign(map, url)) return await this.install(map, url);
    return false;
  }

  /** Whether `map`, held by node `url`, is another cluster's; notes it if so. */
  #foreign(map: ClusterMap, url: string): boolean {
    if (sameCluster(this.#topology.map, map)) return false;
    const message = foreignMapMessage(url, map);
    this.nodeErrors.set(url, message);
    this.deps.log?.({ level: "warn", msg: "cluster map of another cluster ignored", url, message });
    return true;
  }

  /** Reads every node's map and adopts the highest epoch; unreachable nodes are noted. */
  async poll(): Promise<void> {
    const urls = allNodes(this.#topology.map).map((n) => n.url);
    const maps = await Promise.all(urls.map(async (url) => {
      try {
        const map = await this.deps.admin.getMap(url);
        this.nodeErrors.delete(url);
        return map;
      } catch (err) {
        if (!(err instanceof RingkvError)) throw err;
        this.nodeErrors.set(url, err.message);
        return null;
      }
    }));
    // Another cluster's map is neither adopted nor overwritten with ours (which would make
    // that node, with that cluster's keys, look like one of ours that was behind).
    const ours = maps.map((map, i) => map !== null && !this.#foreign(map, urls[i]!) ? map : null);
    const best = mostHeld(ours, urls);
    if (best !== null && !(await this.install(best.map, "poll"))) {
      await this.#diverged(best.map, best.url);
    }
    const epoch = this.#topology.map.epoch;
    await this.#catchUp(urls.filter((_, i) => ours[i] !== null && ours[i]!.epoch < epoch));
    await this.#finishUnpushed();
  }

  /** Pushes the current map to nodes that hold an older one (e.g. back after being down). */
  async #catchUp(urls: readonly string[]): Promise<void> {
    const current = this.#topology.map;
    await Promise.all(urls.map(async (url) => {
      try {
        const result = await this.deps.admin.putMap(url, current);
        if (!result.stored) return void await this.#adopt(result.map, url);
        this.deps.log?.({ msg: "map pushed to a node that was behind", url, epoch: current.epoch });
      } catch (err) {
        if (!(err instanceof RingkvError)) throw err;
        this.nodeErrors.set(url, err.message);
      }
    }));
  }

  /**
   * PUTs `map` to every node it mentions, retrying with backoff those that failed fast (one
   * silent for a whole call timeout is left to the polls' catch-up). A node
   * with a newer map wins: that map is adopted and the push reports `superseded`.
   */
  async push(map: ClusterMap): Promise<PushReport> {
    const report: PushReport = { failed: [], superseded: false };
    await Promise.all(
      allNodes(map).map(async ({ url }) => {
        const error = await this.#pushOne(url, map, report);
        if (error === null) this.nodeErrors.delete(url);
        else {
          this.nodeErrors.set(url, error);
          report.failed.push({ url, message: error });
        }
      }),
    );
    return report;
  }

  async #pushOne(url: string, map: ClusterMap, report: PushReport): Promise<string | null> {
    const attempts = this.deps.pushAttempts ?? 3;
    let wait = this.deps.backoffMs ?? 100;
    for (let attempt = 1;; attempt++) {
      const began = performance.now();
      try {
        // A node on another cluster's directory would take ours, then pass for a wiped one.
        const held = await this.deps.admin.getMap(url);
        if (held !== null && this.#foreign(held, url)) return this.nodeErrors.get(url)!;
        const result = await this.deps.admin.putMap(url, map);
        if (!result.stored) {
          if (this.#foreign(result.map, url)) return this.nodeErrors.get(url)!;
          if (result.map.epoch === map.epoch) {
            // Another map of this epoch (a cluster whose majority lost its votes): the node
            // counts as failed here, and the poll settles which copy this proxy follows.
            return `node ${url} holds another cluster map of epoch ${map.epoch}`;
          }
          report.superseded = true;
          await this.install(result.map, url);
        }
        return null;
      } catch (err) {
        if (!(err instanceof RingkvError)) throw err;
        // A node silent for a whole call timeout is not asked again here: each try waited that
        // long again (3.3 of the 7.6 s an add took with one node cut off, 1 s timeouts), and
        // the polls push the map to it once it answers (#catchUp).
        const silent = performance.now() - began >= this.deps.admin.timeoutMs;
        if (attempt >= attempts || silent) return err.message;
      }
      await (this.deps.sleep ?? realSleep)(wait);
      wait *= 2;
    }
  }
}

/**
 * The highest-epoch map the nodes hold; of several copies of that epoch, the one most nodes
 * hold (ties: the first in JSON order), so that every poll picks the same.
 */
function mostHeld(
  maps: readonly (ClusterMap | null)[],
  urls: readonly string[],
): { map: ClusterMap; url: string } | null {
  const top = Math.max(0, ...maps.map((m) => m?.epoch ?? 0));
  const copies = new Map<string, { map: ClusterMap; url: string; count: number }>();
  maps.forEach((map, i) => {
    if (map === null || map.epoch !== top || top === 0) return;
    const text = JSON.stringify(map);
    const seen = copies.get(text);
    if (seen) seen.count++;
    else copies.set(text, { map, url: urls[i]!, count: 1 });
  });
  const ranked = [...copies.entries()].sort(([a, x], [b, y]) =>
    y.count - x.count || (a < b ? -1 : 1)
  );
  return ranked.length === 0 ? null : ranked[0]![1];
}

/** "stable", "copying" or "cleanup", for logs. */
export function phaseOf(map: ClusterMap): string {
  return map.rebalancing?.phase ?? "stable";
}
