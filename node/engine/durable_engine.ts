/**
 * The {@link NodeEngine} over a {@link Store} and a {@link Wal}: every change is applied
 * in memory, written as one log line and answered once that line is fsync'd. Reads of a
 * key whose last change is not durable yet wait for it. Snapshots run in the background
 * when the log grows past a size, and on close.
 *
 * @module
 */
import { ChangeLog, type StagedChange } from "./change_log.ts";
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
  ListOptions,
  NodeEngine,
  WriteOp,
  WriteOutcome,
} from "./engine.ts";
import { entryToJson } from "./entry_json.ts";
import { encodeJsonLine } from "../storage/log_format.ts";
import type { Stored } from "./packed.ts";
import {
  FILES,
  type LoadedSnapshot,
  loadSnapshot,
  replayLog,
  ShutdownSnapshotError,
  snapshotMarker,
} from "../storage/recovery.ts";
import { writeSnapshot } from "../storage/snapshot.ts";
import {
  isNoSpace,
  RESERVE_FILE,
  reserveFor,
  ReserveShortError,
  type SpaceReserve,
} from "../storage/reserve.ts";
import { type FlatValue, Store } from "./store.ts";
import type { Wal } from "../storage/wal.ts";
import { WriteGuard, type WriteHealth } from "./write_guard.ts";
import { DEFAULT_STALL_AFTER_MS, stalledWrites } from "./disk_stall.ts";
import { DiskWaits } from "./disk_waits.ts";
import { JsonFiles } from "./json_files.ts";
import {
  ingestBytes,
  ingestGrowth,
  storeEstimate,
  writeBytes,
  writeGrowth,
} from "./size_estimates.ts";
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
}

/** A durable node engine; build it with `openEngine`. */
export class DurableEngine implements NodeEngine {
  readonly id: string;
  readonly incarnation: string;
  readonly createdAt: number;
  /** Keys whose last change is not durable yet, with its log sequence number. */
  readonly #pending = new Map<string, number>();
  #lastDrop = 0;
  #lastSnapshot: LoadedSnapshot;
  #nextSnapshotAt: number;
  /** Snapshot bytes per byte of the store's estimate, as the last snapshot measured it. */
  #snapshotScale = 1;
  /**
   * The bytes of log, snapshot and reserve the disk held when the log last filled it (ENOSPC):
   * what the file system gives this node, as far as it knows; null: the log never filled it.
   */
  #spaceBudget: number | null = null;
  /** The log's size right after the last snapshot cut it: a log no larger has nothing to cut. */
  #logCutAt = 0;
  #snapshotting: Promise<void> | null = null;
  /**
   * Set while a snapshot uses the reserve's room: writes wait for it before they touch memory,
   * so that snapshot holds none whose log round is yet to come (it would need the room twice).
   */
  #compacting: Promise<void> | null = null;
  readonly #files: JsonFiles;
  #closed = false;
  /** Why memory holds refused writes: set by a failed log round, cleared once the repair reloads. */
  #refusedInMemory: string | null = null;
  readonly #guard: WriteGuard;
  /** Writes of cluster.json and acceptor.json under way, for the stall measure. */
  readonly diskWaits = new DiskWaits();
  /** Durable changes for watchers (node/engine/change_log.ts). */
  readonly changes = new ChangeLog(crypto.randomUUID().slice(0, 13));

