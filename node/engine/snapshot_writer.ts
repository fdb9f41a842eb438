/**
 * Writes `snapshot.json` of the store and cuts the log behind it (node/storage/snapshot.ts,
 * node/storage/wal.ts), and keeps what the last snapshot measured: its size and generation,
 * its bytes per byte of the store's estimate, and the log's size right after the cut. When
 * to write one is the compactor's choice (compactor.ts).
 *
 * @module
 */
import type { ChangeLog } from "./change_log.ts";
import { changeMark, RECENT_CHANGES } from "./change_recovery.ts";
import type { Disk } from "../storage/disk.ts";
import { FILES, type LoadedSnapshot, loadSnapshot, snapshotMarker } from "../storage/recovery.ts";
import { writeSnapshot } from "../storage/snapshot.ts";
import type { Wal } from "../storage/wal.ts";
import { storeEstimate } from "./size_estimates.ts";
import type { Store } from "./store.ts";

/** What a {@link SnapshotWriter} writes from; `store` is read at each use (a repair replaces it). */
export interface SnapshotParts {
  readonly id: string;
  readonly disk: Disk;
  readonly wal: Wal;
  readonly store: Store;
  /** Log bytes after a cut past which a snapshot is due. */
  readonly snapshotEveryBytes: number;
}

/**
 * Whether a cut's marker carries the newest changes (change_recovery.ts): all it may at a
 * shutdown, a quarter of the log's size between snapshots at a periodic one, none otherwise.
 */
export type RecentChanges = false | "periodic" | "shutdown";

/** Snapshots of one engine's store, and the log cuts behind them. */
export class SnapshotWriter {
  #last: LoadedSnapshot;
  #scale = 1;
  /** The log's size right after the last snapshot cut it: a log no larger has nothing to cut. */
  #logCutAt = 0;
  #nextAt: number;

  /** Starts from the snapshot the start loaded (`loaded`); `changes`: the marker's numbering. */
  constructor(
    private readonly parts: SnapshotParts,
    loaded: LoadedSnapshot,
    private readonly changes: ChangeLog,
  ) {
    this.#last = loaded;
    this.#nextAt = parts.snapshotEveryBytes;
  }

  /** The last snapshot written or loaded: its size (0 for none) and generation. */
  get last(): LoadedSnapshot {
    return this.#last;
  }

  /** Snapshot bytes per byte of the store's estimate, as the last snapshot measured it. */
  get scale(): number {
    return this.#scale;
  }

  /** Whether the log has grown since the last cut (else a snapshot has nothing to cut). */
  get logToCut(): boolean {
    return this.parts.wal.bytes > this.#logCutAt;
  }

  /** Whether the log has grown `snapshotEveryBytes` since the last cut (or {@link postpone}). */
  get logDue(): boolean {
    return this.parts.wal.bytes >= this.#nextAt;
  }

  /** After a failed snapshot: the log is due again once it grows `snapshotEveryBytes` more. */
  postpone(): void {
    this.#nextAt = this.parts.wal.bytes + this.parts.snapshotEveryBytes;
  }

  /** Loads `snapshot.json` into `store` (a repair's reload) and takes it as the last one. */
  async load(store: Store): Promise<LoadedSnapshot> {
    this.#last = await loadSnapshot(this.parts.disk, store);
    return this.#last;
  }

  /**
   * A snapshot, then the log cut, while log rounds go on; with `recent`, the log's marker carries
   * the newest changes (at a shutdown: change_recovery.ts).
   */
  snapshot(recent: RecentChanges = false): Promise<void> {
    const { wal } = this.parts;
    // Memory holds writes whose log round is still under way; one that fails is refused (503),
    // so the snapshot holding it must not replace the old one.
    return this.#snapshotThenCut(() => wal.flush(), (head) => wal.replaceWithTail(head), recent);
  }

  /** The same inside `wal.exclusive`, where no round runs: a queued line is written here. */
  snapshotExclusive(): Promise<void> {
    const { wal } = this.parts;
    return this.#snapshotThenCut(() => wal.roundNow(), (head) => wal.replaceNow(head), false);
  }

  /**
   * Writes a snapshot, `capturedDurable` making the writes it read durable before it replaces
   * the old one, then cuts the log with `cut` (the marker first, then the rounds written since;
   * with `recent`, the marker carries the newest changes: node/engine/change_recovery.ts).
   */
  async #snapshotThenCut(
    capturedDurable: () => Promise<void>,
    cut: (head: Uint8Array) => Promise<void>,
    recent: RecentChanges,
  ): Promise<void> {
    const { wal } = this.parts;
    // The tail holds the rounds written from now on: their changes come after `from`.
    const from = this.changes.last;
    wal.startTail();
    let exactAfter: number;
    try {
      exactAfter = await this.#writeSnapshotFile(capturedDurable);
    } catch (err) {
      wal.stopTail();
      throw err;
    }
    // Between snapshots the newest changes take at most a quarter of the log's size.
    const room = recent === "periodic"
      ? Math.floor(this.parts.snapshotEveryBytes / 4)
      : recent === "shutdown"
      ? RECENT_CHANGES.maxBytes
      : 0;
    await cut(snapshotMarker(this.#last, changeMark(this.changes, from, exactAfter, room)));
    this.#logCutAt = wal.bytes;
    this.#nextAt = wal.bytes + this.parts.snapshotEveryBytes;
  }

  /**
   * Writes `snapshot.json` of the store as it is (the log is cut by the caller). `capturedDurable`
   * makes durable every write the snapshot read from memory before the file replaces the old
   * one: a write whose round fails is refused, and must not come back from the snapshot.
   * Returns the change log's `appended` when every entry had been read (its `exactAfter`).
   */
  async #writeSnapshotFile(capturedDurable: () => Promise<void>): Promise<number> {
    let exactAfter = 0;
    const { disk, store } = this.parts;
    const generation = this.#last.generation + 1;
    const estimate = storeEstimate(store.counts());
    const bytes = await writeSnapshot(
      disk,
      FILES.snapshot,
      this.parts.id,
      readThen(store.entries(), () => exactAfter = this.changes.appended),
      generation,
      capturedDurable,
      // Where the change log stood once every entry was read: a crash before the log's cut
      // leaves this snapshot under the older marker (change_recovery.ts `first`).
      () => ({ changes: { log: this.changes.boot, exactAfter } }),
    );
    this.#last = { bytes, generation };
    this.#scale = estimate > 0 ? bytes / estimate : 1;
    return exactAfter;
  }
}

/** `entries`, then `done()` in the turn the last one was read (changes after it are not in them). */
function* readThen<T>(entries: Iterable<T>, done: () => void): Generator<T> {
  yield* entries;
  done();
}
