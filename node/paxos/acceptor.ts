/**
 * node/paxos/ (this folder's main module): the CASPaxos acceptor a node runs for the proxies'
 * rounds. May import node/engine, node/storage and shared/.
 *
 * The node's CASPaxos acceptor (Rystsov 2018, "CASPaxos: Replicated State Machines
 * without logs"), one register per key; docs/replication.md has the protocol.
 *
 * The accepted state of a key is the engine's entry, and its accepted ballot is the
 * entry's version (proposers write every new state with version = ballot). What the
 * acceptor adds is the promised ballot of each key, kept in memory, plus one durable
 * watermark that is higher than every promise ever given: a promise above the
 * watermark first moves the watermark (a little ahead, so this costs one atomic file
 * write per {@link FLOOR_LEAD_MS} of ballots, not one per promise). After a restart
 * the stored watermark is every key's promise (a node may only promise more than it
 * did, never less), so in-flight proposals from before the crash get refused. A key's
 * promise is forgotten only once an entry that covers it is durable: the engine's repair
 * rolls back a log round that failed, and the promise must outlive that.
 *
 * Promises on keys without an entry here ("absent": a DELETE of a missing key, a failed
 * If-None-Match... leave one and nothing ever spends it) are bounded (node/paxos/
 * promise_table.ts): one kept for {@link PROMISE_AGE_MS} is folded into the absent-key floor,
 * the highest ballot folded, which is from then on every absent key's promise. Why that is safe
 * (a node may promise more than it did, never less): a folded promise p on key k is replaced by
 * the floor F >= p, which only grows, so k's bar never drops while k stays absent. A key leaves
 * "absent" in two ways. By an accept here: it passed the bar, so its version is at least F. By
 * a versioned ingest (anti-entropy, a range copy, a rejoin; it ignores promises): in the same
 * turn as the ingest applies the entry, F becomes k's own promise when the entry is below it
 * ({@link Acceptor.admitIngest}), so the bar stays. And by the engine's repair, which reloads a
 * key whose drop's log record failed: a key whose last change is not durable counts as held, so
 * its own promise is not folded meanwhile. Promises on keys with an entry are kept as
 * before: at most one per stored key, and folding them into a floor would refuse every hint
 * replay, read write-back and one-round-trip write (ballot = old version + "0") below it. The
 * floor is not saved: every promise folded into it is below the durable watermark, which is
 * every key's promise after a restart. Refusals name the floor; the proposer moves its clock
 * past it and retries. Fresh ballots are above it (it holds ballots promised a minute ago), so
 * only a stale proposal, or a hint or write-back of an entry older than the floor to a node that
 * lacks the key, is refused: a read then runs a full round, a hint is dropped and anti-entropy's
 * ingest brings the key level.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import { formatVersion, parseVersion, type Version } from "../../shared/version.ts";
import type { WireEntry } from "../../shared/wire.ts";
import type { Fence, NodeEngine } from "../engine/engine.ts";
import type { Stored } from "../engine/packed.ts";
import { PROMISE_AGE_MS, PromiseTable } from "./promise_table.ts";

export { PROMISE_AGE_MS };

/** How far ahead of a promise the durable watermark is moved. */
export const FLOOR_LEAD_MS = 1000;

/** Where the watermark lives (node/main.ts: an atomic file in the data directory). */
export interface FloorStore {
  load(): Promise<Version | null>;
  save(floor: Version): Promise<void>;
  /** Whether it outlives the process (a file): then nothing loaded beside held data means lost. */
  readonly persistent?: boolean;
}

/** An in-memory {@link FloorStore} (tests, and in-process nodes that never restart). */
export function memoryFloorStore(): FloorStore {
  let floor: Version | null = null;
  return {
    load: () => Promise.resolve(floor),
    save: (v) => {
      floor = v;
      return Promise.resolve();
    },
  };
}

/** The answer to a prepare or accept: `ok`, or refused with the ballot to beat. */
export interface Vote {
  ok: boolean;
  /** When refused: the key's promised (or accepted) ballot. */
  promised?: Version;
}

function max(a: Version | undefined, b: Version | undefined): Version | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}

const OK: Vote = { ok: true };

/** Per-key promises over a node engine. */
export class Acceptor {
  readonly #promised: PromiseTable;
  #durable: Version | undefined;
  #saving: Promise<void> | null = null;

  private constructor(
    private readonly engine: NodeEngine,
    private readonly store: FloorStore,
    /** Every key's promise after a restart. */
    private readonly bootFloor: Version | undefined,
    promiseAgeMs: number,
  ) {
    this.#durable = bootFloor;
    // A key whose last change is not durable yet counts as held: a drop rolled back by the
    // engine's repair brings it back, and its own promise must still be there (review).
    const held = (key: string) =>
      engine.peekVersion(key) !== undefined || engine.settled(key) !== undefined;
    this.#promised = new PromiseTable(held, promiseAgeMs);
  }

