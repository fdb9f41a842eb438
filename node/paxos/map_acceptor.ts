/**
 * The node's vote on the next cluster map: the acceptor of a single-decree Paxos per map epoch
 * (docs/internal-api.md, "Choosing the next cluster map"). The members of the map of epoch
 * E - 1 choose the map of epoch E, so two proxies that build epoch E from the same map at the
 * same moment cannot both install theirs: a map is chosen once a majority accepted it, and a
 * proposer that finds an accepted map finishes that one instead of its own.
 *
 * Only one epoch is voted on at a time: a proposer asks for epoch E only once the map of
 * E - 1 is chosen, so a vote for an earlier epoch is never needed again. The vote is stored
 * (fsync'd) before it is answered.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { MapAcceptor, memoryVoteStore } from "./map_acceptor.ts";
 * const map = { epoch: 2, replicas: 1, vnodes: 8, nodes: [], rebalancing: null };
 * const acceptor = new MapAcceptor(memoryVoteStore(), () => Promise.resolve({ ...map, epoch: 1 }));
 * assertEquals(await acceptor.prepare(2, "018c00000000-0000-p1"), null);
 * await acceptor.accept(2, "018c00000000-0000-p1", map);
 * assertEquals((await acceptor.prepare(2, "018c00000000-0001-p2"))?.map, map);
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import { isVersion, type Version } from "../../shared/version.ts";
import type { AcceptedMap, ClusterMap, MapVote } from "../../shared/wire.ts";

/** Where the vote is kept (the engine's `map_vote.json`; memory in tests). */
export interface MapVoteStore {
  load(): Promise<unknown>;
  save(vote: MapVote): Promise<void>;
}

/** A vote store in memory (tests and fakes). */
export function memoryVoteStore(): MapVoteStore {
  let stored: MapVote | null = null;
  return {
    load: () => Promise.resolve(stored === null ? null : structuredClone(stored)),
    save: (vote) => {
      stored = structuredClone(vote);
      return Promise.resolve();
    },
  };
}

/** Who a node is: its id and its data directory's incarnation. */
export interface VoterSelf {
  id: string;
  incarnation: string;
}

/**
 * The base map a vote on `epoch` carries (the chosen map of epoch - 1 it is built from), as
 * this node must take it before it votes: the map to store when it is newer than `held` (this
 * node's map), else null. A node keeps one vote, so before it votes on epoch E it must route
 * by E - 1, or a proxy still on E - 2 could never learn E (found by review). Throws 400 for a
 * base of another epoch, and 503 `node_recovering` when this node is not the member the base
 * records (another cluster's node at a member's URL, found by review): it does not vote.
 */
export function baseToLearn(
  base: ClusterMap,
  epoch: number,
  self: VoterSelf,
  held: ClusterMap | null,
): ClusterMap | null {
  if (base.epoch !== epoch - 1) {
    throw new RingkvError(
      "bad_request",
      `Cannot vote on epoch ${epoch} from a base map of epoch ${base.epoch}`,
    );
  }
  if (held !== null && held.epoch >= epoch) return null; // decided: the vote answers with `held`
  const recorded = base.nodes.find((n) => n.id === self.id);
  // A wiped member (no map, or the map it learnt while wiped, recording its old directory) votes.
  const member = recorded !== undefined &&
    (recorded.incarnation === undefined || recorded.incarnation === self.incarnation ||
      held === null ||
      held.nodes.find((n) => n.id === self.id)?.incarnation === recorded.incarnation);
  if (!member) {
    throw new RingkvError(
      "node_recovering",
      `Cannot vote on the cluster map of epoch ${epoch}: this node (${self.id}, data directory ` +
        `${self.incarnation}) is not ${
          recorded ? `the member the map records (${recorded.incarnation})` : "a member of the map"
        }`,
      { node: self.id, incarnation: self.incarnation },
    );
  }
  return base.epoch > (held?.epoch ?? 0) ? base : null;
}

