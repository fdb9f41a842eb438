/**
 * Brings the replicas of some ranges level with each other (anti-entropy, and the
 * surviving owners of a node removed for good): every replica that answers is scanned,
 * the newest entry of each key (tombstones included) is found, and the replicas that lack
 * it get it. An entry already held by a write quorum of the range's replica set is decided
 * (any later CASPaxos round builds on it), so it is installed by versioned ingest, which
 * ignores promises (a restarted node's promise floor refuses older accepts). An entry
 * held by fewer may be an unfinished proposal: it goes through `/internal/accept`, which
 * respects promises, like a read's write-back (docs/replication.md).
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import type { Range } from "../../shared/ring.ts";
import type { WireEntry } from "../../shared/wire.ts";
import type { NodeAdmin } from "../nodes/node_admin.ts";
import type { NodeRef } from "../nodes/node_client.ts";
import type { WireVote } from "../nodes/paxos_client.ts";

/** Entries per ingest or accept call. */
const CHUNK = 500;

/** What {@link syncRanges} needs. */
export interface SyncDeps {
  admin: NodeAdmin;
  /** `/internal/accept` (proxy/nodes/paxos_client.ts); without it undecided entries are left alone. */
  accept?: (node: NodeRef, epoch: number, entries: WireEntry[]) => Promise<WireVote[]>;
  /**
   * A full CASPaxos round on the entry's key over `replicas` (proxy/replication/caspaxos.ts
   * `settle`), for an undecided entry whose accept a replica refused: a promise left by a round
   * that wrote nothing (a failed If-Match, a delete of a missing key) blocks that accept until
   * the key's next write, so only a round with a newer ballot brings the replicas level.
   */
  settle?: (replicas: readonly NodeRef[], entry: WireEntry, epoch: number) => Promise<void>;
  /** Told each key whose entry is installed on a replica (the proxy's fast-write record). */
  forget?: (key: string) => void;
  /** The whole replica set of the ranges (a settle's quorum is counted on it); none: no settle. */
  owners?: readonly NodeRef[];
  epoch: number;
}

/** What one {@link syncRanges} did. */
export interface SyncResult {
  /** Replicas that could not be scanned. */
  unreachable: string[];
  /** (replica, key) pairs that lacked the newest entry. */
  behind: number;
  /** Of those, the ones that got it. */
  repaired: number;
}

/** Scans `ranges` on every replica and gives each one the newest entry of every key. */
export async function syncRanges(
  replicas: readonly NodeRef[],
  ranges: readonly Range[],
  quorum: number,
  deps: SyncDeps,
): Promise<SyncResult> {
  const scans = await Promise.all(replicas.map((n) => scanAll(n, ranges, deps)));
  const answered = replicas.filter((_, i) => scans[i] !== null);
  const held = scans.filter((s) => s !== null) as Map<string, WireEntry>[];
  const result: SyncResult = {
    unreachable: replicas.filter((_, i) => scans[i] === null).map((n) => n.id),
    behind: 0,
    repaired: 0,
  };
  const keys = new Set(held.flatMap((m) => [...m.keys()]));
  const missing = answered.map(() => ({ decided: [] as WireEntry[], open: [] as WireEntry[] }));
  for (const key of keys) {
    let best: WireEntry | undefined;
    for (const m of held) {
      const e = m.get(key);
      if (e !== undefined && (best === undefined || e.ver > best.ver)) best = e;
    }
    const holders = held.filter((m) => m.get(key)?.ver === best!.ver).length;
    held.forEach((m, i) => {
      if (m.get(key)?.ver === best!.ver) return;
      result.behind++;
      (holders >= quorum ? missing[i]!.decided : missing[i]!.open).push(best!);
    });
  }
  const refused = new Map<string, WireEntry>();
  await Promise.all(answered.map(async (node, i) => {
    result.repaired += await install(node, missing[i]!.decided, missing[i]!.open, deps, refused);
  }));
  const { owners, settle } = deps;
  if (owners === undefined || settle === undefined) return result;
  for (const entry of refused.values()) {
    await settle(owners, entry, deps.epoch).catch((err) => {
      // The next sweep tries again.
      if (!(err instanceof RingkvError) || err.code === "stale_epoch") throw err;
    });
  }
  return result;
}

async function scanAll(
  node: NodeRef,
  ranges: readonly Range[],
  deps: SyncDeps,
): Promise<Map<string, WireEntry> | null> {
  const entries = new Map<string, WireEntry>();
  try {
    for await (const e of deps.admin.scanEntries(node.url, ranges, deps.epoch, node.incarnation)) {
      entries.set(e.k, e);
    }
  } catch (err) {
    if (!(err instanceof RingkvError) || err.code === "stale_epoch") throw err;
    return null;
  }
  return entries;
}

/** Versioned ingest of `entries` into `node`, {@link CHUNK} per call; how many it took or had. */
export async function ingestChunked(
  admin: NodeAdmin,
  node: NodeRef,
  entries: readonly WireEntry[],
  epoch: number,
): Promise<number> {
  let took = 0;
  for (let i = 0; i < entries.length; i += CHUNK) {
    const chunk = entries.slice(i, i + CHUNK).map((e) => JSON.stringify(e));
    const r = await admin.ingest(node.url, chunk, epoch);
    took += r.applied + r.skipped;
  }
  return took;
}

/**
 * Installs the entries; how many the node took. Failures leave them for the next sweep;
 * undecided entries the node refused go into `refused`.
 */
async function install(
  node: NodeRef,
  decided: WireEntry[],
  open: WireEntry[],
  deps: SyncDeps,
  refused: Map<string, WireEntry>,
): Promise<number> {
  let took = 0;
  for (const e of decided) deps.forget?.(e.k);
  for (const e of open) deps.forget?.(e.k);
  try {
    took += await ingestChunked(deps.admin, node, decided, deps.epoch);
    if (deps.accept === undefined) return took;
    for (let i = 0; i < open.length; i += CHUNK) {
      const chunk = open.slice(i, i + CHUNK);
      const votes = await deps.accept(node, deps.epoch, chunk);
      took += votes.filter((v) => v.ok).length;
      votes.forEach((v, j) => v.ok || refused.set(chunk[j]!.k, chunk[j]!));
    }
  } catch (err) {
    if (!(err instanceof RingkvError) || err.code === "stale_epoch") throw err;
  }
  return took;
}
