/**
 * What the one-round-trip write needs to remember (docs/replication.md, "One round trip for a
 * proxy's next write"): per key, the last entry this proxy itself got decided, so that its next
 * write of the key may propose at the ballot right after that one in version order without a
 * prepare. An acceptor that accepted ballot `b` refuses every ballot below `b`, and no ballot but
 * this proxy's lies between `b` and its successor, so accepting `b` was also a promise of the
 * successor to this proxy, with `b` as the accepted state.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ballotAfter } from "./own_ballots.ts";
 * assertEquals(ballotAfter("018c0000aaaa-0001-p1", "p1"), "018c0000aaaa-0001-p10");
 * assertEquals(ballotAfter("018c0000aaaa-0001-p2", "p1"), undefined);
 * ```
 */
import { expiryOf } from "../../shared/expiry.ts";
import { parseVersion, type Version } from "../../shared/version.ts";
import type { WireEntry } from "../../shared/wire.ts";

/** Longest writer id a version may carry (shared/version.ts). */
const MAX_WRITER = 32;

/**
 * The ballot right after `ver` in version order, when `ver` is one of `writer`'s ballots (its
 * writer id is `writer` followed only by `0`s) and one more `0` still fits. Versions compare as
 * strings and writer ids use `[A-Za-z0-9_]`, whose smallest character is `0`, so no version lies
 * strictly between `ver` and `ver + "0"`; no other proposer makes `ver + "0"` while no proxy's
 * id is another's followed by `0`s (random proxy ids all have 13 characters).
 */
export function ballotAfter(ver: Version, writer: string): Version | undefined {
  const own = parseVersion(ver).writer;
  if (!own.startsWith(writer) || !/^0*$/.test(own.slice(writer.length))) return undefined;
  return own.length < MAX_WRITER ? ver + "0" : undefined;
}

/** What this proxy last got decided for a key, under which map and replica set. */
export interface OwnDecision {
  ver: Version;
  /** False for a tombstone. */
  live: boolean;
  /** When a live entry expires (wall ms), if it has a TTL. */
  expiresAt?: number;
  epoch: number;
  /** The replica ids, in ring order, joined by spaces. */
  owners: string;
  /**
   * When this proxy got it decided (its wall clock, ms): a tombstone's replicas may purge it a
   * grace later, and its version may run ahead of this clock or lag far behind it.
   */
  decidedAt?: number;
}

/**
 * The record of `entry`, decided under `epoch` by `owners` (at `decidedAt`: the caller gives it
 * for a tombstone only, and reads no clock for a live entry).
 */
export function decisionOf(
  entry: WireEntry,
  epoch: number,
  owners: string,
  decidedAt?: number,
): OwnDecision {
  // Fields set when present, not spread: one object per decided write.
  const decision: OwnDecision = { ver: entry.ver, live: entry.v !== null, epoch, owners };
  const expiresAt = entry.v === null ? undefined : expiryOf(entry.t);
  if (expiresAt !== undefined) decision.expiresAt = expiresAt;
  if (decidedAt !== undefined) decision.decidedAt = decidedAt;
  return decision;
}

/** Fast writes tried per sample of the refusal rate. */
const SAMPLE = 256;
/** Bytes a record costs besides its key's characters (Map slot, object, version string). */
const RECORD_BYTES = 160;

/** Bounds of an {@link OwnDecisions}. */
export interface OwnDecisionsLimits {
  /** Most keys remembered (default 131,072). */
  maxKeys?: number;
  /** Most bytes, counting each key's characters twice plus {@link RECORD_BYTES} (default 32 MiB). */
  maxBytes?: number;
}

/**
 * The last decisions of this proxy per key, least recently written forgotten first, bounded in
 * keys and in bytes (keys may be 1 KiB). It also watches how often fast writes fail: when other
 * proxies write the same keys, most would, and each failure costs a round trip, so past one in 4
 * the next {@link SAMPLE} writes take the full round.
 */
export class OwnDecisions {
  readonly #last = new Map<string, OwnDecision>();
  /** One copy of each owner list (the same few are shared by many keys). */
  readonly #owners = new Map<string, string>();
  readonly #maxKeys: number;
  readonly #maxBytes: number;
  #bytes = 0;
  #tried = 0;
  #failed = 0;
  #pausedFor = 0;
  #skipped = 0;

  /** Creates an empty record. */
  constructor(limits: OwnDecisionsLimits = {}) {
    this.#maxKeys = limits.maxKeys ?? 131_072;
    this.#maxBytes = limits.maxBytes ?? 32 * 1024 * 1024;
  }

  /** Keys remembered. */
  get size(): number {
    return this.#last.size;
  }

  /** Writes that took the full round because too many fast writes failed (metrics). */
  get paused(): number {
    return this.#skipped;
  }

  /** Bytes the record is counted at. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Records a decision this proxy's own ballot won at a majority. */
  remember(key: string, decision: OwnDecision): void {
    let owners = this.#owners.get(decision.owners);
    if (owners === undefined) {
      if (this.#owners.size >= 4096) this.#owners.clear();
      this.#owners.set(decision.owners, owners = decision.owners);
    }
    this.forget(key); // re-inserted last: the Map's order is the age
    this.#last.set(key, { ...decision, owners });
    this.#bytes += costOf(key);
    while (this.#last.size > this.#maxKeys || this.#bytes > this.#maxBytes) {
      this.forget(this.#last.keys().next().value!);
    }
  }

  /** The decision of `key` to build a fast write on, if made under this epoch and replica set. */
  recall(key: string, epoch: number, owners: string): OwnDecision | undefined {
    if (this.#pausedFor > 0) {
      this.#pausedFor--;
      this.#skipped++;
      return undefined;
    }
    const d = this.#last.get(key);
    return d !== undefined && d.epoch === epoch && d.owners === owners ? d : undefined;
  }

  /** Whether a decision of `key` is remembered (under any epoch). */
  has(key: string): boolean {
    return this.#last.has(key);
  }

  /** Counts a fast write's outcome; too many failures pause fast writes for a while. */
  outcome(failed: boolean): void {
    this.#tried++;
    if (failed) this.#failed++;
    if (this.#tried < SAMPLE) return;
    if (this.#failed * 4 > this.#tried) this.#pausedFor = SAMPLE;
    this.#tried = this.#failed = 0;
  }

  /** Forgets `key` (its next write takes the full round). */
  forget(key: string): void {
    if (this.#last.delete(key)) this.#bytes -= costOf(key);
  }
}

function costOf(key: string): number {
  return 2 * key.length + RECORD_BYTES;
}
