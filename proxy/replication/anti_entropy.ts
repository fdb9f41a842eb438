/**
 * Anti-entropy: a sweep compares the replicas of every range of the ring by digest
 * (`POST /internal/digest`, node/http/digest_routes.ts) and syncs the buckets whose replicas
 * differ (proxy/replication/replica_sync.ts), so a node that missed writes catches up even when their
 * hints are gone (proxy restart, hint bound) and nobody reads the keys. Ranges are grouped
 * by replica set and cut into buckets of a few ranges; a sweep syncs at most
 * `maxSyncs` buckets, skips replicas the failure detector knows are down, and does
 * nothing while a rebalancing runs (that copy is the rebalancer's job). Syncs are paced
 * (`pauseMs` between two): under client writes most buckets differ for a moment (writes in
 * flight), and 32 syncs back to back, each a scan of every replica, cut the cluster's PUTs
 * to a tenth for seconds every sweep (docs/performance-history.md, "PUT stalls").
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import { type Range, type Ring, RING_SIZE } from "../../shared/ring.ts";
import type { BucketDigest, NodeAdmin } from "../nodes/node_admin.ts";
import type { NodeRef } from "../nodes/node_client.ts";
import { quorumOf } from "./quorum.ts";
import { type SyncDeps, syncRanges } from "./replica_sync.ts";
import type { Topology } from "../cluster/topology.ts";
import { abortableSleep } from "../../shared/abortable_sleep.ts";

/** What an {@link AntiEntropy} needs. */
export interface AntiEntropyDeps {
  admin: NodeAdmin;
  accept?: SyncDeps["accept"];
  /** Told each key whose entries a sync installs (replica_sync.ts `forget`). */
  forget?: SyncDeps["forget"];
  /** A full round for an undecided entry a replica refused (replica_sync.ts `settle`). */
  settle?: SyncDeps["settle"];
  /** Whether to count on a node (the failure detector); all up when absent. */
  isUp?: (id: string) => boolean;
  /** Ranges per bucket (default 32). */
  bucketRanges?: number;
  /** Buckets per digest call (default {@link DIGEST_BUCKETS}). */
  digestBuckets?: number;
  /** Timeout of one digest call, in ms (default {@link DIGEST_TIMEOUT_MS}, or the calls' if longer). */
  digestTimeoutMs?: number;
  /** Most buckets synced per sweep (default 64). */
  maxSyncs?: number;
  /** Pause between two syncs of a sweep, in ms (default {@link SYNC_PAUSE_MS}). */
  pauseMs?: number;
  /** Waits `ms` (tests pass a recording one). */
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
  log?: (obj: Record<string, unknown>) => void;
}

/** What the last sweep found. */
export interface SweepReport {
  at: number;
  epoch: number;
  buckets: number;
  /** Buckets whose answering replicas differed. */
  differing: number;
  /** (replica, key) pairs that lacked the newest entry, and how many got it. */
  behind: number;
  repaired: number;
  /** Keys in buckets where some replica did not answer (their replica count is unknown). */
  unchecked: number;
  /**
   * Buckets not compared at all: fewer than two of their replicas' digests came back (down,
   * or the digest failed). Their keys may differ; nothing here says they do not.
   */
  uncompared: number;
  /** Nodes whose digest calls failed in this sweep, with the first error. */
  digestFailed: Record<string, string>;
}

/**
 * Buckets per digest call. A node's digest costs about its entries (tombstones included), and
 * sweeps ask for all of a replica set's buckets: in one call that was every key the node ever
 * held (review: 0.9 to 2.4 s at idle with 240,000 entries, past the 2 s call timeout). In calls
 * of 4 of the ~32 buckets, each call's work is an eighth of that.
 */
export const DIGEST_BUCKETS = 4;

/**
 * The timeout of one digest call: background work, so a slow answer only delays the sweep,
 * while a client request's timeout (`--timeout-ms`, 2 s) would turn a loaded node's slow
 * digest into "not compared". 30 s is the default sweep interval.
 */
export const DIGEST_TIMEOUT_MS = 30_000;

/** The default pause between two syncs: 64 syncs then spread over 16 s of a 30 s sweep interval. */
export const SYNC_PAUSE_MS = 250;

/**
 * The pause between two syncs for sweeps every `sweepMs`: {@link SYNC_PAUSE_MS}, or less when
 * 64 pauses would take more than half the interval (tests sweep every 2 s).
 */
