/**
 * When the log is compacted (a snapshot, then the log cut behind it) and what waits for it:
 * in the background when the log or the data asks for one, in the reserve's room once the
 * log has filled the disk (writes wait meanwhile), before a write that needs room, at close,
 * and in a read-only node's repair. The writing is snapshot_writer.ts's, the sizes
 * snapshot_room.ts's.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import { FILES, ShutdownSnapshotError } from "../storage/recovery.ts";
import {
  isNoSpace,
  RESERVE_FILE,
  ReserveShortError,
  type SpaceReserve,
} from "../storage/reserve.ts";
import type { Wal } from "../storage/wal.ts";
import type { SnapshotRoom } from "./snapshot_room.ts";
import type { RecentChanges, SnapshotWriter } from "./snapshot_writer.ts";
import type { WriteGuard } from "./write_guard.ts";

/** The engine's parts a {@link Compactor} works with. */
export interface CompactorParts {
  readonly wal: Wal;
  readonly reserve: SpaceReserve;
  readonly writer: SnapshotWriter;
  readonly room: SnapshotRoom;
  readonly guard: WriteGuard;
  /** Whether the engine is closed (no compaction starts then). */
  closed(): boolean;
  /** Throws 503 unless the engine is open and takes writes. */
  assertWritable(action: string): void;
}

const KEEP_ROOM = "keep room for the next snapshot";

/** Schedules one engine's compactions and holds its writes while one needs the reserve's room. */
export class Compactor {
  #snapshotting: Promise<void> | null = null;
  /**
   * Set while a snapshot uses the reserve's room: writes wait for it before they touch memory,
   * so that snapshot holds none whose log round is yet to come (it would need the room twice).
   */
  #compacting: Promise<void> | null = null;

  /** Compacts with `parts`; starts idle. */
  constructor(private readonly parts: CompactorParts) {}

  /** The compaction under way (or a write holding compactions off), null for none. */
  get snapshotting(): Promise<void> | null {
    return this.#snapshotting;
  }

  /** Whether a snapshot uses the reserve's room: writes wait ({@link compactionDone}). */
  get compacting(): boolean {
    return this.#compacting !== null;
  }

