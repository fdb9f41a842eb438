/**
 * Replays a node's hints (proxy/replication/hints.ts) through `/internal/accept`, and brings the
 * node level on the keys whose replay it refused. A refusal names a promise: the node holds a
 * newer version (nothing to do), or promised above the entry, e.g. its restart floor (a node
 * refuses every ballot up to the watermark it restored, node/paxos/acceptor.ts), which no
 * replay gets past. Dropping those left a restarted node behind on every key deleted or
 * written in one round trip right after its restart (review: 16,010 keys live on one replica,
 * tombstones on the other two). For each refused key the owners are read: when a write quorum
 * holds the newest entry it is decided (every later round builds on it) and goes into the node
 * by versioned ingest, which ignores promises (as replica_sync.ts installs decided entries);
 * otherwise a full round (`settle`) decides the newest under a new ballot, and the node gets it
 * the same way. The refused keys of one accept call are read with one call per owner and go into
 * the node with one ingest call (key by key, the 16,000 hints a restarted node refused cost 48,000
 * reads and 16,000 ingests in a row); only a settle (no quorum holds the newest) is per key.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import { callValueBytes, DEFAULT_LIMITS } from "../../shared/limits.ts";
import type { WireEntry } from "../../shared/wire.ts";
import type { NodeRef } from "../nodes/node_client.ts";
import type { WireVote } from "../nodes/paxos_client.ts";
import type { Hints } from "./hints.ts";
import { newest } from "./decide.ts";
import { quorumOf } from "./quorum.ts";

/** Hints per accept call. */
export const REPLAY_CHUNK = 200;

/** What {@link replayHints} needs. */
export interface ReplayDeps {
  hints: Hints;
  /**
   * Characters of values per accept or ingest call (default `callValueBytes` of the default
   * limits): a node refuses a call body past its batch cap, and a chunk of 200 hints of 1 MiB
   * values would be refused at every replay (review).
   */
  valueBudget?: number;
  accept(node: NodeRef, epoch: number, entries: WireEntry[]): Promise<WireVote[]>;
  read(node: NodeRef, epoch: number, keys: string[]): Promise<(WireEntry | null)[]>;
  /** Versioned ingest (`/internal/ingest`): applies entries newer than the node's. */
  ingest(node: NodeRef, epoch: number, entries: WireEntry[]): Promise<unknown>;
  /** A full round on `entry.k` over its replicas (caspaxos.ts `Replicated.settle`). */
  settle(entry: WireEntry, epoch: number): Promise<void>;
  /** The replicas of a key's ring point (the map's owners). */
  ownersOf(point: number): NodeRef[];
  /** Told each key a replay touches (the proxy's fast-write record). */
  forget(key: string): void;
}

/** What one {@link replayHints} did. */
export interface ReplayReport {
  accepted: number;
  /** Refused keys the node was brought level on by ingest (after a settle or not). */
  ingested: number;
  /** Refused keys where the node held the newest entry already. */
  current: number;
  /** Refused keys whose owners could not be read: hinted again. */
  retry: number;
  /** Hints whose accept call failed: hinted again. */
  unsent: number;
  /** Hints of keys the node no longer owns (a map change moved them): dropped, not sent. */
  notOwned: number;
}

/** Offers `node` its hints; the refused ones are brought level as the module says. */
export async function replayHints(
  node: NodeRef,
  epoch: number,
  deps: ReplayDeps,
): Promise<ReplayReport> {
  const report: ReplayReport = {
    accepted: 0,
    ingested: 0,
    current: 0,
    retry: 0,
    unsent: 0,
    notOwned: 0,
  };
  // Kept for the next replay, not this one: taken again now, they would be offered for ever.
  const again: WireEntry[] = [];
  try {
    for (;;) {
      const taken = deps.hints.take(node.id, REPLAY_CHUNK);
      if (taken.length === 0) return report;
      // A key the node no longer owns: its range moved with a copy, and an accept there would
      // leave a copy outside the key's replicas, which the purge of old tombstones may not meet
      // (review: such a stray, deleted and purged elsewhere, came back when the range returned).
      const owned = taken.filter((h) => deps.ownersOf(h.h).some((o) => o.id === node.id));
      report.notOwned += taken.length - owned.length;
      const calls = byValueChars(owned, budgetOf(deps));
      for (let c = 0; c < calls.length; c++) {
        const batch = calls[c]!;
        for (const e of batch) deps.forget(e.k);
        let votes: WireVote[];
        try {
          votes = await deps.accept(node, epoch, batch);
        } catch (err) {
          if (!(err instanceof RingkvError)) throw err;
          const rest = calls.slice(c).flat();
          report.unsent += rest.length;
          again.push(...rest);
          return report;
        }
        const refused = batch.filter((_, i) => !votes[i]!.ok);
        report.accepted += batch.length - refused.length;
        again.push(...await levelKeys(node, epoch, refused, deps, report));
      }
    }
  } finally {
    for (const e of again) deps.hints.add(node.id, e);
  }
}

/** A refused hint and the owners of its key. */
interface Refused {
  hint: WireEntry;
  owners: readonly NodeRef[];
}

