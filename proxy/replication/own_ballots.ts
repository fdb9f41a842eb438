/**
 * The one-round-trip write (docs/replication.md, "One round trip for a proxy's next write"):
 * this proxy remembers, per key, the last entry it got decided (accepted by a majority
 * under its own ballot), and its next write of that key skips the prepare by proposing at
 * the ballot right after that one in version order. An acceptor that accepted ballot `b`
 * refuses every ballot below `b`, and no ballot but this proxy's lies between `b` and its
 * successor, so accepting `b` was also a promise of the successor to this proxy, with `b`
 * as the accepted state: the prepare of the successor ballot is already done at a majority.
 *
 * @module
 */
import { parseVersion, type Version } from "../../shared/version.ts";

/** Longest writer id a version may carry (shared/version.ts). */
const MAX_WRITER = 32;

/**
 * The ballot right after `ver` in version order, when `ver` is one of `writer`'s ballots
 * (its writer id is `writer` followed only by `0`s) and one more `0` still fits. Versions
 * are compared as strings and writer ids use `[A-Za-z0-9_]`, whose smallest character is `0`,
 * so no version lies strictly between `ver` and `ver + "0"`; and no other proposer can make
 * `ver + "0"` as long as no proxy's id is another's followed by `0`s (random ids all have
 * the same length).
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
  epoch: number;
  /** The replica ids, in ring order, joined by spaces. */
  owners: string;
}

/** Fast writes tried per sample of the refusal rate. */
const SAMPLE = 256;

/**
 * The last decisions of this proxy per key, at most `max` keys (the oldest are forgotten).
 * It also watches how often fast writes are refused: when other proxies write the same keys
 * (several proxies behind one address), most would be, and each refusal costs a round trip,
 * so past one in 4 the next {@link SAMPLE} writes take the full round.
 */
export class OwnDecisions {
  readonly #last = new Map<string, OwnDecision>();
  /** One copy of each owner list (the same few are shared by many keys). */
  readonly #owners = new Map<string, string>();
  #tried = 0;
  #refused = 0;
  #pausedFor = 0;

  /** Creates an empty record that keeps at most `max` keys. */
  constructor(private readonly max = 131_072) {}

  /** Keys remembered (for tests). */
  get size(): number {
    return this.#last.size;
  }

  /** Records a decision this proxy's own ballot won at a majority. */
  remember(key: string, decision: OwnDecision): void {
    let owners = this.#owners.get(decision.owners);
    if (owners === undefined) {
      if (this.#owners.size >= 4096) this.#owners.clear();
      this.#owners.set(decision.owners, owners = decision.owners);
    }
    this.#last.delete(key); // re-inserted last: the Map's order is the age
    this.#last.set(key, { ...decision, owners });
    if (this.#last.size > this.max) this.#last.delete(this.#last.keys().next().value!);
  }

  /** The decision of `key` to build a fast write on, if made under this epoch and replica set. */
  recall(key: string, epoch: number, owners: string): OwnDecision | undefined {
    if (this.#pausedFor > 0) {
      this.#pausedFor--;
      return undefined;
    }
    const d = this.#last.get(key);
    return d !== undefined && d.epoch === epoch && d.owners === owners ? d : undefined;
  }

  /** Counts a fast write's outcome; too many refusals pause fast writes for a while. */
  outcome(refused: boolean): void {
    this.#tried++;
    if (refused) this.#refused++;
    if (this.#tried < SAMPLE) return;
    if (this.#refused * 4 > this.#tried) this.#pausedFor = SAMPLE;
    this.#tried = this.#refused = 0;
  }

  /** Forgets `key` (its next write takes the full round). */
  forget(key: string): void {
    this.#last.delete(key);
  }
}