  /**
   * Loads the watermark and returns the acceptor. Nothing older than the data directory
   * is promised: a node back on a wiped directory forgot what it promised before.
   */
  static async open(
    engine: NodeEngine,
    store: FloorStore,
    options: {
      now?: () => number;
      log?: (obj: Record<string, unknown>) => void;
      /** How long a promise on a key without an entry is kept ({@link PROMISE_AGE_MS}). */
      promiseAgeMs?: number;
    } = {},
  ): Promise<Acceptor> {
    const born = formatVersion(engine.createdAt, 0, "0");
    let floor: Version | null;
    try {
      floor = await store.load();
    } catch (err) {
      if (!(err instanceof Error)) throw err;
      // Voting without the watermark could promise less than before a restart: 503, not a vote.
      throw new RingkvError(
        "unavailable",
        `Cannot vote in CASPaxos rounds: loading the promise watermark failed (${err.message})`,
      );
    }
    const { keys, tombstones } = engine.stats();
    if (floor === null && store.persistent && keys + tombstones > 0) {
      // No watermark beside data (its file deleted, a restore without it; found by review):
      // what was promised is unknown, and promises are made on ballots from clocks near this
      // one's. Nothing up to now and the lead a saved watermark keeps is promised again.
      floor = formatVersion((options.now ?? Date.now)() + FLOOR_LEAD_MS, 0, "0");
      options.log?.({
        level: "warn",
        msg: `no acceptor.json beside the data: refusing ballots up to ${floor}, ` +
          "as promises made before it was lost may reach that far",
      });
    }
    const age = options.promiseAgeMs ?? PROMISE_AGE_MS;
    return new Acceptor(engine, store, max(floor ?? undefined, born), age);
  }

  /**
   * Every key's promise since this start (the watermark it loaded): an accept below it is
   * refused for any key whose entry is older. `/health` reports it as `promiseFloor`, so that a
   * proxy sends no one-round-trip accept that this refusal would leave on a minority.
   */
  get floor(): Version | undefined {
    return this.bootFloor;
  }

  /** Keys with a promise of their own above their entry (for metrics and tests). */
  get openPromises(): number {
    return this.#promised.size;
  }

  /** Promises on keys without an entry folded into the absent-key floor so far. */
  get foldedPromises(): number {
    return this.#promised.folded;
  }

  /**
   * The ballot a new proposal on `key` must exceed: max(promise, restart floor, version); a key
   * without an entry is promised the absent-key floor at least.
   */
  #bar(key: string, version: Version | undefined): Version | undefined {
    return max(max(this.#promised.of(key, version !== undefined), this.bootFloor), version);
  }

  /**
   * The `admit` of a versioned ingest that bypasses the acceptor (node/http/internal_routes.ts):
   * admits every entry, and keeps the absent-key floor as the key's own promise when the entry
   * lands below it on a key without one (asked in the same turn as the entry is applied).
   */
  readonly admitIngest = (entry: WireEntry): boolean => {
    if (this.engine.peekVersion(entry.k) === undefined) {
      this.#promised.keepFloor(entry.k, entry.ver);
    }
    return true;
  };

  /**
   * Phase 1: promises `ballot` for `key` unless a ballot at least as high was promised
   * or accepted; answers with the entry either way (durable before it answers).
   */
  async prepare(key: string, ballot: Version): Promise<Vote & { entry: Stored | undefined }> {
    // Decide on the entry as it is now (no await between the check and the promise),
    // then answer once that entry is durable.
    this.#promised.tick();
    const entry = this.engine.peekHeld(key);
    const bar = this.#bar(key, entry?.version);
    if (bar !== undefined && ballot <= bar) {
      await this.#settled(key);
      return { ok: false, promised: bar, entry };
    }
    // The fsync of the entry read above, taken now: if that log round fails and the repair
    // rolls it back while the watermark is saved, nothing is pending any more afterwards.
    const settling = this.engine.settled(key);
    settling?.catch(() => {}); // awaited below; a failure before then is not unhandled
    this.#promised.promise(key, ballot);
    await this.#cover(ballot);
    if (settling !== undefined) await settling;
    return { ok: true, entry };
  }

  /**
   * Phase 2: stores `entry` (its version is the ballot) unless a higher ballot was
   * promised or accepted for its key. Sending the same accepted entry again is a no-op
   * that answers ok (a reader completing another proposer's write, or a replay).
   */
  async accept(entry: WireEntry): Promise<Vote> {
    return (await this.acceptAll([entry]))[0]!;
  }

  /**
   * {@link accept} for each entry, in order: refused or held ones decided now, the others
   * decided again where the engine applies them (no await between that check and the store's
   * update: the engine may wait for room or a compaction first, and a promise given meanwhile
   * must refuse them). The entries accepted between two of one key go to the engine as one
   * ingest, so a call's entries share one log record instead of one record each. `fence`
   * (the call's epoch check) refuses the call now, or an ingest as it applies: a call without
   * a key twice is one ingest, so a refusal stores none of its entries.
   */
  acceptAll(entries: readonly WireEntry[], fence?: Fence): Promise<Vote[]> {
    try {
      fence?.();
    } catch (err) {
      return Promise.reject(err);
    }
    const votes: Promise<Vote>[] = [];
    let run: WireEntry[] = [];
    let runKeys = new Set<string>();
    let waiting: number[] = []; // the votes that the run's ingest gives
    const flush = () => {
      if (run.length === 0) return;
      const stored = this.#store(run, fence);
      waiting.forEach((vote, i) => votes[vote] = stored.then((all) => all[i]!));
      [run, runKeys, waiting] = [[], new Set(), []];
    };
    for (const entry of entries) {
      // A key's second entry is decided on the store as its first one left it.
      if (runKeys.has(entry.k)) flush();
      const decided = this.#decideAccept(entry);
      if (decided === "store") {
        waiting.push(votes.length);
        votes.push(undefined as unknown as Promise<Vote>); // given by flush
        run.push(entry);
        runKeys.add(entry.k);
      } else votes.push(decided === "held" ? this.#held(entry) : decided);
    }
    flush();
    return Promise.all(votes);
  }

  /** Whether `entry` is held already, is to be stored, or the refusal. */
  #decideAccept(entry: WireEntry): "held" | "store" | Promise<Vote> {
    // The version alone: unpacking the value would cost more than the whole decision.
    const current = this.engine.peekVersion(entry.k);
    if (current === entry.ver) return "held";
    const bar = this.#bar(entry.k, current);
    if (bar !== undefined && entry.ver < bar) return Promise.resolve({ ok: false, promised: bar });
    return "store";
  }

  /**
   * Ingests `run`, each entry decided again as the engine applies it (found by review: an
   * accept waiting for room was stored after a prepare had promised above it and answered
   * with the old entry, and two compare-and-sets on one version both succeeded); once it is
   * durable, forgets the promises its stored entries cover. Not before: the repair rolls a
   * failed log round back, and the promise must outlive it.
   */
  async #store(run: readonly WireEntry[], fence: Fence | undefined): Promise<Vote[]> {
    // The engine asks about each entry once, in order, so a decision's index is its entry's.
    const decided: ("held" | "store" | Promise<Vote>)[] = [];
    await this.engine.ingest(run, fence, (entry) => {
      const decision = this.#decideAccept(entry);
      decided.push(decision);
      return decision === "store";
    });
    return await Promise.all(run.map((entry, i) => {
      const decision = decided[i]!;
      if (decision === "held") return this.#held(entry);
      if (decision !== "store") return decision;
      this.#spend(entry);
      return OK;
    }));
  }