  /** Waits until no snapshot uses the reserve's room (another may begin as one ends). */
  async compactionDone(): Promise<void> {
    while (this.#compacting !== null) await this.#compacting;
  }

  /** A log round failed with `err`: one that filled the disk tells the room the node has. */
  logFailed(err: Error): void {
    // Not while a snapshot runs: its temporary file, of unknown size, holds part of the room.
    if (isNoSpace(err) && this.#snapshotting === null) this.parts.room.learnBudget();
  }

  /** Starts a snapshot in the background when the log or the data asks for one. */
  compactIfDue(): void {
    const { guard, writer, room } = this.parts;
    if (this.parts.closed() || this.#snapshotting || guard.health.state !== "writable") return;
    if (!writer.logToCut) return;
    if (!writer.logDue && !room.outgrowsReserve() && !room.logNearlyFull()) return;
    // With the newest changes, when the disk is not short of room: a watcher a few seconds
    // behind when a kill -9 follows the cut still finds them (change_recovery.ts).
    this.#snapshotting = this.compact(room.logNearlyFull() ? false : "periodic")
      .catch((err) => {
        if (!(err instanceof Error)) throw err;
        // The log keeps everything, but a disk that cannot take a snapshot (or hold the room
        // for the next one) is about to refuse the log too: stop taking writes now; the
        // repair retries with the reserve's room.
        guard.failed(compactionFailure(err), err, false);
        writer.postpone();
      })
      .finally(() => {
        this.#snapshotting = null;
        // Rounds written meanwhile may have made another one due.
        this.compactIfDue();
      });
  }

  /**
   * Makes room before a write that needs it ({@link SnapshotRoom.needsRoom}): grows the reserve
   * for the data as the write leaves it (an overwrite adds only its growth), and cuts the log
   * first when the file system has not the room for the write's `line` (lines queued and not
   * yet written counted). Once logged, a write that left a log filling the disk no room for the
   * snapshot that compacts it would leave the node read-only for good (found by review: a 7 kB
   * PUT on a nearly full disk). A write that does not fit even then is refused (503) with the
   * node read-only, etcd's NOSPACE alarm, until its repair finds it holds the room for the data
   * it has.
   *
   * Returns with writes and compactions held (`#compacting`, `#snapshotting`): the caller applies
   * the write and appends its line, then calls the release it got. Held from before `statfs` to
   * the append, so nothing starts between the check and the write (found by review: a snapshot
   * begun meanwhile had its state reset under it, and acknowledged writes were lost).
   */
  async makeRoomFor(growth: () => number, line: number, action: string): Promise<() => void> {
    const { guard, writer, room } = this.parts;
    for (let compacted = false;; compacted = true) {
      while (this.#snapshotting !== null || this.#compacting !== null) {
        await this.#snapshotting;
        await this.compactionDone();
      }
      this.parts.assertWritable(action);
      const held = Promise.withResolvers<void>();
      this.#compacting = this.#snapshotting = held.promise;
      const release = () => {
        if (this.#compacting === held.promise) this.#compacting = this.#snapshotting = null;
        held.resolve();
      };
      try {
        const { data, grow, left, pending, needs, free } = await room.check(growth, line);
        this.parts.assertWritable(action);
        if (free === null || needs <= free) {
          await this.#growReserve(data, pending, action);
          return release;
        }
        // A log with records to cut: the snapshot frees their room, then look again.
        if (!compacted && writer.logToCut) {
          release();
          await this.#compactNow(action);
          continue;
        }
        const err = new Error(
          `No space left on device for a write of ${line} bytes: its log line, ${grow} more bytes ` +
            `of ${RESERVE_FILE} for the next snapshot and ${left} to spare need ${needs}, the ` +
            `file system has ${free} free`,
        );
        guard.failed(KEEP_ROOM, err, false);
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
      await this.compactTracked();
    } catch (err) {
      if (!(err instanceof Error) || err instanceof TypeError) throw err;
      this.parts.guard.failed(compactionFailure(err), err, false);
      throw new RingkvError(
        "unavailable",
        `Cannot ${action}: cutting the log to make room for it failed: ${err.message}`,
      );
    }
  }

  /** Grows the reserve for `data`, `pending` log bytes left free (writes and compactions held). */
  async #growReserve(data: number, pending: number, action: string): Promise<void> {
    try {
      await this.parts.room.fitReserve(data, pending);
    } catch (err) {
      if (!(err instanceof ReserveShortError)) throw err;
      this.parts.guard.failed(KEEP_ROOM, err, false);
      throw new RingkvError(
        "unavailable",
        `Cannot ${action}: it would leave no room for the next snapshot (${err.message}); ` +
          "free space in this node's file system, or write less",
      );
    }
    this.parts.assertWritable(action);
  }

  /** Makes a start that cannot hold its reserve read-only; the repair compacts to make room. */
  async startReserve(): Promise<void> {
    await this.parts.room.fitReserve().catch((err) => {
      if (!(err instanceof ReserveShortError)) throw err;
      this.parts.guard.failed(KEEP_ROOM, err, false);
    });
  }

  /**
   * A snapshot (which cuts the log; with `recent`, its marker carries the newest changes when they
   * fit), then the reserve sized for it; when the snapshot fails (no
   * room: a log that filled the disk leaves none), again in the room of the reserve (at once,
   * once the log has filled the disk: a first try would take the room the log's appends need).
   */
  async compact(recent: RecentChanges = false): Promise<void> {
    const { writer, room, reserve } = this.parts;
    if (!room.logFilledDisk) {
      try {
        // The newest changes take room no reserve counts: without them when they do not fit.
        await writer.snapshot(recent).catch((err) => {
          if (!recent) throw err;
          return writer.snapshot(false);
        });
      } catch (err) {
        if (reserve.bytes === 0) throw err;
        return await this.#snapshotInReserve();
      }
      return await room.fitReserve();
    }
    await this.#snapshotInReserve();
  }

  /** {@link compact} at close; a failure is one {@link ShutdownSnapshotError}. */
  compactAtClose(): Promise<void> {
    // The newest changes ride in the log's marker for watchers that had not read them yet
    // (change_recovery.ts).
    return this.compact("shutdown").catch((err) => {
      // Best effort: a reserve the snapshot used is held again at the next start otherwise.
      if (err instanceof ReserveShortError) return;
      // The disk's refusals (full, read-only, failing), not a bug of ours, become one line.
      if (!(err instanceof Error) || err instanceof TypeError) throw err;
      throw new ShutdownSnapshotError(err);
    });
  }

  /** {@link compact}, known as the compaction under way (`snapshotting`) until it settles. */
  compactTracked(): Promise<void> {
    const compaction = this.compact();
    this.#snapshotting = compaction.catch(() => {}).finally(() => this.#snapshotting = null);
    return compaction;
  }

  /**
   * Deletes the reserve, writes the snapshot in its room, cuts the log and holds the reserve
   * again, with no log round meanwhile: appends that took the room would leave the snapshot
   * none, and then the node nothing to compact its log with. Writes wait (as on a slow disk).
   */
  async #snapshotInReserve(): Promise<void> {
    const { wal } = this.parts;
    const compacted = Promise.withResolvers<void>();
    this.#compacting = compacted.promise;
    try {
      // Writes logged before the gate go out as usual; a failure is a failed round as ever.
      await wal.flush();
      await this.#snapshotInReserveNow();
    } catch (err) {
      // Read-only before the waiting writes go on: they must not take the reserve's room.
      if (err instanceof Error) this.parts.guard.failed(compactionFailure(err), err, false);
      throw err;
    } finally {
      this.#compacting = null;
      compacted.resolve();
    }
  }

  #snapshotInReserveNow(): Promise<void> {
    const { wal, reserve, writer, room } = this.parts;
    return wal.exclusive(async () => {
      await reserve.release();
      // Writes wait (#compacting) and no round runs during the task: a line queued anyway
      // is written by this one, after the snapshot has taken its room.
      await writer.snapshotExclusive();
      await room.fitReserve();
    });
  }
}

/** What a failed compaction says it could not do. */
function compactionFailure(err: Error): string {
  if (err instanceof ReserveShortError) return KEEP_ROOM;
  return /wal\.jsonl/.test(err.message) ? `cut ${FILES.wal}` : `write ${FILES.snapshot}`;
}
