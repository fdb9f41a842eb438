/**
 * The {@link NodeEngine} over a {@link Store} and a {@link Wal}: every change is applied
 * in memory, written as one log line and answered once that line is fsync'd. Reads of a
 * key whose last change is not durable yet wait for it. Snapshots run in the background
 * when the log grows past a size, and on close (compactor.ts); room for the next one is kept
 * on the disk (snapshot_room.ts).
 *
 * @module
 */
import { ChangeLog, type StagedChange } from "./change_log.ts";
import { newChangeLogName } from "./change_recovery.ts";
import { RingkvError } from "../../shared/errors.ts";
import { checkKey } from "../../shared/keys.ts";
import type { Limits } from "../../shared/limits.ts";
import type { Range } from "../../shared/ring.ts";
import type { ClusterMap, WireEntry } from "../../shared/wire.ts";
import type { Disk } from "../storage/disk.ts";
import type { GcHint } from "./gc_hint.ts";
import type {
  EngineStats,
  Entry,
  Fence,
  ListOptions,
  NodeEngine,
  WriteOp,
  WriteOutcome,
} from "./engine.ts";
import { entryToJson } from "./entry_json.ts";
import { encodeJsonLine } from "../storage/log_format.ts";
import type { Stored } from "./packed.ts";
import { FILES, type LoadedSnapshot, replayLog } from "../storage/recovery.ts";
import type { SpaceReserve } from "../storage/reserve.ts";
import { type FlatValue, Store } from "./store.ts";
import type { Wal } from "../storage/wal.ts";
import { WriteGuard, type WriteHealth } from "./write_guard.ts";
import { DEFAULT_STALL_AFTER_MS, stalledWrites } from "./disk_stall.ts";
import { DiskWaits } from "./disk_waits.ts";
import { JsonFiles } from "./json_files.ts";
import { Compactor } from "./compactor.ts";
import { ingestBytes, ingestGrowth, writeBytes, writeGrowth } from "./size_estimates.ts";
import { SnapshotRoom } from "./snapshot_room.ts";
import { SnapshotWriter } from "./snapshot_writer.ts";
import { entryFromWire, flatValueBytes } from "./wire_input.ts";

/** Content type of imported values. */
export const IMPORT_CONTENT_TYPE = "text/plain; charset=utf-8";

/** What the engine is built from (see `openEngine`). */
export interface EngineParts {
  id: string;
  /** The data directory's incarnation and when it was written (node/storage/recovery.ts). */
  incarnation: string;
  createdAt: number;
  disk: Disk;
  store: Store;
  wal: Wal;
  hashKey: (key: string) => Promise<number>;
  limits: Limits;
  snapshotEveryBytes: number;
  /** Space held for the snapshot that compacts a log which filled the disk (storage/reserve.ts). */
  reserve: SpaceReserve;
  /** The reserve's smallest size; 0: no reserve (reserveFor). */
  reserveMinBytes: number;
  /** The snapshot the start loaded (its size, 0 for none, and generation). */
  snapshot: LoadedSnapshot;
  /** Starts a GC after bulk writes (optional: tests leave it out). */
  gcHint?: GcHint;
  /** First delay before a read-only node tries to take writes again (default 250 ms). */
  firstRetryMs?: number;
  /** Where read-only transitions are told (default: stderr). */
  log?: (message: string) => void;
  /** How long a log write may wait on the disk before health says `stalled` (default 5 s). */
  stallAfterMs?: number;
  /** The change log the start rebuilt (node/engine/change_recovery.ts; default: a new one). */
  changes?: ChangeLog;
}

/** A durable node engine; build it with `openEngine`. */
export class DurableEngine implements NodeEngine {
  readonly id: string;
  readonly incarnation: string;
  readonly createdAt: number;
  /** Keys whose last change is not durable yet, with its log sequence number. */
  readonly #pending = new Map<string, number>();
  #lastDrop = 0;
  readonly #snapshotWriter: SnapshotWriter;
  readonly #room: SnapshotRoom;
  readonly #compactor: Compactor;
  readonly #files: JsonFiles;
  #closed = false;
  /** Why memory holds refused writes: set by a failed log round, cleared once the repair reloads. */
  #refusedInMemory: string | null = null;
  readonly #guard: WriteGuard;
  /** Writes of cluster.json and acceptor.json under way, for the stall measure. */
  readonly diskWaits = new DiskWaits();
  /** Durable changes for watchers (node/engine/change_log.ts). */
  readonly changes: ChangeLog;