  /**
   * Forgets the tombstones given (each only while it is still that tombstone, stored here at or
   * before `storedBy`: engine.purge) once
   * the durable watermark covers their versions and the absent-key floor is raised to them: a
   * purged key is absent, and an absent key's bar (the floor, and after a restart the watermark)
   * then refuses every accept and prepare its tombstone refused. Without it a stale accept below
   * the tombstone (a fast write's, a write-back's) would bring the key back. Returns the keys
   * forgotten, once durable.
   */
  async purge(
    tombstones: readonly { key: string; version: Version }[],
    storedBy: number,
    fence?: Fence,
  ): Promise<string[]> {
    if (tombstones.length === 0) return [];
    let top = tombstones[0]!.version;
    for (const { version } of tombstones) if (version > top) top = version;
    await this.#cover(top);
    this.#promised.raiseFloor(top);
    return await this.engine.purge(tombstones, storedBy, fence);
  }

  /** Answers ok to an entry held already, once it is durable. */
  async #held(entry: WireEntry): Promise<Vote> {
    await this.#settled(entry.k);
    this.#spend(entry);
    return OK;
  }

  /** Forgets `entry.k`'s promise when the durable `entry` covers it (a higher one stays). */
  #spend(entry: WireEntry): void {
    this.#promised.spend(entry.k, entry.ver);
  }

  /** Resolves once `key`'s entry as it is now is durable. */
  async #settled(key: string): Promise<void> {
    const settling = this.engine.settled(key);
    if (settling !== undefined) await settling;
  }

  /** Resolves once the durable watermark is at least `ballot`. */
  async #cover(ballot: Version): Promise<void> {
    while (this.#durable === undefined || this.#durable < ballot) {
      if (this.#saving === null) {
        const target = formatVersion(parseVersion(ballot).wall + FLOOR_LEAD_MS, 0, "0");
        this.#saving = this.store.save(target)
          .then(() => {
            this.#durable = max(this.#durable, target);
          }, (err) => {
            if (!(err instanceof Error)) throw err;
            // A full disk: the promise cannot be made durable, so it is not given (503).
            throw new RingkvError(
              "unavailable",
              `Cannot promise ballot ${ballot}: storing the promise watermark failed (${err.message})`,
            );
          })
          .finally(() => (this.#saving = null));
      }
      await this.#saving;
    }
  }
}
