/**
 * Rejoin of a node that came back on another data directory (wiped, replaced, or a
 * directory from before incarnations) under its old id: its answers no longer count as
 * votes (node/http/paxos_routes.ts refuses when the map records another incarnation), and this
 * module brings it back. Every range it replicates is scanned on the other replicas of
 * the range, at least `n - q + 1` of them (q = floor(n/2) + 1), which meets every write
 * quorum even when the node itself was one of its members; the newest entry of each key
 * goes into the node by versioned ingest; then the map records its new incarnation
 * (epoch + 1) and it votes again. Writes made meanwhile reach a quorum without it.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import type { Range } from "../../shared/ring.ts";
import type { ClusterMap, NodeInfo, WireEntry } from "../../shared/wire.ts";
import { groupsOf } from "./anti_entropy.ts";
import { withIncarnation } from "../cluster/map_transitions.ts";
import { foreignMapMessage, sameCluster } from "../cluster/map_lineage.ts";
import type { NodeAdmin } from "../nodes/node_admin.ts";
import type { NodeRef } from "../nodes/node_client.ts";
import { toleratedOf } from "./quorum.ts";
import { ingestChunked } from "./replica_sync.ts";
import type { Topology } from "../cluster/topology.ts";

/** Ranges per scan call (the ranges travel in the URL). */
const BUCKET_RANGES = 32;

/** What a map push reports (proxy/cluster/map_view.ts PushReport). */
export interface MapPush {
  /** Nodes that did not take the map, with why. */
  failed: { url: string; message: string }[];
  /** A node held a newer map, which was adopted instead. */
  superseded: boolean;
}

/** Where the rejoin reads the map and records the new incarnation (a ClusterState). */
export interface MapWriter {
  current(): Topology;
  /** Gets `map` chosen as the next epoch's and swaps it in (ClusterState.propose). */
  propose(map: ClusterMap, source: string): Promise<boolean>;
  push(map: ClusterMap): Promise<MapPush>;
}

/** Pushes of the map that records a new incarnation, before giving up on the rest. */
const PUSH_ATTEMPTS = 3;

/** What a {@link Rejoin} needs. */
export interface RejoinDeps {
  admin: NodeAdmin;
  maps: MapWriter;
  log?: (obj: Record<string, unknown>) => void;
  /** Wait after a failed attempt before the next one, in ms (default 1000). */
  retryMs?: number;
  /** A monotonic clock (ms) for that wait (default `performance.now`): a wall step cannot stretch it. */
  now?: () => number;
}

/** Catches nodes up on their new incarnation, one attempt per node at a time. */
export class Rejoin {
  readonly #running = new Map<string, Promise<boolean>>();
  readonly #notBefore = new Map<string, number>();
  /** Why the last attempt per node did not finish (for GET /cluster). */
  readonly lastError = new Map<string, string>();
  /** Nodes that came back empty with no other copy (`--replicas 1`), until this proxy restarts. */
  readonly lostData = new Map<string, string>();

  /** Creates the rejoin; nothing runs until {@link start}. */
  constructor(private readonly deps: RejoinDeps) {}