  constructor(readonly parts: EngineParts) {
    this.changes = parts.changes ?? new ChangeLog(newChangeLogName());
    this.id = parts.id;
    this.incarnation = parts.incarnation;
    this.createdAt = parts.createdAt;
    parts.wal.onRound = (lastSeq) => this.#onRound(lastSeq);
    this.#guard = new WriteGuard({
      repair: (rollback) => this.#repair(rollback),
      firstRetryMs: parts.firstRetryMs,
      log: parts.log,
    });
    this.#files = new JsonFiles(parts.disk, this.diskWaits, this.#guard);
    this.#snapshotWriter = new SnapshotWriter(parts, parts.snapshot, this.changes);
    this.#room = new SnapshotRoom(parts, this.#snapshotWriter);
    this.#compactor = new Compactor({
      wal: parts.wal,
      reserve: parts.reserve,
      writer: this.#snapshotWriter,
      room: this.#room,
      guard: this.#guard,
      closed: () => this.#closed,
      assertWritable: (action) => this.#assertWritable(action),
    });
    parts.wal.onFailure = (err) => {
      this.#compactor.logFailed(err);
      this.#refusedInMemory = `append to ${FILES.wal}: ${err.message}`;
      this.#guard.failed(`append to ${FILES.wal}`, err, true);
    };
  }

  /** Makes a start that cannot hold its reserve read-only; the repair compacts to make room. */
  startReserve(): Promise<void> {
    return this.#compactor.startReserve();
  }

  now(): number {
    return this.parts.store.now();
  }

  writeHealth(): WriteHealth {
    const health = this.#guard.health;
    if (health.state !== "writable") return health;
    const stallAfterMs = this.parts.stallAfterMs ?? DEFAULT_STALL_AFTER_MS;
    return stalledWrites(this.#oldestWait(), stallAfterMs) ?? health;
  }

  /** The write waiting longest: on the log, or a save of acceptor.json, cluster.json or map_vote.json. */
  #oldestWait() {
    const log = this.parts.wal.busy();
    const other = this.diskWaits.oldest();
    return log === null || (other !== null && other.ms > log.ms) ? other : log;
  }

  async get(key: string): Promise<Entry | undefined> {
    return await this.#onceDurable(key, this.parts.store.get(key));
  }

  held(key: string): Stored | undefined | Promise<Stored | undefined> {
    return this.#onceDurable(key, this.parts.store.stored(key));
  }

  /** `read` (taken now) as is when `key` has no write awaiting its fsync, else after that fsync. */
  #onceDurable<T>(key: string, read: T): T | Promise<T> {
    const seq = this.#pending.get(key);
    return seq === undefined ? read : this.parts.wal.durable(seq).then(() => read);
  }

  async write(ops: readonly WriteOp[], fence?: Fence): Promise<WriteOutcome[]> {
    this.#assertOpen("write");
    const hashes = await this.#hashes(ops.map((op) => op.key));
    if (this.#compactor.compacting) await this.#compactor.compactionDone();
    this.#assertWritable("write");
    const line = writeBytes(ops);
    const release = this.#room.needsRoom(line)
      ? await this.#compactor.makeRoomFor(() => writeGrowth(ops, this.parts.store), line, "write")
      : undefined;
    passFence(fence, release);
    const outcomes: WriteOutcome[] = [];
    const changed: [string, Stored][] = [];
    const staged: StagedChange[] = [];
    try {
      for (const op of ops) {
        const prev = this.parts.store.versionOf(op.key) ?? null;
        const { outcome, stored } = this.parts.store.write(op, hashes.get(op.key));
        outcomes.push(outcome);
        if (stored) changed.push([op.key, stored]);
        if (stored) staged.push({ key: op.key, stored, prev });
      }
    } finally {
      // The line is appended before #logSet's first await: only then may others go on.
      const logged = this.#logSet(changed, ops.map((op) => op.key), staged);
      release?.();
      await logged;
    }
    return outcomes;
  }

  async ingest(
    entries: readonly WireEntry[],
    fence?: Fence,
    admit?: (entry: WireEntry) => boolean,
  ): Promise<{ applied: number; skipped: number }> {
    this.#assertOpen("ingest");
    const all = entries.map(entryFromWire);
    if (this.#compactor.compacting) await this.#compactor.compactionDone();
    this.#assertWritable("ingest");
    const line = ingestBytes(entries);
    const release = this.#room.needsRoom(line)
      ? await this.#compactor.makeRoomFor(
        () => ingestGrowth(all, this.parts.store),
        line,
        "ingest",
      )
      : undefined;
    passFence(fence, release);
    let parsed = all;
    let staged: StagedChange[];
    try {
      // No await from here to the append: what `admit` decides is what the store takes.
      if (admit !== undefined) parsed = all.filter((_, i) => admit(entries[i]!));
      // All or nothing: an entry that cannot be held refuses the call before any is applied.
      staged = this.parts.store.applyAll(parsed);
    } catch (err) {
      release?.();
      throw err;
    }
    const changed = staged.map(({ key, stored }): [string, Stored] => [key, stored]);
    const logged = this.#logSet(changed, parsed.map((p) => p.key), staged);
    release?.();
    await logged;
    return { applied: staged.length, skipped: entries.length - staged.length };
  }

  async drop(ranges: readonly Range[], fence?: Fence): Promise<number> {
    if (this.#compactor.compacting) await this.#compactor.compactionDone();
    this.#assertWritable("drop");
    fence?.();
    const dropped = this.parts.store.drop(ranges);
    if (dropped.length === 0) return 0;
    const json = JSON.stringify({ drop: ranges.map((r) => [r.start, r.end]) });
    const seq = this.parts.wal.append(encodeJsonLine(json));
    for (const key of dropped) this.#pending.set(key, seq);
    this.#lastDrop = seq;
    await this.parts.wal.durable(seq);
    return dropped.length;
  }

  async purge(
    tombstones: readonly { key: string; version: string }[],
    storedBy: number,
    fence?: Fence,
  ): Promise<string[]> {
    if (this.#compactor.compacting) await this.#compactor.compactionDone();
    this.#assertWritable("purge tombstones");
    fence?.();
    const purged = this.parts.store.purge(tombstones, storedBy);
    if (purged.length === 0) return purged;
    const versions = new Map(tombstones.map((t) => [t.key, t.version]));
    const json = JSON.stringify({ purge: purged.map((key) => [key, versions.get(key)!]) });
    const seq = this.parts.wal.append(encodeJsonLine(json));
    // Read as absent only once the purge is durable: a crash before brings the tombstone back.
    for (const key of purged) this.#pending.set(key, seq);
    await this.parts.wal.durable(seq);
    return purged;
  }

  purgeable(tombstones: readonly { key: string; version: string }[], storedBy: number): string[] {
    this.#assertNoRefused("check tombstones");
    return this.parts.store.purgeable(tombstones, storedBy);
  }

  oldTombstones(storedBy: number, limit: number): { key: string; version: string; hash: number }[] {
    this.#assertNoRefused("list old tombstones");
    return this.parts.store.oldTombstones(storedBy, limit);
  }

  scanKeys(ranges: readonly Range[]): string[] {
    this.#assertNoRefused("scan");
    return this.parts.store.scanKeys(ranges);
  }

  scanBuckets(buckets: readonly (readonly Range[])[]): string[][] {
    this.#assertNoRefused("scan");
    return this.parts.store.scanBuckets(buckets);
  }

  expiredKeys(before: number, limit: number): { key: string; version: string }[] {
    this.#assertNoRefused("list expired keys");
    return this.parts.store.expiredKeys(before, limit);
  }

  peek(key: string): Entry | undefined {
    this.#assertNoRefused(`read key ${JSON.stringify(key)}`);
    return this.parts.store.get(key);
  }

  peekHeld(key: string): Stored | undefined {
    this.#assertNoRefused(`read key ${JSON.stringify(key)}`);
    return this.parts.store.stored(key);
  }

  peekVersion(key: string): string | undefined {
    this.#assertNoRefused(`read key ${JSON.stringify(key)}`);
    return this.parts.store.versionOf(key);
  }

  settled(key: string): Promise<void> | undefined {
    const seq = this.#pending.get(key);
    return seq === undefined ? undefined : this.parts.wal.durable(seq);
  }

  async list(options: ListOptions): Promise<{ entries: [string, Entry][]; more: boolean }> {
    const { keys, more } = this.parts.store.listKeys(options);
    const entries = keys.map((key): [string, Entry] => [key, this.parts.store.get(key)!]);
    await this.parts.wal.durable(Math.max(this.#lastDrop, this.#latest(keys)));
    return { entries, more };
  }

  importFlat(image: Record<string, FlatValue>): Promise<number> {
    if (typeof image !== "object" || image === null || Array.isArray(image)) {
      throw new RingkvError("bad_request", "Cannot import: the image is not a JSON object");
    }
    const ops = Object.entries(image).map(([key, value]): WriteOp => ({
      op: "put",
      key: checkKey(key, this.parts.limits.maxKeyBytes),
      value: flatValueBytes(key, value, this.parts.limits.maxValueBytes),
      contentType: IMPORT_CONTENT_TYPE,
    }));
    return this.write(ops).then(() => ops.length);
  }

  exportFlat(binary: "base64" | "refuse"): Record<string, FlatValue> {
    this.#assertNoRefused("export");
    return this.parts.store.exportFlat(binary);
  }

  loadClusterMap(): Promise<ClusterMap | null> {
    return this.#files.load(FILES.cluster, "the cluster map") as Promise<ClusterMap | null>;
  }

  saveClusterMap(map: ClusterMap): Promise<void> {
    return this.#files.save(FILES.cluster, map, `the cluster map of epoch ${map.epoch}`);
  }

  loadMapVote(): Promise<unknown> {
    return this.#files.load(FILES.mapVote, "this node's vote on the next cluster map");
  }

  saveMapVote(vote: unknown): Promise<void> {
    return this.#files.save(FILES.mapVote, vote, "this node's vote on the next cluster map");
  }

  stats(): EngineStats {
    return {
      ...this.parts.store.counts(),
      walBytes: this.parts.wal.bytes,
      snapshotBytes: this.#snapshotWriter.last.bytes,
      reserveBytes: this.parts.reserve.bytes,
      diskWaitMs: this.#oldestWait()?.ms ?? 0,
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.parts.gcHint?.stop();
    await this.#guard.close();
    try {
      // A read-only node leaves its files as the last repair left them; restart reloads them.
      if (this.#guard.health.state === "writable") {
        await this.parts.wal.flush();
        await this.#compactor.snapshotting;
        await this.#files.saved;
        await this.#compactor.compactAtClose();
      }
    } finally {
      await this.parts.disk.close();
    }
  }

  /** Logs the changed entries as one record, then waits until `keys` are all durable. */
  async #logSet(
    changed: [string, Stored][],
    keys: string[],
    staged: StagedChange[],
  ): Promise<void> {
    if (changed.length > 0) {
      const json = `{"set":[${
        changed.map(([key, stored]) => entryToJson(key, stored)).join(",")
      }]}`;
      const line = encodeJsonLine(json);
      const seq = this.parts.wal.append(line);
      this.parts.gcHint?.wrote(line.length);
      for (const [key] of changed) this.#pending.set(key, seq);
      this.changes.stage(seq, staged);
    }
    // Also covers answers (412, skipped) that depend on another call's pending change.
    await this.parts.wal.durable(this.#latest(keys));
  }

  #latest(keys: readonly string[]): number {
    let seq = 0;
    if (this.#pending.size === 0) return seq;
    for (const key of keys) seq = Math.max(seq, this.#pending.get(key) ?? 0);
    return seq;
  }

  async #hashes(keys: readonly string[]): Promise<Map<string, number>> {
    const missing = keys.filter((key) => this.parts.store.hashOf(key) === undefined);
    const hashes = new Map<string, number>();
    if (missing.length === 0) return hashes;
    const points = await Promise.all(missing.map(this.parts.hashKey));
    missing.forEach((key, i) => hashes.set(key, points[i]!));
    return hashes;
  }

  #onRound(lastSeq: number): void {
    this.changes.durable(lastSeq);
    for (const [key, seq] of this.#pending) if (seq <= lastSeq) this.#pending.delete(key);
    this.#compactor.compactIfDue();
  }

  /**
   * Makes a read-only node writable again: after a failed log round, cuts the log back to
   * its last durable record and reloads the store from disk (the failed rounds' changes
   * are in memory only); then writes a snapshot, which proves the disk takes writes again,
   * in the room of the reserve (a log that filled the disk left no other), and holds the
   * reserve again: the node takes writes only while the next snapshot has its room.
   */
  async #repair(rollback: boolean): Promise<void> {
    const { disk, wal } = this.parts;
    await this.#compactor.snapshotting;
    if (rollback) {
      await wal.reopen();
      const store = new Store(this.parts.store.clock, this.parts.store.now);
      const snapshot = await this.#snapshotWriter.load(store);
      // A torn tail cut here is told as at start (the failed round's bytes).
      const log = this.parts.log ?? console.error;
      await replayLog(disk, store, { snapshot, log });
      this.parts.store = store;
      this.#refusedInMemory = null;
      this.changes.discardStaged();
      this.#pending.clear();
      this.#lastDrop = 0;
    }
    if (this.#closed) return;
    await this.#compactor.compactTracked();
  }

  /**
   * Reads that do not wait on the log (scans, digests, export, the acceptor's peek) would show
   * the writes of failed rounds, still in memory until the repair reloads the store: 503.
   */
  #assertNoRefused(action: string): void {
    if (this.#refusedInMemory === null) return;
    throw new RingkvError(
      "unavailable",
      `Cannot ${action}: memory still holds writes the disk refused (${this.#refusedInMemory}); ` +
        "reads without the log answer again once a repair reloads the store from disk",
    );
  }

  #assertOpen(action: string): void {
    if (this.#closed) {
      throw new RingkvError("unavailable", `Cannot ${action}: the storage engine is closed`);
    }
  }

  /** Throws 503 unless the engine is open and takes writes. */
  #assertWritable(action: string): void {
    this.#assertOpen(action);
    this.#guard.assertWritable(action);
  }
}

/**
 * Runs the call's fence after its last wait, before the store changes (no await between the
 * two); a refusal gives back the room the call held.
 */
function passFence(fence: Fence | undefined, release: (() => void) | undefined): void {
  if (fence === undefined) return;
  try {
    fence();
  } catch (err) {
    release?.();
    throw err;
  }
}
