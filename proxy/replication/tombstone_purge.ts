/**
 * The purge of old tombstones: a deleted or expired key is kept as a tombstone (its key and
 * version, ~210 B of a node's memory, and a line of its snapshot) so that no older copy can
 * bring it back; once every replica has held it long enough, it is forgotten everywhere, as
 * Riak's `delete_mode` and Cassandra's `gc_grace_seconds` do. Each sweep:
 *
 * 1. only under a stable map (a range copy may still carry an older entry of the key), and once
 *    every node of the map holds only ranges it owns (`#onlyOwned`);
 * 2. asks every node for tombstones it stored at least `graceMs` ago by its own clock (at most
 *    `perNode` each);
 * 3. asks every one of each such key's replicas (not a quorum: all of them) whether it holds that
 *    very tombstone and stored it at least `graceMs` ago by its own clock (`check`), and keeps the
 *    keys every replica confirms: so no replica forgets a key another keeps (a read finding it on
 *    some replicas only would re-stamp the delete), and no single clock decides;
 * 4. asks every replica to forget those, each only while it still holds that tombstone
 *    (node/http/paxos_routes.ts). The node raises its acceptor's absent-key floor to the
 *    tombstone's version first, so a stale accept below it is refused as the tombstone refused it.
 *
 * The age is when each node stored the tombstone, by its own clock, not its version's time: a
 * fast write's version is its previous write's plus "0", so a DELETE an hour after a PUT through
 * the same proxy has a version an hour old (review), and a node whose clock runs ahead makes
 * every proxy stamp versions ahead of time (QA: no purge at all while it lasted, when the first
 * build also asked the version to be old on the proxy's clock).
 *
 * Why no older copy can come back: at step 3 no replica holds an older entry, and replicas only
 * move forward; a node that was down holds no tombstone and stops the purge of its keys; a node
 * joins only empty (proxy/rebalance/join_check.ts); and before any purge, every node of the map
 * has dropped what it holds of ranges it does not own (left by a change's drop it missed), so no
 * node outside a key's replicas holds an older copy that a later change could make it own. What
 * remains are messages with an older entry still on their way (an anti-entropy or hint ingest
 * that read the replicas before the delete, which ignore promises): the grace is their margin,
 * minutes against calls bounded by seconds. docs/replication.md ("Purging old tombstones") has
 * the trade-offs.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import type { Counter } from "../../shared/prom.ts";
import type { Topology, TopologySource } from "../cluster/topology.ts";
import type { NodeClient, NodeRef } from "../nodes/node_client.ts";
import { nodeRef, segments } from "./anti_entropy.ts";
import type { Range } from "../../shared/ring.ts";
import { SweepTimer } from "../../shared/sweep_timer.ts";

/** How often a proxy sweeps for old tombstones, in ms. */
export const TOMBSTONE_SWEEP_MS = 5000;

/** What a {@link TombstonePurge} needs. */
export interface TombstonePurgeDeps {
  topology: TopologySource;
  client: Pick<NodeClient, "oldTombstones" | "purge">;
  /**
   * `/internal/drop` of `ranges` at `node` under `epoch` (node_admin.ts `drop`): the entries it
   * holds of ranges it does not own; the number dropped.
   */
  dropStrays(node: NodeRef, epoch: number, ranges: Range[]): Promise<number>;
  /** The epoch of the map `node` holds (node_admin.ts `getMap`; 0 without one). */
  mapEpochOf(node: NodeRef): Promise<number>;
  /** How old a tombstone must be (shared/tombstone_grace.ts). */
  graceMs: number;
  /** Tombstones asked of each node per sweep (default 1,000). */
  perNode?: number;
  /** Counts the keys by outcome (`ringkv_proxy_tombstone_purges_total`). */
  counted?: Counter;
  log?: (obj: Record<string, unknown>) => void;
}

/** A tombstone found old: its key, version and ring point. */
interface Candidate {
  k: string;
  ver: string;
  h: number;
}

/** Sweeps the nodes for old tombstones and forgets those every replica holds. */
export class TombstonePurge {
  readonly #timer = new SweepTimer();
  /** Per node, the epoch and incarnation under which it holds only ranges it owns. */
  readonly #owned = new Map<string, string>();