  /**
   * Starts catching node `id` up on `incarnation` unless an attempt runs or failed
   * recently; resolves true once the map records it, false otherwise (never rejects: the
   * probe loop starts it and nobody awaits it).
   */
  start(id: string, incarnation: string): Promise<boolean> {
    const now = this.#now();
    const running = this.#running.get(id);
    if (running !== undefined) return running;
    if (now < (this.#notBefore.get(id) ?? 0)) return Promise.resolve(false);
    const attempt = this.#run(id, incarnation)
      .catch((err) => this.#failed(id, err))
      .finally(() => this.#running.delete(id));
    this.#running.set(id, attempt);
    return attempt;
  }

  #now(): number {
    return this.deps.now ? this.deps.now() : performance.now();
  }

  /** Records why an attempt ended early; the next one waits `retryMs`. */
  #failed(id: string, err: unknown): false {
    const message = err instanceof Error ? err.message : String(err);
    this.lastError.set(id, message);
    if (err instanceof RingkvError) {
      this.deps.log?.({ level: "warn", msg: "rejoin waits", node: id, error: message });
    } else {
      // Not a node's answer but a fault here: logged loudly, never left to kill the process.
      const stack = err instanceof Error ? err.stack : undefined;
      this.deps.log?.({ level: "error", msg: "rejoin failed", node: id, error: message, stack });
    }
    this.#notBefore.set(id, this.#now() + (this.deps.retryMs ?? 1000));
    return false;
  }

  async #run(id: string, incarnation: string): Promise<boolean> {
    const topo = this.deps.maps.current();
    const { map } = topo;
    const known = map.nodes.find((n) => n.id === id);
    if (map.rebalancing !== null || known === undefined || known.incarnation === incarnation) {
      return false;
    }
    // The caller's probe may be stale: record only the directory the node runs on now.
    await this.#confirm(known, incarnation);
    await this.#ofThisCluster(map, known);
    if (known.incarnation !== undefined) {
      if (map.replicas <= 1) this.#lost(id, known.incarnation, incarnation);
      else await this.#catchUp(topo, { id, url: known.url });
    }
    await this.#confirm(known, incarnation); // not wiped again while its ranges were copied
    const next = withIncarnation(map, id, incarnation);
    if (!await this.deps.maps.propose(next, "rejoin")) return false;
    await this.#push(next, id, incarnation);
    this.lastError.delete(id);
    this.deps.log?.({
      msg: "node votes on its data directory",
      node: id,
      incarnation,
      epoch: next.epoch,
    });
    return true;
  }

  /**
   * Throws when node `known` holds another cluster's map: its directory is that cluster's,
   * with its keys, not a wiped one of ours (found by QA: such a node was made a voter).
   */
  async #ofThisCluster(map: ClusterMap, known: NodeInfo): Promise<void> {
    const held = await this.deps.admin.getMap(known.url);
    if (held === null || sameCluster(map, held)) return;
    throw new RingkvError("conflict", foreignMapMessage(known.url, held));
  }

