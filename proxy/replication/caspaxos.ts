/**
 * Single-key operations on n > 1 replicas, linearizable per key while a majority of the
 * key's replicas answers (docs/replication.md):
 * - writes (put, delete, compare-and-set) are CASPaxos rounds (Rystsov 2018): prepare a
 *   ballot (a version from the proxy's hybrid clock, newer than any seen) at a majority,
 *   take the newest entry among the answers, apply the operation to it, and accept the
 *   result, stamped with the ballot as its version, at a majority;
 * - reads are one round of `/internal/read` at a majority (ABD, Attiya, Bar-Noy and
 *   Dolev 1995): when the answers agree that is the value; when they do not, the newest
 *   entry is written back with its own version (the same accept its writer sent) to a
 *   majority before it is returned;
 * - a proxy's next write of a key it decided last skips the prepare (own_ballots.ts), and a
 *   fast accept that reached no majority is recovered by a full round (fast_write.ts).
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import { withExpiry } from "../../shared/expiry.ts";
import type { Point } from "../../shared/ring.ts";
import type { HybridClock, Version } from "../../shared/version.ts";
import {
  type BatchOp,
  type BatchResult,
  DEFAULT_CONTENT_TYPE,
  type WireEntry,
} from "../../shared/wire.ts";
import { decide, newest, readResult, restamp } from "./decide.ts";
import { finishedUnder, mayHaveApplied, noQuorum, unconfirmed } from "./round_errors.ts";
import type { FailureDetector } from "./failure_detector.ts";
import type { Hints } from "./hints.ts";
import { type NodeRef, StaleEpochError } from "../nodes/node_client.ts";
import type { PaxosCalls } from "./paxos_batcher.ts";
import type { WireVote } from "../nodes/paxos_client.ts";
import { gather, type Gathered, KeyLocks, quorumOf } from "./quorum.ts";
import { ballotAfter, decisionOf, OwnDecisions } from "./own_ballots.ts";
import {
  type AcceptAnswers,
  answerOf,
  type FastCounts,
  type FastDecision,
  neverStored,
  newFastCounts,
  nowhere,
  recoveryCase,
  recoveryPlan,
  settled,
} from "./fast_write.ts";

/** What {@link Replicated} needs. */
export interface ReplicatedDeps {
  client: PaxosCalls;
  /** Versioned ingest into next-ring owners while a range moves. */
  ingest: (node: NodeRef, epoch: number, entries: WireEntry[]) => Promise<unknown>;
  clock: HybridClock;
  detector: FailureDetector;
  hints: Hints;
  /** Rounds before an operation gives up under contention (default 8). */
  maxRounds?: number;
  /** One-round-trip writes of keys this proxy decided last (default true). */
  fastWrites?: boolean;
  /**
   * Fast writes even while an owner is not up or has hints pending (default false: a full
   * round then); for tests that drive the recovery under faults on every call.
   */
  fastWhileLagging?: boolean;
  /**
   * A key whose TTL ends within this many ms takes a full round, not a fast write (default
   * {@link FAST_EXPIRY_MARGIN_MS}): a fast write's recovery can outlast a short TTL.
   */
  fastExpiryMarginMs?: number;
  /**
   * A recorded tombstone whose version is older than this (wall ms) takes a full round, not a
   * fast write: the replicas may have purged it (proxy/replication/tombstone_purge.ts) and then
   * refuse the fast accept by their absent-key floor, some of them only. Half the shortest grace
   * a proxy may run with (another proxy's may be shorter than this one's); undefined: none (tests).
   */
  fastTombstoneAgeMs?: number;
  /**
   * How long a request waits behind the earlier ones on its key before it gives up (503): the
   * proxy's `--timeout-ms`. Without it, it waits for them all.
   */
  keyWaitMs?: number;
  /**
   * The wall clock a round reads a TTL against (default `Date.now`): injected so tests can put
   * this proxy's clock ahead of or behind the nodes'.
   */
  wallNow?: () => number;
  log?: (obj: Record<string, unknown>) => void;
}

/**
 * The default of {@link ReplicatedDeps.fastExpiryMarginMs}: longer than a fast write's recovery
 * takes at the default 2 s call timeout (the fast accept, a read, and up to 8 rounds).
 */