  /** Creates a purge; {@link start} runs it on a timer, {@link sweep} once. */
  constructor(private readonly deps: TombstonePurgeDeps) {}

  /** One sweep; returns how many tombstones were forgotten on every replica. */
  async sweep(): Promise<number> {
    const topo = this.deps.topology.current();
    if (topo.map.rebalancing !== null) return 0;
    if (!await this.#onlyOwned(topo)) return 0;
    const listed = await Promise.all(topo.map.nodes.map((n) => this.#list(topo, n.id)));
    const candidates = agreeing(listed.flat());
    if (candidates.length === 0) return 0;
    const owners = new Map<string, NodeRef[]>(); // key → its replicas
    const byNode = new Map<string, { node: NodeRef; keys: Candidate[] }>();
    for (const c of candidates) {
      const ids = topo.ring.ownersOf(c.h, topo.map.replicas);
      const refs = ids.map((id) => nodeRef(topo, id));
      if (refs.some((r) => r.url === "")) continue;
      owners.set(c.k, refs);
      for (const node of refs) {
        const group = byNode.get(node.id) ?? { node, keys: [] };
        group.keys.push(c);
        byNode.set(node.id, group);
      }
    }
    const holders = await this.#confirmed(topo, [...byNode.values()]);
    const purgeable = candidates.filter((c) => {
      const refs = owners.get(c.k);
      return refs !== undefined && refs.every((r) => holders.get(r.id)?.has(c.k));
    });
    const { failed, kept } = await this.#purge(topo, purgeable, owners);
    const purged = purgeable.filter((c) => !failed.has(c.k) && !kept.has(c.k)).length;
    this.deps.counted?.inc({ outcome: "purged" }, purged);
    this.deps.counted?.inc({ outcome: "kept" }, candidates.length - purged - failed.size);
    this.deps.counted?.inc({ outcome: "failed" }, failed.size);
    return purged;
  }

  /** Sweeps every `everyMs` until {@link stop}; a sweep never overlaps the previous one. */
  start(everyMs: number): void {
    this.#timer.start(everyMs, () => this.sweep(), (err) => {
      this.deps.log?.({ level: "debug", msg: "tombstone purge failed", error: err.message });
    });
  }

  /** Stops the timer. */
  stop(): void {
    this.#timer.stop();
  }

  /**
   * Whether every node of the map holds only ranges it owns under it: a node that missed a
   * change's drop (down during a cleanup or a cancel) keeps copies of keys it no longer owns,
   * which a later change making it an owner again would bring back once their tombstones are
   * gone (range copies only add what is newer). Each node drops them once per epoch and
   * incarnation (a pass over its keys; nothing adds stray entries under a stable map), and while
   * one cannot (down), nothing is purged.
   */
  async #onlyOwned(topo: Topology): Promise<boolean> {
    const all = segments(topo.ring, topo.map.replicas);
    const done = await Promise.all(topo.map.nodes.map(async ({ id }) => {
      const node = nodeRef(topo, id);
      const mark = `${topo.map.epoch}/${node.incarnation ?? ""}`;
      if (this.#owned.get(id) === mark) return true;
      const foreign = merged(all.filter((s) => !s.owners.includes(id)));
      try {
        // A node still on an older map takes the drop (its fence refuses only older epochs), and
        // then writes of a proxy on that older map for ranges it no longer owns (review): it
        // counts only once it holds this map, which a poll pushes.
        if (await this.deps.mapEpochOf(node) !== topo.map.epoch) return false;
        const dropped = foreign.length === 0
          ? 0
          : await this.deps.dropStrays(node, topo.map.epoch, foreign);
        if (dropped > 0) {
          this.deps.log?.({
            level: "info",
            msg: "dropped entries of ranges the node does not own (a change's drop it missed)",
            node: id,
            dropped,
          });
        }
        this.#owned.set(id, mark);
        return true;
      } catch (err) {
        if (!(err instanceof RingkvError)) throw err;
        return false;
      }
    }));
    return done.every(Boolean);
  }

  async #list(topo: Topology, id: string): Promise<Candidate[]> {
    try {
      const node = nodeRef(topo, id);
      const query = { graceMs: this.deps.graceMs, limit: this.#perNode };
      return await this.deps.client.oldTombstones(node, topo.map.epoch, query);
    } catch (err) {
      // A node that is down is swept once it is back; the others go on.
      if (!(err instanceof RingkvError)) throw err;
      return [];
    }
  }

  get #perNode(): number {
    return this.deps.perNode ?? 1000;
  }