  /** Throws unless node `known` answers on data directory `incarnation`. */
  async #confirm(known: NodeInfo, incarnation: string): Promise<void> {
    const health = await this.deps.admin.health(known.url);
    if (health.id === known.id && health.incarnation === incarnation) return;
    if (health.id !== known.id) {
      // Its incarnations would read as equal or as a wipe; the id says what is wrong.
      throw new RingkvError(
        "conflict",
        `Cannot record incarnation ${incarnation} of node ${known.id}: ${known.url} answers as ` +
          `node ${health.id}, not ${known.id} (a node started on another node's --data or ` +
          `port); start node ${known.id} there, on its own data directory`,
      );
    }
    throw new RingkvError(
      "conflict",
      `Cannot record incarnation ${incarnation} of node ${known.id}: ${known.url} answers as ` +
        `node ${health.id} on incarnation ${health.incarnation ?? "(none)"}, not ${incarnation}`,
    );
  }

  /**
   * Pushes the map that records the incarnation, again while more nodes than a replica set
   * may lose missed it (the poller pushes it to the rest once they answer); throws when a
   * newer map without the record was adopted instead.
   */
  async #push(next: ClusterMap, id: string, incarnation: string): Promise<void> {
    const tolerated = toleratedOf(next.replicas);
    for (let attempt = 1; attempt <= PUSH_ATTEMPTS; attempt++) {
      const report = await this.deps.maps.push(next);
      if (report.superseded) {
        const { map } = this.deps.maps.current();
        if (map.nodes.find((n) => n.id === id)?.incarnation === incarnation) return;
        throw new RingkvError(
          "conflict",
          `Cannot record incarnation ${incarnation} of node ${id}: a node held a newer map ` +
            `(epoch ${map.epoch}), adopted instead; the next probe tries again`,
        );
      }
      if (report.failed.length <= tolerated) return;
      const failed = report.failed.map((f) => `${f.url}: ${f.message}`).join("; ");
      this.deps.log?.({ level: "warn", msg: "map push incomplete", node: id, attempt, failed });
      if (attempt < PUSH_ATTEMPTS) await sleep(this.deps.retryMs ?? 1000);
    }
    // Recorded here; nodes that missed it get it from the poller once they answer.
  }

  /** Copies every range the node replicates from enough of the other replicas. */
  async #catchUp(topo: Topology, node: NodeRef): Promise<void> {
    const epoch = topo.map.epoch;
    let copied = 0;
    for (const group of groupsOf(topo, BUCKET_RANGES)) {
      if (!group.owners.some((o) => o.id === node.id)) continue;
      const others = group.owners.filter((o) => o.id !== node.id);
      const need = toleratedOf(group.owners.length) + 1;
      for (const ranges of group.buckets) {
        const newest = await this.#newestOf(others, need, ranges, epoch, node.id);
        await ingestChunked(this.deps.admin, node, [...newest.values()], epoch);
        copied += newest.size;
      }
    }
    this.deps.log?.({ msg: "node caught up from its replicas", node: node.id, entries: copied });
  }

  /** The newest entry of every key in `ranges` over `others`; throws unless `need` answered. */
  async #newestOf(
    others: readonly NodeRef[],
    need: number,
    ranges: readonly Range[],
    epoch: number,
    id: string,
  ): Promise<Map<string, WireEntry>> {
    const newest = new Map<string, WireEntry>();
    const failed: string[] = [];
    await Promise.all(others.map(async (other) => {
      try {
        // With the map's incarnation: a fellow that is recovering too refuses, so it is not counted.
        const entries = this.deps.admin.scanEntries(other.url, ranges, epoch, other.incarnation);
        for await (const e of entries) {
          const had = newest.get(e.k);
          if (had === undefined || e.ver > had.ver) newest.set(e.k, e);
        }
      } catch (err) {
        if (!(err instanceof RingkvError)) throw err;
        failed.push(`${other.id}: ${err.message}`);
      }
    }));
    const answered = others.length - failed.length;
    if (answered < need) {
      throw new RingkvError(
        "node_unavailable",
        `Cannot catch node ${id} up on its new data directory: ${answered} of its ${others.length} ` +
          `fellow replicas answered, ${need} are needed (${failed.join("; ")})`,
      );
    }
    return newest;
  }

  #lost(id: string, was: string, now: string): void {
    this.lostData.set(
      id,
      `node ${id} came back on a new data directory (incarnation ${now}, was ${was}); with ` +
        `--replicas 1 its keys had no other copy: they are lost unless restored from a backup`,
    );
    this.deps.log?.({
      level: "error",
      msg: "node lost its data: with --replicas 1 its keys have no other copy",
      node: id,
      was,
      now,
    });
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The nodes of `map` whose /health (`healths`, by id; null: no answer) names another incarnation. */
export function recoveringOf(
  map: ClusterMap,
  healths: ReadonlyMap<string, { incarnation?: string } | null>,
): Set<string> {
  const found = map.nodes.filter((n) => {
    const now = healths.get(n.id)?.incarnation;
    return n.incarnation !== undefined && now !== undefined && now !== n.incarnation;
  });
  return new Set(found.map((n) => n.id));
}

/**
 * 409 when a node of the map answers on another data-directory incarnation than the map
 * records (`found`: it is catching up, and a range copy could count its missing data as a
 * replica's), unless it is `except` (the node a force removal takes out: nothing is read from
 * it). Nodes that do not answer are left to the caller's own checks.
 */
export function throwIfRecovering(found: Set<string>, action: string, except?: string): void {
  const recovering = [...found].filter((id) => id !== except);
  if (recovering.length === 0) return;
  const id = recovering[0]!;
  throw new RingkvError(
    "conflict",
    `Cannot ${action}: node ${id} is back on a new data directory and is catching up from its ` +
      `replicas (it does not vote yet); wait until GET /cluster no longer shows it recovering, ` +
      `or remove it for good with DELETE /cluster/nodes/${id}?force=true`,
  );
}