export const FAST_EXPIRY_MARGIN_MS = 60_000;

/** The replicas of one key under one topology. */
export interface Replicas {
  owners: NodeRef[];
  /** Next-ring owners that are not owners (they get accepted writes by ingest). */
  joining: NodeRef[];
  key: string;
  point: Point;
  epoch: number;
}

/** Runs single-key operations by quorum. */
export class Replicated {
  readonly #locks: KeyLocks;
  /** What this proxy decided last per key, for one-round-trip writes (own_ballots.ts). */
  readonly #own = new OwnDecisions();
  /** Rewrites of an existing entry under a new version (see docs/replication.md). */
  restamps = 0;
  /** Fast writes by outcome (fast_write.ts `FAST_OUTCOMES` says what each counts). */
  readonly fast: FastCounts = newFastCounts();
  readonly #wallNow: () => number;

  /** Creates the replicated data path. */
  constructor(private readonly deps: ReplicatedDeps) {
    this.#wallNow = deps.wallNow ?? Date.now;
    this.#locks = new KeyLocks(deps.keyWaitMs, (key, ms) =>
      new RingkvError(
        "unavailable",
        `Cannot run this request on key ${JSON.stringify(key)}: the operations on it before ` +
          `this one waited ${ms} ms on its replicas (a node not answering); try again`,
      ));
  }

  /** Fast writes skipped while too many failed, and keys remembered (metrics). */
  get fastRecord(): { paused: number; keys: number } {
    return { paused: this.#own.paused, keys: this.#own.size };
  }

  /** Whether the next write of `key` may take one round trip (tests, metrics). */
  remembers(key: string): boolean {
    return this.#own.has(key);
  }

  /** Forgets `key`'s last decision: another round (hint replay, anti-entropy) touched it. */
  forget(key: string): void {
    this.#own.forget(key);
  }

  /** Runs `op` on the key's replicas. Throws StaleEpochError only when it is safe to retry. */
  run(replicas: Replicas, op: BatchOp): Promise<BatchResult> {
    return this.#locks.run(
      op.key,
      () => op.op === "get" ? this.#read(replicas) : this.#write(replicas, op),
    );
  }

  /**
   * A full round on `r.key` that writes back the newest entry of its prepare quorum under a
   * new ballot when the quorum disagrees (anti-entropy's way past a promise that blocks an
   * undecided entry; proxy/replication/replica_sync.ts). Nothing changes when it agrees.
   */
  async settle(r: Replicas): Promise<void> {
    await this.#locks.run(r.key, () => this.#fullWrite(r, { op: "get", key: r.key }));
  }

  async #read(r: Replicas): Promise<BatchResult> {
    const need = quorumOf(r.owners.length);
    for (let round = 1; round <= this.#maxRounds; round++) {
      const got = await this.#gather(
        r.owners,
        need,
        (n) => this.deps.client.read(n, r.epoch, [r.key]).then((e) => e[0] ?? null),
        () => true,
      );
      if (!got.ok) throw noQuorum("read", r, need, got);
      const best = newest(got.good.map((g) => g.value));
      const have = got.good.filter((g) => g.value?.ver === best?.ver);
      if (best === null || have.length === got.good.length) return readResult(best);
      this.#own.forget(r.key);
      const others = r.owners.filter((n) => !have.some((h) => h.node.id === n.id));
      const back = await this.#accept(r, others, need - have.length, best);
      if (back.ok) return readResult(best);
      // A replica promised a higher ballot (e.g. its floor after a restart): only a round
      // above that ballot gets past it, and re-reading would only meet the refusal again.
      if (back.bad.length > 0) break;
      this.#observe(back);
      await backoff(round);
    }
    return this.#write(r, { op: "get", key: r.key });
  }

  async #write(r: Replicas, op: BatchOp): Promise<BatchResult> {
    return await this.#fastWrite(r, op) ?? await this.#fullWrite(r, op);
  }

  /**
   * The write in one round trip when this proxy decided the key's last entry under ballot b:
   * accepting b promised this proxy b + "0" (own_ballots.ts), so the accept goes out at once,
   * built on that entry. Undefined: the full round is to run (no record, a condition that
   * fails or a 404 on the record, which a quorum must confirm; or the accept is on no replica).
   */
  async #fastWrite(r: Replicas, op: BatchOp): Promise<BatchResult | undefined> {
    const last = this.#fastBase(r, op);
    if (last === undefined) return undefined;
    const ballot = ballotAfter(last.ver, this.deps.clock.writer);
    if (ballot !== undefined && this.#floored(r, ballot)) {
      this.fast.floored++;
      return undefined;
    }
    this.#own.forget(r.key);
    if (ballot === undefined) {
      this.fast.capped++; // the writer id is full: a fresh ballot
      return undefined;
    }
    const t = last.live ? withExpiry(DEFAULT_CONTENT_TYPE, last.expiresAt) : undefined;
    const base = { k: r.key, v: last.live ? "" : null, t, ver: last.ver, h: r.point };
    const decided = decide(op, base, ballot, r, this.#wallNow());
    if (decided.entry === undefined) {
      this.fast.condition++; // a quorum must confirm a 412 or 404
      return undefined;
    }
    const need = quorumOf(r.owners.length);
    const answers: AcceptAnswers = new Map();
    // A stale epoch stores nothing, so it is not hinted: then "nowhere" below stays true.
    const acc = await this.#accept(r, r.owners, need, decided.entry, answers, false)
      .catch((err) => {
        if (!(err instanceof StaleEpochError)) throw err;
        return err;
      });
    this.#own.outcome(!("ok" in acc && acc.ok));
    if ("ok" in acc && acc.ok) {
      this.fast.decided++;
      this.#remember(r, decided.entry);
      return decided.result;
    }
    const answered = await settled(answers);
    if (nowhere([...answered.values()])) {
      // On no replica, it can never be chosen: the write may run again, under the new map.
      if (acc instanceof StaleEpochError) {
        this.fast.stale++;
        throw acc;
      }
      this.fast.refused++;
      this.#observe(acc);
      return undefined;
    }
    this.fast.recovered++;
    const entry = decided.entry;
    return await this.#recover(r, op, ballot, { ...decided, entry, base: last.ver, answered });
  }

  /** The record a fast write of `op` builds on, if any. */
  #fastBase(r: Replicas, op: BatchOp) {
    if (this.deps.fastWrites === false || op.op === "get" || op.minVersion !== undefined) return;
    if (r.joining.length > 0) return; // a moving range: the new owner's copy goes with a round
    const last = this.#own.recall(r.key, r.epoch, ownersOf(r));
    if (last === undefined) return undefined;
    if (this.#expiresSoon(last)) {
      this.fast.expiring++;
      return undefined;
    }
    if (this.#mayBePurged(last)) {
      this.fast.purgeable++;
      return undefined;
    }
    if (this.deps.fastWhileLagging || !this.#lagging(r)) return last;
    this.fast.lagging++;
    return undefined;
  }

  /**
   * Whether the recorded entry's TTL ends within the margin. A recovery that re-stamps the fast
   * decision answers it as decided while the base was live; had the TTL run out meanwhile, a
   * reader could have seen the key absent before it (docs/replication.md, the "older" case).
   */
  #expiresSoon(last: { live: boolean; expiresAt?: number }): boolean {
    if (!last.live || last.expiresAt === undefined) return false;
    const margin = this.deps.fastExpiryMarginMs ?? FAST_EXPIRY_MARGIN_MS;
    return last.expiresAt - this.#wallNow() < margin;
  }

  /**
   * Whether the recorded entry is a tombstone decided long enough ago that its replicas may have
   * purged it: by when this proxy got it decided, not by its version, which can run ahead of this
   * clock (a node's fast clock pushes every ballot ahead) or lag far behind it (a fast write's).
   */
  #mayBePurged(last: { live: boolean; decidedAt?: number }): boolean {
    const age = this.deps.fastTombstoneAgeMs;
    if (last.live || age === undefined) return false;
    return last.decidedAt === undefined || last.decidedAt < this.#wallNow() - age;
  }

  /**
   * Whether an owner is not up or has hints pending in this proxy's view: it may lack the
   * entry the fast accept builds on and take that accept alone, which forces a recovery round
   * (and a 503 when another writer's entry is newer) where a full round would just run.
   */
  #lagging(r: Replicas): boolean {
    const { detector, hints } = this.deps;
    return r.owners.some((n) => !detector.writesFirst(n.id) || hints.count(n.id) > 0);
  }

  /**
   * Whether an owner refuses the fast accept at `ballot` for good by its restart floor (its
   * acceptor's promise on every key since its last start, which its `/health` reports), or may,
   * since a call to it failed (as a restart makes them fail) and no probe said its floor since.
   * Two such owners of three leave the accept on the third alone, where no resend completes it:
   * a recovery round, and a 503 "has taken effect" when it finds the accept newest
   * (docs/replication.md, "Not below an owner's restart floor"). A full round's fresh ballot is
   * above the floor, and makes the key's next write fast again.
   */
  #floored(r: Replicas, ballot: Version): boolean {
    // A loop, not some(): no closure per write.
    for (const n of r.owners) {
      const floor = this.deps.detector.promiseFloor(n.id);
      if (floor === "unsure" || (floor !== undefined && ballot < floor)) return true;
    }
    return false;
  }

  /** Records `entry`, just decided under this proxy's ballot, for the next write. */
  #remember(r: Replicas, entry: WireEntry): void {
    if (this.deps.fastWrites === false || r.joining.length > 0) return;
    // The clock is read for a tombstone only: a write's hot path needs no time.
    const decidedAt = entry.v === null ? this.#wallNow() : undefined;
    this.#own.remember(r.key, decisionOf(entry, r.epoch, ownersOf(r), decidedAt));
  }

  /**
   * After a fast accept at `fast` that may be on some replicas but on no known majority: full
   * rounds at new ballots until one tells where it stands (fast_write.ts `recoveryCase`) and
   * gets its own accept decided, so nothing is left that could later choose it unseen.
   * Undefined: the fast accept is on no owner for good (`neverStored`): a full round is to run.
   */
  async #recover(
    r: Replicas,
    op: BatchOp,
    fast: Version,
    mine: FastDecision,
  ): Promise<BatchResult | undefined> {
    const need = quorumOf(r.owners.length);
    if (await this.#finish(r, fast, need)) {
      this.fast.repaired++;
      return mine.result;
    }
    let seen: Version | undefined = fast;
    for (let round = 1; round <= this.#maxRounds; round++) {
      const ballot = this.deps.clock.nextAfter(seen);
      const got = await this.#prepare(r, ballot, need).catch((err) => {
        if (!(err instanceof RingkvError)) throw err;
        throw this.#unconfirmed(op, `its recovery round's prepare failed: ${err.message}`);
      });
      if (!got.ok && got.bad.length === 0) {
        throw this.#unconfirmed(op, noQuorum("prepare", r, need, got).message);
      }
      const done = got.ok ? await this.#recoverAt(r, op, fast, mine, ballot, got) : got;
      if (done === undefined || !("bad" in done)) return done;
      seen = this.#observe(done) ?? seen;
      await backoff(round);
    }
    throw this.#unconfirmed(
      op,
      `other writers kept winning its recovery round (${this.#maxRounds} rounds)`,
    );
  }

  /**
   * One recovery round past its prepare (fast_write.ts `recoveryCase`): the answer, the
   * refused accept (on no replica) to retry above, or undefined when the fast accept is nowhere.
   */
  async #recoverAt(
    r: Replicas,
    op: BatchOp,
    fast: Version,
    mine: FastDecision,
    ballot: Version,
    prepared: Gathered<WireVote & { entry: WireEntry | null }>,
  ): Promise<BatchResult | Gathered<WireVote> | undefined> {
    const entries = prepared.good.map((g) => g.value.entry);
    const best = newest(entries);
    const kind = recoveryCase(best, fast);
    this.fast[kind]++;
    if (kind === "newer") return this.#newer(r, op, fast, mine, prepared, best!);
    // Ours and on the whole quorum: chosen at `fast` already, nothing to re-stamp.
    if (kind === "ours" && entries.every((e) => e?.ver === fast)) return mine.result;
    const plan = recoveryPlan(kind, op, best, mine, ballot, r, this.#wallNow());
    if (plan.restamp) this.restamps++;
    const need = quorumOf(r.owners.length);
    const answers: AcceptAnswers = new Map();
    const acc = await this.#acceptOrMayHave(r, op, need, plan.entry, answers).catch((err) => {
      if (err instanceof RingkvError) this.fast.unconfirmed++;
      throw err;
    });
    if (!acc.ok) {
      if (nowhere(await Promise.all(answers.values()))) return acc;
      this.fast.unconfirmed++;
      throw mayHaveApplied(op, r, need, acc);
    }
    // Ours, re-stamped: neither version may be answered. A reader may have seen the value under
    // `fast`, so `ballot` would be a write's version older than one already read; and the
    // client's If-Match on `fast` would fail at once, a version changed with nothing in between.
    if (plan.answer === undefined) {
      this.fast.restamped++;
      throw finishedUnder(op, ballot);
    }
    return plan.answer;
  }

  /**
   * The recovery found another writer's entry newer: undefined (a full round is to run) when
   * the fast accept is provably on no owner (fast_write.ts `neverStored`), else the 503.
   */
  #newer(
    r: Replicas,
    op: BatchOp,
    fast: Version,
    mine: FastDecision,
    prepared: Gathered<WireVote & { entry: WireEntry | null }>,
    best: WireEntry,
  ): undefined {
    // A refusal names a ballot above this one: that owner refuses the fast accept too.
    const answered = [...prepared.good, ...prepared.bad];
    const held = new Map(answered.map((g) => [g.node.id, g.value.entry]));
    if (!neverStored(fast, r.owners.map((n) => n.id), mine.answered, held)) {
      throw this.#unconfirmed(op, `another writer's entry (version ${best.ver}) is newer`);
    }
    this.fast.nowhere++;
    return undefined;
  }

  /**
   * A read's repair of the fast entry itself, as another proxy's read would do it: when the
   * newest entry a read quorum holds is the fast accept, that same accept is sent again to the
   * replicas that lack it. True once a majority holds it: then it is chosen under `fast`.
   */
  async #finish(r: Replicas, fast: Version, need: number): Promise<boolean> {
    try {
      const got = await this.#gather(
        r.owners,
        need,
        (n) => this.deps.client.read(n, r.epoch, [r.key]).then((e) => e[0] ?? null),
        () => true,
      );
      const best = newest(got.good.map((g) => g.value));
      if (!got.ok || best?.ver !== fast) return false;
      const have = got.good.filter((g) => g.value?.ver === fast);
      const others = r.owners.filter((n) => !have.some((h) => h.node.id === n.id));
      return (await this.#accept(r, others, need - have.length, best)).ok;
    } catch (err) {
      if (!(err instanceof RingkvError)) throw err;
      return false; // a stale epoch: the recovery round says what it can
    }
  }

  /** Phase 1 of `ballot` on the key's replicas until `need` promised. */
  #prepare(r: Replicas, ballot: Version, need: number) {
    return this.#gather(
      r.owners,
      need,
      (n) => this.deps.client.prepare(n, r.epoch, [{ key: r.key, ballot }]).then((v) => v[0]!),
      (v) => v.ok,
    );
  }

  async #fullWrite(r: Replicas, op: BatchOp): Promise<BatchResult> {
    this.#own.forget(r.key);
    const need = quorumOf(r.owners.length);
    let seen = op.minVersion;
    for (let round = 1; round <= this.#maxRounds; round++) {
      const ballot = this.deps.clock.nextAfter(seen);
      const got = await this.#prepare(r, ballot, need);
      if (!got.ok) {
        if (got.bad.length === 0) throw noQuorum("prepare", r, need, got);
        seen = this.#observe(got) ?? seen;
        await backoff(round);
        continue;
      }
      const entries = got.good.map((g) => g.value.entry);
      const best = newest(entries);
      const agreed = entries.every((e) => e?.ver === best?.ver);
      const decided = decide(op, best, ballot, r, this.#wallNow());
      if (decided.entry === undefined && agreed) return decided.result;
      // A reaper's delete refused (the key was written or deleted already) answers no client.
      // When a write quorum holds the newest it is decided: the replicas that lag get it as it
      // is, by versioned ingest, not re-stamped under a new version, which a watch would send
      // as a second change (soak: proxies sweeping alike sent ~10 % of expiries twice).
      if (decided.entry === undefined && op.expire && await this.#levelDecided(r, got, need)) {
        return decided.result;
      }
      const entry = decided.entry ?? restamp(best!, ballot);
      if (decided.entry === undefined) this.restamps++;
      const answers: AcceptAnswers = new Map();
      const acc = await this.#acceptOrMayHave(r, op, need, entry, answers);
      if (!acc.ok) {
        // Refused by every replica: the entry is on none, so another round may run the write.
        // A read's write-back changes no value, so a newer writer's refusal never ends it: the
        // next round reads what that writer left (review: 503s of GETs under partitions).
        const refusedRead = op.op === "get" && acc.bad.length > 0;
        if (!refusedRead && !nowhere(await Promise.all(answers.values()))) {
          throw mayHaveApplied(op, r, need, acc);
        }
        seen = this.#observe(acc) ?? seen;
        await backoff(round);
        continue;
      }
      await this.#copyToJoining(r, op, entry);
      if (op.op !== "get" && decided.entry !== undefined) this.#remember(r, entry);
      return decided.entry === undefined && decided.result.status !== 404
        ? { ...decided.result, version: ballot }
        : decided.result;
    }
    throw new RingkvError(
      "unavailable",
      `Cannot ${op.op} key "${op.key}": other writers kept winning the key (${this.#maxRounds} rounds); retry it`,
    );
  }

  /** The accept of a write: a stale epoch there means it may have been applied. */
  #acceptOrMayHave(
    r: Replicas,
    op: BatchOp,
    need: number,
    entry: WireEntry,
    answers: AcceptAnswers = new Map(),
  ): Promise<Gathered<WireVote>> {
    return this.#accept(r, r.owners, need, entry, answers).catch((err) => {
      if (!(err instanceof StaleEpochError)) throw err;
      // The gather stopped at the refusal: how many replicas took the accept is not known.
      throw new RingkvError(
        "node_unavailable",
        op.op === "get"
          ? `Cannot read key "${op.key}" at a majority: the cluster map changed while its newest version was written back (${err.message}). The read changed nothing; retry it.`
          : `Cannot confirm the ${op.op} of key "${op.key}": the cluster map changed during its accept (${err.message}), so some replicas may hold it. The write may have taken effect; retry it.`,
      );
    });
  }

  /** The 503 of a fast write whose recovery could not tell whether it took effect, counted. */
  #unconfirmed(op: BatchOp, why: string): RingkvError {
    this.fast.unconfirmed++;
    return unconfirmed(op, why);
  }

  get #maxRounds(): number {
    return this.deps.maxRounds ?? 8;
  }

  /**
   * Accepts `entry` at `nodes` until `need` agree; replicas that miss it get a hint (one that
   * answered a stale epoch only with `hintStale`). `answers` gets each called replica's answer,
   * settled when its call is (calls still running when the quorum failed keep their timeout).
   */
  async #accept(
    r: Replicas,
    nodes: NodeRef[],
    need: number,
    entry: WireEntry,
    answers: AcceptAnswers = new Map(),
    hintStale = true,
  ): Promise<Gathered<WireVote>> {
    const hints = this.deps.hints;
    const call = (n: NodeRef) => {
      const answer = this.deps.client.accept(n, r.epoch, [entry]).then((v) => v[0]!, (err) => {
        if (hintStale || !(err instanceof StaleEpochError)) hints.add(n.id, entry);
        throw err;
      });
      answers.set(n.id, answerOf(answer));
      return answer;
    };
    const got = await this.#gather(nodes, need, call, (v) => v.ok);
    if (!got.ok) return got;
    for (const n of got.skipped) hints.add(n.id, entry);
    // The entry is decided: a replica that refused it (a promise above it, e.g. its restart
    // floor) stays behind until a replay brings it level (hint_replay.ts); late refusals too.
    for (const [id, answer] of answers) {
      if (got.good.some((g) => g.node.id === id)) continue;
      void answer.then((a) => a === "refused" && hints.add(id, entry));
    }
    return got;
  }

  #gather<T>(
    nodes: NodeRef[],
    need: number,
    call: (n: NodeRef) => Promise<T>,
    good: (v: T) => boolean,
  ): Promise<Gathered<T>> {
    const ordered = this.deps.detector.order(nodes);
    // Read-only and stalled replicas (last in `ordered`) are asked only when the others do not
    // make a quorum: a stalled disk holds every call sent to it (issue 16).
    let up = 0;
    while (up < ordered.length && this.deps.detector.writesFirst(ordered[up]!.id)) up++;
    return gather(ordered, up, need, call, good).then((got) => {
      const stale = got.errors.find((e) => e instanceof StaleEpochError);
      if (!got.ok && stale) throw stale;
      return got;
    });
  }

  /**
   * When a write quorum of the owners holds the newest entry the prepare read (those that
   * answered it, then the others read), ingests it into the owners that hold another
   * (versioned: a newer one is kept) and says true; false when that is not known. A failed
   * ingest is left to hints and anti-entropy, as any replica that lags.
   */
  async #levelDecided(
    r: Replicas,
    got: Gathered<WireVote & { entry: WireEntry | null }>,
    need: number,
  ): Promise<boolean> {
    const held = got.good.map((g) => ({ node: g.node, entry: g.value.entry }));
    const asked = new Set(held.map((h) => h.node.id));
    const others = r.owners.filter((o) => !asked.has(o.id));
    const read = await Promise.all(
      others.map((node) =>
        this.deps.client.read(node, r.epoch, [r.key]).then(
          (e) => ({ node, entry: e[0] ?? null }),
          (err) => {
            if (!(err instanceof RingkvError)) throw err;
            return undefined;
          },
        )
      ),
    );
    for (const h of read) if (h !== undefined) held.push(h);
    const best = newest(held.map((h) => h.entry));
    if (best === null || held.filter((h) => h.entry?.ver === best.ver).length < need) return false;
    const lagging = held.filter((h) => h.entry?.ver !== best.ver);
    await Promise.all(
      lagging.map(({ node }) =>
        this.deps.ingest(node, r.epoch, [best]).catch((err) => {
          if (!(err instanceof RingkvError)) throw err;
        })
      ),
    );
    return true;
  }

  /** The highest ballot that refusals named, moved into the clock. */
  #observe(got: Gathered<WireVote>): Version | undefined {
    let top: Version | undefined;
    for (const { value } of got.bad) {
      if (value.promised !== undefined && (top === undefined || value.promised > top)) {
        top = value.promised;
      }
    }
    if (top !== undefined) this.deps.clock.observe(top);
    return top;
  }

  /**
   * Copies an accepted write to the nodes taking its key over. When that fails the answer says
   * "may have", not "has": the majority that accepted it may not meet the next map's read
   * quorum until the rebalancing or a hint copies it (found by QA: a GET right after such a
   * 503 read the value before it).
   */
  async #copyToJoining(r: Replicas, op: BatchOp, entry: WireEntry): Promise<void> {
    if (r.joining.length === 0) return;
    try {
      await Promise.all(r.joining.map((n) => this.deps.ingest(n, r.epoch, [entry])));
    } catch (err) {
      if (!(err instanceof RingkvError)) throw err;
      const where = "to a node that takes the key over in the rebalancing under way failed";
      throw new RingkvError(
        "node_unavailable",
        op.op === "get"
          ? `Cannot read key "${op.key}" at a majority: copying version ${entry.ver} ${where}: ${err.message}. The read changed nothing; retry it.`
          : `Cannot confirm the ${op.op} of key "${op.key}": a majority accepted version ${entry.ver} but copying it ${where}: ${err.message}. The write may have taken effect: until the rebalancing copies it, a read under the new map may not show it; read the key, then retry it if needed.`,
      );
    }
  }
}

function ownersOf(r: Replicas): string {
  return r.owners.map((n) => n.id).join(" ");
}

function backoff(round: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.random() * 5 * round));
}
