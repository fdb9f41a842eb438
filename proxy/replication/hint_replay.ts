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
 * the same way.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
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
}

/** Offers `node` its hints; the refused ones are brought level as the module says. */
export async function replayHints(
  node: NodeRef,
  epoch: number,
  deps: ReplayDeps,
): Promise<ReplayReport> {
  const report: ReplayReport = { accepted: 0, ingested: 0, current: 0, retry: 0 };
  // Kept for the next replay, not this one: taken again now, they would be offered for ever.
  const again: WireEntry[] = [];
  try {
    for (;;) {
      const batch = deps.hints.take(node.id, REPLAY_CHUNK);
      if (batch.length === 0) return report;
      for (const e of batch) deps.forget(e.k);
      let votes: WireVote[];
      try {
        votes = await deps.accept(node, epoch, batch);
      } catch (err) {
        if (!(err instanceof RingkvError)) throw err;
        again.push(...batch);
        return report;
      }
      const refused = batch.filter((_, i) => !votes[i]!.ok);
      report.accepted += batch.length - refused.length;
      for (const e of refused) {
        if (!await levelKey(node, epoch, e, deps, report)) again.push(e);
      }
    }
  } finally {
    for (const e of again) deps.hints.add(node.id, e);
  }
}

/**
 * Brings `node` level on `hint.k`: ingest of a decided newest entry, after a settle if need be.
 * False when that could not be found out (the hint is to be offered again).
 */
async function levelKey(
  node: NodeRef,
  epoch: number,
  hint: WireEntry,
  deps: ReplayDeps,
  report: ReplayReport,
): Promise<boolean> {
  const owners = deps.ownersOf(hint.h);
  if (!owners.some((o) => o.id === node.id)) return true; // no longer a replica of the key
  try {
    for (let pass = 0; pass < 2; pass++) {
      const found = await newestOf(owners, node, epoch, hint.k, deps);
      if (found === "unknown") break;
      if (found === "current") {
        report.current++;
        return true;
      }
      if (found !== undefined) {
        deps.forget(hint.k);
        await deps.ingest(node, epoch, [found]);
        report.ingested++;
        return true;
      }
      // No entry held by a quorum: a round decides the newest, then the node gets it.
      if (pass === 0) await deps.settle(hint, epoch);
    }
  } catch (err) {
    // A stale epoch too: the hint goes out again under the next map (or is dropped there).
    if (!(err instanceof RingkvError)) throw err;
  }
  report.retry++;
  return false;
}

/**
 * The newest entry of `key` over `owners` when a write quorum holds it and `node` does not;
 * "current" when `node` holds it; undefined when no quorum holds one; "unknown" when fewer than
 * a quorum answered.
 */
async function newestOf(
  owners: readonly NodeRef[],
  node: NodeRef,
  epoch: number,
  key: string,
  deps: ReplayDeps,
): Promise<WireEntry | "current" | "unknown" | undefined> {
  const read = await Promise.all(
    owners.map((o) =>
      deps.read(o, epoch, [key]).then((e) => ({ id: o.id, entry: e[0] ?? null }), (err) => {
        if (!(err instanceof RingkvError)) throw err;
        return null;
      })
    ),
  );
  const answered = read.filter((a) => a !== null);
  const need = quorumOf(owners.length);
  if (answered.length < need || !answered.some((a) => a.id === node.id)) return "unknown";
  const best = newest(answered.map((a) => a.entry));
  if (best === null) return "current"; // no owner holds the key: nothing to bring
  const holders = answered.filter((a) => a.entry?.ver === best.ver);
  if (holders.some((a) => a.id === node.id)) return "current";
  return holders.length >= need ? best : undefined;
}