  /** Per node, the candidate keys it confirms it would forget now (a `check` call). */
  async #confirmed(
    topo: Topology,
    groups: { node: NodeRef; keys: Candidate[] }[],
  ): Promise<Map<string, Set<string>>> {
    const holders = new Map<string, Set<string>>();
    await Promise.all(groups.map(async ({ node, keys }) => {
      const held = new Set<string>();
      holders.set(node.id, held);
      for (let i = 0; i < keys.length; i += this.#perNode) {
        const chunk = keys.slice(i, i + this.#perNode).map(({ k, ver }) => ({ k, ver }));
        let kept: Set<string>;
        try {
          const { graceMs } = this.deps;
          kept = new Set(
            (await this.deps.client.purge(node, topo.map.epoch, graceMs, chunk, true)).kept,
          );
        } catch (err) {
          if (!(err instanceof RingkvError)) throw err;
          return; // not asked: none of its keys is purged this sweep
        }
        for (const c of chunk) if (!kept.has(c.k)) held.add(c.k);
      }
    }));
    return holders;
  }

  /**
   * Sends each replica its keys to forget; returns the keys of failed calls and those a replica
   * kept (young by its clock, or written again).
   */
  async #purge(
    topo: Topology,
    purgeable: readonly Candidate[],
    owners: Map<string, NodeRef[]>,
  ): Promise<{ failed: Set<string>; kept: Set<string> }> {
    const byNode = new Map<string, { node: NodeRef; entries: { k: string; ver: string }[] }>();
    for (const c of purgeable) {
      for (const node of owners.get(c.k)!) {
        const group = byNode.get(node.id) ?? { node, entries: [] };
        group.entries.push({ k: c.k, ver: c.ver });
        byNode.set(node.id, group);
      }
    }
    const failed = new Set<string>();
    const kept = new Set<string>();
    await Promise.all([...byNode.values()].map(async ({ node, entries }) => {
      for (let i = 0; i < entries.length; i += this.#perNode) {
        const chunk = entries.slice(i, i + this.#perNode);
        try {
          const answer = await this.deps.client.purge(
            node,
            topo.map.epoch,
            this.deps.graceMs,
            chunk,
          );
          for (const k of answer.kept) kept.add(k);
        } catch (err) {
          if (!(err instanceof RingkvError)) throw err;
          for (const e of chunk) failed.add(e.k);
          this.deps.log?.({
            level: "debug",
            msg: "tombstone purge call failed",
            node: node.id,
            error: err.message,
          });
        }
      }
    }));
    for (const k of failed) kept.delete(k);
    return { failed, kept };
  }
}

/** Adjacent ranges joined into one. */
function merged(ranges: readonly Range[]): Range[] {
  const out: Range[] = [];
  for (const { start, end } of ranges) {
    const last = out.at(-1);
    if (last !== undefined && last.end === start) last.end = end;
    else out.push({ start, end });
  }
  return out;
}

/**
 * One candidate per key. A key listed with two versions (its replicas differ) is left out:
 * the replica behind is brought level first (anti-entropy), and a later sweep finds it.
 */
function agreeing(listed: readonly Candidate[]): Candidate[] {
  const byKey = new Map<string, Candidate | null>();
  for (const c of listed) {
    const seen = byKey.get(c.k);
    if (seen === undefined) byKey.set(c.k, c);
    else if (seen !== null && (seen.ver !== c.ver || seen.h !== c.h)) byKey.set(c.k, null);
  }
  return [...byKey.values()].filter((c): c is Candidate => c !== null);
}