/** An owner's answer for one key. */
interface Answer {
  id: string;
  entry: WireEntry | null;
}

/**
 * What the owners hold of a key: the newest entry when a write quorum holds it and the node does
 * not; "current" when the node holds it; undefined when no quorum holds one; "unknown" when it
 * could not be found out.
 */
type Outcome = WireEntry | "current" | "unknown" | undefined;

/**
 * Brings `node` level on the keys of `refused`: ingest of a decided newest entry, after a settle
 * if need be. Returns the hints for which that could not be found out (to be offered again).
 */
async function levelKeys(
  node: NodeRef,
  epoch: number,
  refused: readonly WireEntry[],
  deps: ReplayDeps,
  report: ReplayReport,
): Promise<WireEntry[]> {
  const keys = refused.flatMap((hint) => {
    const owners = deps.ownersOf(hint.h);
    return owners.some((o) => o.id === node.id) ? [{ hint, owners }] : []; // else not a replica
  });
  const answers = await readAll(keys, epoch, deps);
  const outcomes = keys.map((r, i) => newestOf(r.owners, node, answers[i]!));
  for (let i = 0; i < keys.length; i++) {
    if (outcomes[i] === undefined) outcomes[i] = await settled(keys[i]!, node, epoch, deps);
  }
  const again: WireEntry[] = [];
  const found: WireEntry[] = [];
  keys.forEach((r, i) => {
    const outcome = outcomes[i];
    if (outcome === "current") report.current++;
    else if (outcome !== "unknown" && outcome !== undefined) found.push(outcome);
    else {
      report.retry++;
      again.push(r.hint);
    }
  });
  if (found.length === 0) return again;
  for (const e of found) deps.forget(e.k);
  for (const call of byValueChars(found, budgetOf(deps))) {
    try {
      await deps.ingest(node, epoch, call);
      report.ingested += call.length;
    } catch (err) {
      // A stale epoch too: the hints go out again under the next map (or are dropped there).
      if (!(err instanceof RingkvError)) throw err;
      report.retry += call.length;
      const failed = new Set(call.map((e) => e.k));
      again.push(...keys.filter((r) => failed.has(r.hint.k)).map((r) => r.hint));
    }
  }
  return again;
}

function budgetOf(deps: ReplayDeps): number {
  return deps.valueBudget ?? callValueBytes(DEFAULT_LIMITS);
}

/** `entries` cut into calls of at most `budget` characters of keys and values (one at least). */
export function byValueChars(entries: readonly WireEntry[], budget: number): WireEntry[][] {
  const calls: WireEntry[][] = [];
  let call: WireEntry[] = [];
  let chars = 0;
  for (const e of entries) {
    const size = e.k.length + (e.v?.length ?? 0);
    if (call.length > 0 && chars + size > budget) {
      calls.push(call);
      call = [];
      chars = 0;
    }
    call.push(e);
    chars += size;
  }
  if (call.length > 0) calls.push(call);
  return calls;
}

/**
 * No entry held by a quorum: a full round decides the newest, and the key is read again.
 * "unknown" when the round failed.
 */
async function settled(
  r: Refused,
  node: NodeRef,
  epoch: number,
  deps: ReplayDeps,
): Promise<Outcome> {
  try {
    await deps.settle(r.hint, epoch);
  } catch (err) {
    if (!(err instanceof RingkvError)) throw err;
    return "unknown";
  }
  const [answers] = await readAll([r], epoch, deps);
  return newestOf(r.owners, node, answers!);
}

/** Each key's entry on each of its owners that answered: one read call per owner, for all its keys. */
async function readAll(
  keys: readonly Refused[],
  epoch: number,
  deps: ReplayDeps,
): Promise<Answer[][]> {
  const byOwner = new Map<string, { owner: NodeRef; at: number[] }>();
  keys.forEach((r, i) => {
    for (const owner of r.owners) {
      const group = byOwner.get(owner.id) ?? { owner, at: [] };
      byOwner.set(owner.id, group);
      group.at.push(i);
    }
  });
  const answers: Answer[][] = keys.map(() => []);
  await Promise.all([...byOwner.values()].map(async ({ owner, at }) => {
    let entries: (WireEntry | null)[];
    try {
      entries = await deps.read(owner, epoch, at.map((i) => keys[i]!.hint.k));
    } catch (err) {
      if (!(err instanceof RingkvError)) throw err;
      return; // this owner did not answer for any of them
    }
    at.forEach((i, j) => answers[i]!.push({ id: owner.id, entry: entries[j] ?? null }));
  }));
  return answers;
}

/** The {@link Outcome} of a key from its owners' answers; "unknown" when fewer than a quorum answered. */
function newestOf(owners: readonly NodeRef[], node: NodeRef, answered: readonly Answer[]): Outcome {
  const need = quorumOf(owners.length);
  if (answered.length < need || !answered.some((a) => a.id === node.id)) return "unknown";
  const best = newest(answered.map((a) => a.entry));
  if (best === null) return "current"; // no owner holds the key: nothing to bring
  const holders = answered.filter((a) => a.entry?.ver === best.ver);
  if (holders.some((a) => a.id === node.id)) return "current";
  return holders.length >= need ? best : undefined;
}