export function syncPauseMs(sweepMs: number): number {
  return Math.min(SYNC_PAUSE_MS, Math.floor(sweepMs / 128));
}

/** The longest arc in a bucket's ranges: 1/1024 of the ring. */
const MAX_ARC = RING_SIZE / 1024;

/** A replica set and the ranges it holds, cut into buckets. */
interface Group {
  owners: NodeRef[];
  buckets: Range[][];
}

/** Runs anti-entropy sweeps, one at a time. */
export class AntiEntropy {
  #running: Promise<SweepReport | null> | null = null;
  /** Syncs run by the sweep under way (the first one needs no pause). */
  #synced = 0;
  /** The last complete sweep, or null before the first. */
  last: SweepReport | null = null;
  readonly #stopped = new AbortController();

  /** Creates the sweeper; nothing runs until {@link sweep}. */
  constructor(private readonly deps: AntiEntropyDeps) {}

  /** One sweep over `topo` (joins a running one); null when skipped or stopped. */
  sweep(topo: Topology): Promise<SweepReport | null> {
    if (this.#stopped.signal.aborted) return Promise.resolve(null);
    this.#running ??= this.#sweep(topo).finally(() => (this.#running = null));
    return this.#running;
  }

  /**
   * Stops sweeping: a running sweep ends at its next pause (no sync starts after it) and later
   * ones are skipped. Resolves once the running sweep, if any, has ended.
   */
  async stop(): Promise<void> {
    this.#stopped.abort();
    await this.#running?.catch(() => {});
  }

  async #sweep(topo: Topology): Promise<SweepReport | null> {
    const { map } = topo;
    if (map.replicas <= 1 || map.rebalancing !== null) return null;
    const report: SweepReport = {
      at: (this.deps.now ?? Date.now)(),
      epoch: map.epoch,
      buckets: 0,
      differing: 0,
      behind: 0,
      repaired: 0,
      unchecked: 0,
      uncompared: 0,
      digestFailed: {},
    };
    let syncs = this.deps.maxSyncs ?? 64;
    this.#synced = 0;
    for (const group of groupsOf(topo, this.deps.bucketRanges ?? 32)) {
      if (this.#stopped.signal.aborted) return null;
      syncs = await this.#sweepGroup(group, map.epoch, report, syncs);
    }
    if (this.#stopped.signal.aborted) return null;
    if (report.differing > 0 || report.unchecked > 0 || report.uncompared > 0) {
      const warn = report.uncompared > 0 ? { level: "warn" } : {};
      this.deps.log?.({ msg: "anti-entropy", ...warn, ...report });
    }
    this.last = report;
    return report;
  }

  async #sweepGroup(g: Group, epoch: number, report: SweepReport, syncs: number): Promise<number> {
    const digests = await Promise.all(g.owners.map((n) => this.#digestsOf(n, g, epoch, report)));
    report.buckets += g.buckets.length;
    for (let b = 0; b < g.buckets.length; b++) {
      const ready = g.owners.filter((_, i) => digests[i]![b] !== null);
      const mine = digests.flatMap((d) => d[b] ?? []);
      if (mine.length < g.owners.length) {
        report.unchecked += Math.max(0, ...mine.map((d) => d.count));
      }
      // One digest or none compares nothing: never counted as agreement (review: with every
      // digest timing out, a sweep reported 0 differing while all buckets differed).
      if (mine.length < 2) {
        report.uncompared++;
        continue;
      }
      if (mine.every((d) => d.hash === mine[0]!.hash)) continue;
      report.differing++;
      if (syncs <= 0) continue;
      syncs--;
      await this.#pace();
      if (this.#stopped.signal.aborted) return 0;
      const r = await syncRanges(ready, g.buckets[b]!, quorumOf(g.owners.length), {
        ...this.deps,
        owners: g.owners,
        epoch,
      });
      report.behind += r.behind;
      report.repaired += r.repaired;
    }
    return syncs;
  }

  /**
   * Node `n`'s digest of each bucket of `g` (null: not known), asked {@link DIGEST_BUCKETS} at a
   * time so one call's work stays bounded however many keys the node holds. A failed call is
   * recorded in the report and logged once per sweep per node.
   */
  async #digestsOf(
    n: NodeRef,
    g: Group,
    epoch: number,
    report: SweepReport,
  ): Promise<(BucketDigest | null)[]> {
    const out: (BucketDigest | null)[] = g.buckets.map(() => null);
    if (!(this.deps.isUp ?? (() => true))(n.id)) return out;
    // A node that failed a digest call is not asked again this sweep: one that hangs would cost
    // a digest timeout per call, 8 calls a group, group after group (diff review).
    if (report.digestFailed[n.id] !== undefined) return out;
    const per = this.deps.digestBuckets ?? DIGEST_BUCKETS;
    const timeoutMs = this.deps.digestTimeoutMs ??
      Math.max(DIGEST_TIMEOUT_MS, this.deps.admin.timeoutMs);
    for (let i = 0; i < g.buckets.length; i += per) {
      if (this.#stopped.signal.aborted) return out;
      const part = g.buckets.slice(i, i + per);
      try {
        const got = await this.deps.admin.digest(n.url, part, epoch, n.incarnation, timeoutMs);
        got.forEach((d, j) => (out[i + j] = d));
      } catch (err) {
        if (!(err instanceof RingkvError) || err.code === "stale_epoch") throw err;
        // The node's first failure of the sweep: it is asked nothing more until the next one.
        report.digestFailed[n.id] = err.message;
        this.deps.log?.({
          level: "warn",
          msg: "anti-entropy digest failed: its buckets are not compared this sweep",
          node: n.id,
          error: err.message,
        });
        return out;
      }
    }
    return out;
  }

  /** Waits between two syncs of a sweep, so its scans never come in one burst. */
  async #pace(): Promise<void> {
    if (this.#synced++ === 0) return;
    const ms = this.deps.pauseMs ?? SYNC_PAUSE_MS;
    if (ms <= 0) return;
    await (this.deps.sleep ?? ((t) => abortableSleep(t, this.#stopped.signal)))(ms);
  }
}

/** The ring's ranges grouped by replica set (sorted ids), each cut into buckets. */
export function groupsOf(topo: Topology, bucketRanges: number): Group[] {
  const byOwners = new Map<string, { ids: string[]; ranges: Range[] }>();
  for (const { start, end, owners } of segments(topo.ring, topo.map.replicas)) {
    const ids = [...owners].sort();
    const key = ids.join(",");
    if (!byOwners.has(key)) byOwners.set(key, { ids, ranges: [] });
    const ranges = byOwners.get(key)!.ranges;
    const last = ranges.at(-1);
    if (last !== undefined && last.end === start) last.end = end;
    else ranges.push({ start, end });
  }
  const groups: Group[] = [];
  for (const { ids, ranges } of byOwners.values()) {
    // The map's incarnation: a node back on another data directory refuses to answer.
    const owners = ids.map((id) => nodeRef(topo, id));
    if (owners.some((o) => o.url === "")) continue;
    const pieces = ranges.flatMap(split);
    const buckets: Range[][] = [];
    for (let i = 0; i < pieces.length; i += bucketRanges) {
      buckets.push(pieces.slice(i, i + bucketRanges));
    }
    groups.push({ owners, buckets });
  }
  return groups;
}

/** The node `id` of `topo` as a call's target, with the incarnation its map records. */
export function nodeRef(topo: Topology, id: string): NodeRef {
  const incarnation = topo.incarnationOf?.(id);
  return { id, url: topo.nodeUrl(id) ?? "", ...(incarnation === undefined ? {} : { incarnation }) };
}

/** Arcs longer than {@link MAX_ARC} cut into pieces (so a bucket never spans the ring). */
function split(range: Range): Range[] {
  const out: Range[] = [];
  for (let start = range.start; start < range.end; start += MAX_ARC) {
    out.push({ start, end: Math.min(range.end, start + MAX_ARC) });
  }
  return out;
}

/** The ring cut where its owners change: [start, end) with the owners of `start`. */
export function segments(
  ring: Ring,
  n: number,
): { start: number; end: number; owners: string[] }[] {
  const starts = [0, ...ring.points().map((p) => p.point + 1)]
    .filter((s) => s < RING_SIZE)
    .sort((a, b) => a - b)
    .filter((s, i, all) => i === 0 || s !== all[i - 1]);
  return starts.map((start, i) => ({
    start,
    end: starts[i + 1] ?? RING_SIZE,
    owners: ring.ownersOf(start, n),
  }));
}
