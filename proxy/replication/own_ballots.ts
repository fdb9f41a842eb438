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

/** The last decisions of this proxy per key, at most `max` keys (the oldest are forgotten). */
export class OwnDecisions {
  readonly #last = new Map<string, OwnDecision>();

  /** Creates an empty record that keeps at most `max` keys. */
  constructor(private readonly max = 65_536) {}

  /** Keys remembered (for tests). */
  get size(): number {
    return this.#last.size;
  }

  /** Records a decision this proxy's own ballot won at a majority. */
  remember(key: string, decision: OwnDecision): void {
    this.#last.delete(key); // re-inserted last: the Map's order is the age
    this.#last.set(key, decision);
    if (this.#last.size > this.max) this.#last.delete(this.#last.keys().next().value!);
  }

  /** The decision of `key`, if it was made under this epoch and replica set. */
  recall(key: string, epoch: number, owners: string): OwnDecision | undefined {
    const d = this.#last.get(key);
    return d !== undefined && d.epoch === epoch && d.owners === owners ? d : undefined;
  }

  /** Forgets `key` unless its recorded decision is `ver` (a read found another version). */
  forgetUnless(key: string, ver: Version | undefined): void {
    if (this.#last.get(key)?.ver !== ver) this.#last.delete(key);
  }

  /** Forgets `key` (its next write takes the full round). */
  forget(key: string): void {
    this.#last.delete(key);
  }
}