  constructor(readonly parts: EngineParts) {
    this.id = parts.id;
    this.incarnation = parts.incarnation;
    this.createdAt = parts.createdAt;
    this.#lastSnapshot = parts.snapshot;
    this.#nextSnapshotAt = parts.snapshotEveryBytes;
    parts.wal.onRound = (lastSeq) => this.#onRound(lastSeq);
    this.#guard = new WriteGuard({
      repair: (rollback) => this.#repair(rollback),
      firstRetryMs: parts.firstRetryMs,
      log: parts.log,
    });
    this.#files = new JsonFiles(parts.disk, this.diskWaits, this.#guard);
    parts.wal.onFailure = (err) => {
      // Not while a snapshot runs: its temporary file, of unknown size, holds part of the room.
      if (isNoSpace(err) && this.#snapshotting === null && parts.reserveMinBytes > 0) {
        this.#spaceBudget = parts.wal.bytes + this.#lastSnapshot.bytes + parts.reserve.bytes;
      }
      this.#refusedInMemory = `append to ${FILES.wal}: ${err.message}`;
      this.#guard.failed(`append to ${FILES.wal}`, err, true);
    };
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

  async write(ops: readonly WriteOp[]): Promise<WriteOutcome[]> {
    this.#assertOpen("write");
    const hashes = await this.#hashes(ops.map((op) => op.key));
    if (this.#compacting !== null) await this.#compactionDone();
    this.#assertOpen("write");
    this.#guard.assertWritable("write");
    const line = writeBytes(ops);
    const release = this.#needsRoom(line)
      ? await this.#makeRoomFor(() => writeGrowth(ops, this.parts.store), line, "write")
      : undefined;
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

  /**
   * Whether a write of `bytes` must first make room: it is large (its log line alone could fill
   * what the log has left), or it could take the data past what the reserve holds for the next
   * snapshot. Cheap: most writes are neither, and take no `statfs`.
   */
  #needsRoom(bytes: number): boolean {
    if (this.parts.reserveMinBytes <= 0) return false;
    return bytes >= LARGE_WRITE_BYTES || this.#outgrowsReserve(bytes * this.#snapshotScale);
  }

  /**
   * Makes room before a write that {@link #needsRoom}: grows the reserve for the data as the
   * write leaves it (an overwrite adds only its growth), and cuts the log first when the file
   * system has not the room for the write's line (lines queued and not yet written counted).
   * Once logged, a write that left a log filling the disk no room for the snapshot that compacts
   * it would leave the node read-only for good (found by review: a 7 kB PUT on a nearly full
   * disk). A write that does not fit even then is refused (503) with the node read-only, etcd's
   * NOSPACE alarm, until its repair finds it holds the room for the data it has.
   *
   * Returns with writes and compactions held (`#compacting`, `#snapshotting`): the caller applies
   * the write and appends its line, then calls the release it got. Held from before `statfs` to
   * the append, so nothing starts between the check and the write (found by review: a snapshot
   * begun meanwhile had its state reset under it, and acknowledged writes were lost).
   */
  async #makeRoomFor(growth: () => number, line: number, action: string): Promise<() => void> {
    for (let compacted = false;; compacted = true) {
      while (this.#snapshotting !== null || this.#compacting !== null) {
        await this.#snapshotting;
        await this.#compactionDone();
      }
      this.#assertOpen(action);
      this.#guard.assertWritable(action);
      const held = Promise.withResolvers<void>();
      this.#compacting = this.#snapshotting = held.promise;
      const release = () => {
        if (this.#compacting === held.promise) this.#compacting = this.#snapshotting = null;
        held.resolve();
      };
      try {
        const { reserve, reserveMinBytes, disk, wal } = this.parts;
        const data = this.#dataBytes() + Math.ceil(growth() * this.#snapshotScale);
        const grow = Math.max(0, reserveFor(data, reserveMinBytes).needed - reserve.bytes);
        const left = Math.ceil(reserveMinBytes / 4);
        const free = await disk.freeBytes();
        this.#assertOpen(action);
        this.#guard.assertWritable(action);
        const needs = grow + line + wal.unwrittenBytes + left;
        if (free === null || needs <= free) {
          await this.#growReserve(data, action);
          return release;
        }
        // A log with records to cut: the snapshot frees their room, then look again.
        if (!compacted && wal.bytes > this.#logCutAt) {
          release();
          await this.#compactNow(action);
          continue;
        }
        const err = new Error(
          `No space left on device for a write of ${line} bytes: its log line, ${grow} more bytes ` +
            `of ${RESERVE_FILE} for the next snapshot and ${left} to spare need ${needs}, the ` +
            `file system has ${free} free`,
        );
        this.#guard.failed("keep room for the next snapshot", err, false);
        throw new RingkvError(
          "unavailable",
          `Cannot ${action}: its ${line} bytes would leave no room for the next snapshot ` +
            `(${err.message}); free space in this node's file system, or write less`,
        );
      } catch (err) {
        release();
        throw err;
      }
    }
  }

  /** A compaction for a write that needs room, as a background one runs; its failure is told. */
  async #compactNow(action: string): Promise<void> {
    try {
      await this.#compactTracked();
    } catch (err) {
      if (!(err instanceof Error) || err instanceof TypeError) throw err;
      this.#guard.failed(compactionFailure(err), err, false);
      throw new RingkvError(
        "unavailable",
        `Cannot ${action}: cutting the log to make room for it failed: ${err.message}`,
      );
    }
  }

  /** Grows the reserve for `data` (the caller holds writes and compactions). */
  async #growReserve(data: number, action: string): Promise<void> {
    try {
      await this.fitReserve(data);
    } catch (err) {
      if (!(err instanceof ReserveShortError)) throw err;
      this.#guard.failed("keep room for the next snapshot", err, false);
      throw new RingkvError(
        "unavailable",
        `Cannot ${action}: it would leave no room for the next snapshot (${err.message}); ` +
          "free space in this node's file system, or write less",
      );
    }
    this.#assertOpen(action);
    this.#guard.assertWritable(action);
  }

  /** Waits until no snapshot uses the reserve's room (another may begin as one ends). */
  async #compactionDone(): Promise<void> {
    while (this.#compacting !== null) await this.#compacting;
  }

  async ingest(entries: readonly WireEntry[]): Promise<{ applied: number; skipped: number }> {
    this.#assertOpen("ingest");
    const parsed = entries.map(entryFromWire);
    if (this.#compacting !== null) await this.#compactionDone();
    this.#assertOpen("ingest");
    this.#guard.assertWritable("ingest");
    const line = ingestBytes(entries);
    const release = this.#needsRoom(line)
      ? await this.#makeRoomFor(() => ingestGrowth(parsed, this.parts.store), line, "ingest")
      : undefined;
    let staged: StagedChange[];
    try {
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

  async drop(ranges: readonly Range[]): Promise<number> {
    if (this.#compacting !== null) await this.#compactionDone();
    this.#assertOpen("drop");
    this.#guard.assertWritable("drop");
    const dropped = this.parts.store.drop(ranges);
    if (dropped.length === 0) return 0;
    const json = JSON.stringify({ drop: ranges.map((r) => [r.start, r.end]) });
    const seq = this.parts.wal.append(encodeJsonLine(json));
    for (const key of dropped) this.#pending.set(key, seq);
    this.#lastDrop = seq;
    await this.parts.wal.durable(seq);
    return dropped.length;
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
      snapshotBytes: this.#lastSnapshot.bytes,
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
        await this.#snapshotting;
        await this.#files.saved;
        await this.#compact().catch((err) => {
          // Best effort: a reserve the snapshot used is held again at the next start otherwise.
          if (err instanceof ReserveShortError) return;
          // The disk's refusals (full, read-only, failing), not a bug of ours, become one line.
          if (!(err instanceof Error) || err instanceof TypeError) throw err;
          throw new ShutdownSnapshotError(err);
        });
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
    this.#compactIfDue();
  }

  /** Starts a snapshot in the background when the log or the data asks for one. */
  #compactIfDue(): void {
    const wal = this.parts.wal;
    if (this.#closed || this.#snapshotting || this.#guard.health.state !== "writable") return;
    if (wal.bytes <= this.#logCutAt) return;
    if (wal.bytes < this.#nextSnapshotAt && !this.#outgrowsReserve() && !this.#logNearlyFull()) {
      return;
    }
    this.#snapshotting = this.#compact()
      .catch((err) => {
        if (!(err instanceof Error)) throw err;
        // The log keeps everything, but a disk that cannot take a snapshot (or hold the room
        // for the next one) is about to refuse the log too: stop taking writes now; the
        // repair retries with the reserve's room.
        this.#guard.failed(compactionFailure(err), err, false);
        this.#nextSnapshotAt = wal.bytes + this.parts.snapshotEveryBytes;
      })
      .finally(() => {
        this.#snapshotting = null;
        // Rounds written meanwhile may have made another one due.
        this.#compactIfDue();
      });
  }

  /**
   * Whether the data (with `moreBytes` more) may soon not fit in the reserve: a snapshot now (the reserve then grows
   * with it) keeps the reserve larger than any snapshot the log could need.
   */
  #outgrowsReserve(moreBytes = 0): boolean {
    const { needed } = reserveFor(this.#dataBytes() + moreBytes, this.parts.reserveMinBytes);
    return needed > this.parts.reserve.bytes;
  }

  /**
   * Whether the log has taken 3/4 of the room the snapshot and the reserve leave it in the space
   * the disk held when the log last filled it: a snapshot now cuts the log before it fills the
   * disk again, which would refuse writes until a repair had cut it.
   */
  #logNearlyFull(): boolean {
    if (this.#spaceBudget === null) return false;
    const room = this.#spaceBudget - this.#lastSnapshot.bytes - this.parts.reserve.bytes;
    return room > 0 && this.parts.wal.bytes >= room * 0.75;
  }

  /** About what a snapshot of the store would take now. */
  #dataBytes(): number {
    return Math.ceil(storeEstimate(this.parts.store.counts()) * this.#snapshotScale);
  }

  /**
   * Sizes the reserve for the store as it is; at start, and after each snapshot. When the file
   * system has not the room it wants, it keeps what the next snapshot needs and a quarter of the
   * minimum, and gives the rest (at least another quarter) back to the log; throws
   * {@link ReserveShortError} when it cannot hold that much.
   */
  async fitReserve(dataBytes = this.#dataBytes()): Promise<void> {
    const { reserve, reserveMinBytes, disk } = this.parts;
    await reserve.refresh();
    const { needed, wanted } = reserveFor(dataBytes, reserveMinBytes);
    const quarter = Math.ceil(reserveMinBytes / 4);
    try {
      // A reserve that took the last byte would leave the next log round none, and that write
      // would be refused: it grows to `wanted` only when a quarter of the minimum is left.
      let target = wanted;
      if (reserve.bytes < wanted) {
        const free = await disk.freeBytes();
        if (free === null) {
          // The file system does not say: a quarter more is written, then cut back.
          await reserve.resize(wanted + quarter);
        } else if (reserve.bytes + free - quarter < wanted) {
          target = needed + quarter;
          if (reserve.bytes + free - quarter < target) {
            const cause = new Error(
              `No space left on device: the file system has ${free} bytes free`,
            );
            throw new ReserveShortError(needed, 2 * quarter, reserve.bytes + free, cause);
          }
        }
      }
      await reserve.resize(target);
    } catch (err) {
      if (!(err instanceof Error) || err instanceof ReserveShortError) throw err;
      // Taking writes needs room for the log too: a quarter of the minimum given back to it,
      // and a quarter kept over `needed` so that the next writes do not each take a snapshot.
      if (reserve.bytes >= needed + 2 * quarter) return await reserve.resize(needed + quarter);
      throw new ReserveShortError(needed, 2 * quarter, reserve.bytes, err);
    }
  }

  /** Makes a start that cannot hold its reserve read-only; the repair compacts to make room. */
  async startReserve(): Promise<void> {
    await this.fitReserve().catch((err) => {
      if (!(err instanceof ReserveShortError)) throw err;
      this.#guard.failed("keep room for the next snapshot", err, false);
    });
  }

  /**
   * A snapshot (which cuts the log), then the reserve sized for it; when the snapshot fails (no
   * room: a log that filled the disk leaves none), again in the room of the reserve (at once,
   * once the log has filled the disk: a first try would take the room the log's appends need).
   */
  async #compact(): Promise<void> {
    if (this.#spaceBudget === null) {
      try {
        await this.#snapshot();
      } catch (err) {
        if (this.parts.reserve.bytes === 0) throw err;
        return await this.#snapshotInReserve();
      }
      return await this.fitReserve();
    }
    await this.#snapshotInReserve();
  }

  /**
   * Deletes the reserve, writes the snapshot in its room, cuts the log and holds the reserve
   * again, with no log round meanwhile: appends that took the room would leave the snapshot
   * none, and then the node nothing to compact its log with. Writes wait (as on a slow disk).
   */
  async #snapshotInReserve(): Promise<void> {
    const wal = this.parts.wal;
    const compacted = Promise.withResolvers<void>();
    this.#compacting = compacted.promise;
    try {
      // Writes logged before the gate go out as usual; a failure is a failed round as ever.
      await wal.flush();
      await this.#snapshotInReserveNow();
    } catch (err) {
      // Read-only before the waiting writes go on: they must not take the reserve's room.
      if (err instanceof Error) this.#guard.failed(compactionFailure(err), err, false);
      throw err;
    } finally {
      this.#compacting = null;
      compacted.resolve();
    }
  }

  #snapshotInReserveNow(): Promise<void> {
    const wal = this.parts.wal;
    return wal.exclusive(async () => {
      await this.parts.reserve.release();
      // Writes wait (#compacting) and no round runs during the task: a line queued anyway
      // is written by this one, after the snapshot has taken its room.
      await this.#snapshotThenCut(() => wal.roundNow(), (head) => wal.replaceNow(head));
      await this.fitReserve();
    });
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
    await this.#snapshotting;
    if (rollback) {
      await wal.reopen();
      const store = new Store(this.parts.store.clock, this.parts.store.now);
      this.#lastSnapshot = await loadSnapshot(disk, store);
      // A torn tail cut here is told as at start (the failed round's bytes).
      const log = this.parts.log ?? console.error;
      await replayLog(disk, store, { snapshot: this.#lastSnapshot, log });
      this.parts.store = store;
      this.#refusedInMemory = null;
      this.changes.discardStaged();
      this.#pending.clear();
      this.#lastDrop = 0;
    }
    if (this.#closed) return;
    await this.#compactTracked();
  }

  /** {@link #compact}, known as the compaction under way (`#snapshotting`) until it settles. */
  #compactTracked(): Promise<void> {
    const compaction = this.#compact();
    this.#snapshotting = compaction.catch(() => {}).finally(() => this.#snapshotting = null);
    return compaction;
  }

  #snapshot(): Promise<void> {
    const { wal } = this.parts;
    // Memory holds writes whose log round is still under way; one that fails is refused (503),
    // so the snapshot holding it must not replace the old one.
    return this.#snapshotThenCut(() => wal.flush(), (head) => wal.replaceWithTail(head));
  }

  /**
   * Writes a snapshot, `capturedDurable` making the writes it read durable before it replaces
   * the old one, then cuts the log with `cut` (the marker first, then the rounds written since).
   */
  async #snapshotThenCut(
    capturedDurable: () => Promise<void>,
    cut: (head: Uint8Array) => Promise<void>,
  ): Promise<void> {
    const { wal } = this.parts;
    wal.startTail();
    try {
      await this.#writeSnapshotFile(capturedDurable);
    } catch (err) {
      wal.stopTail();
      throw err;
    }
    await cut(snapshotMarker(this.#lastSnapshot));
    this.#logCutAt = wal.bytes;
    this.#nextSnapshotAt = wal.bytes + this.parts.snapshotEveryBytes;
  }

  /**
   * Writes `snapshot.json` of the store as it is (the log is cut by the caller). `capturedDurable`
   * makes durable every write the snapshot read from memory before the file replaces the old
   * one: a write whose round fails is refused, and must not come back from the snapshot.
   */
  async #writeSnapshotFile(capturedDurable: () => Promise<void>): Promise<void> {
    const { disk, store } = this.parts;
    const generation = this.#lastSnapshot.generation + 1;
    const estimate = storeEstimate(store.counts());
    const bytes = await writeSnapshot(
      disk,
      FILES.snapshot,
      this.id,
      store.entries(),
      generation,
      capturedDurable,
    );
    this.#lastSnapshot = { bytes, generation };
    this.#snapshotScale = estimate > 0 ? bytes / estimate : 1;
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
}

/** A write this large may not fit what its log has left: it asks `statfs` first. */
const LARGE_WRITE_BYTES = 64 * 1024;

/** What a failed compaction says it could not do. */
function compactionFailure(err: Error): string {
  if (err instanceof ReserveShortError) return "keep room for the next snapshot";
  return /wal\.jsonl/.test(err.message) ? `cut ${FILES.wal}` : `write ${FILES.snapshot}`;
}