/** The acceptor of map epochs; `routing` is the node's current (chosen) cluster map. */
export class MapAcceptor {
  #vote: MapVote | null | undefined;
  /** One vote at a time: a promise and an accept must not interleave their read and store. */
  #queue: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly store: MapVoteStore,
    private readonly routing: () => Promise<ClusterMap | null>,
  ) {}

  /**
   * Promises to accept no ballot below `ballot` for the map of `epoch`; the map this node
   * accepted for that epoch, if any, which the proposer must finish instead of its own.
   */
  prepare(epoch: number, ballot: Version): Promise<AcceptedMap | null> {
    return this.#serial(async () => {
      const vote = await this.#voteFor(epoch);
      if (ballot < vote.promised) throw refused(epoch, ballot, vote.promised);
      await this.#store({ ...vote, promised: ballot });
      return vote.accepted;
    });
  }

  /** Accepts `map` as the map of `epoch` under `ballot`, unless a higher ballot was promised. */
  accept(epoch: number, ballot: Version, map: ClusterMap): Promise<void> {
    return this.#serial(async () => {
      const vote = await this.#voteFor(epoch);
      if (ballot < vote.promised) throw refused(epoch, ballot, vote.promised);
      await this.#store({ epoch, promised: ballot, accepted: { ballot, map } });
    });
  }

  /**
   * The stored vote, read only: no promise, nothing written. A proxy reads it to find a map
   * accepted for the next epoch that no proxy pushed (its proposer died right after).
   */
  peek(): Promise<MapVote | null> {
    return this.#serial(() => this.#load());
  }

  #serial<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(fn);
    this.#queue = run.catch(() => {});
    return run;
  }

  async #store(vote: MapVote): Promise<void> {
    await this.store.save(vote);
    this.#vote = vote;
  }

  /** The vote on `epoch` so far (a fresh one when this node has not voted on it yet). */
  async #voteFor(epoch: number): Promise<MapVote> {
    const routing = await this.routing();
    const held = routing?.epoch ?? 0;
    if (epoch <= held) {
      // Chosen already: the proposer built its map from an old one; it adopts ours.
      throw new RingkvError(
        "stale_epoch",
        `Cannot vote on the cluster map of epoch ${epoch}: this node has the chosen map of epoch ${held}`,
        { epoch: held, map: routing },
      );
    }
    const vote = await this.#load();
    if (vote !== null && vote.epoch > epoch) {
      throw new RingkvError(
        "conflict",
        `Cannot vote on the cluster map of epoch ${epoch}: the map of epoch ${vote.epoch} is being chosen`,
        { voting: vote.epoch },
      );
    }
    if (vote === null || vote.epoch < epoch) return { epoch, promised: "", accepted: null };
    return vote;
  }

  async #load(): Promise<MapVote | null> {
    if (this.#vote === undefined) this.#vote = parseVote(await this.store.load());
    return this.#vote;
  }
}

function refused(epoch: number, ballot: Version, promised: Version): RingkvError {
  return new RingkvError(
    "conflict",
    `Cannot vote for ballot ${ballot} on the cluster map of epoch ${epoch}: ballot ${promised} ` +
      "was promised (another proxy is changing the cluster map)",
    { promised },
  );
}

/** The stored vote, checked; a damaged one is a 503 rather than a forgotten promise. */
function parseVote(value: unknown): MapVote | null {
  if (value === null) return null;
  const vote = value as Partial<MapVote>;
  const accepted = vote.accepted as Partial<AcceptedMap> | null | undefined;
  const ok = Number.isSafeInteger(vote.epoch) && typeof vote.promised === "string" &&
    (accepted === null ||
      (typeof accepted === "object" && isVersion(accepted.ballot ?? "") &&
        Number.isSafeInteger(accepted.map?.epoch)));
  if (!ok) {
    throw new RingkvError(
      "unavailable",
      "Cannot vote on the cluster map: the stored vote (map_vote.json) is damaged",
    );
  }
  return vote as MapVote;
}
