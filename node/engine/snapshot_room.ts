/**
 * The room on the disk for the next snapshot: sizes `snapshot.reserve` for the data
 * (node/storage/reserve.ts), learns what the file system gives the node once the log fills it,
 * and says when a write or the log could leave the next snapshot without room. It measures and
 * sizes; the compactor (compactor.ts) decides what to do about it.
 *
 * @module
 */
import type { Disk } from "../storage/disk.ts";
import { reserveFor, ReserveShortError, type SpaceReserve } from "../storage/reserve.ts";
import type { Wal } from "../storage/wal.ts";
import { storeEstimate } from "./size_estimates.ts";
import type { SnapshotWriter } from "./snapshot_writer.ts";
import type { Store } from "./store.ts";

/** A write this large may not fit what its log has left: it asks `statfs` first. */
const LARGE_WRITE_BYTES = 64 * 1024;

/** What a {@link SnapshotRoom} measures; `store` is read at each use (a repair replaces it). */
export interface RoomParts {
  readonly disk: Disk;
  readonly wal: Wal;
  readonly store: Store;
  readonly reserve: SpaceReserve;
  /** The reserve's smallest size; 0: no reserve (reserveFor). */
  readonly reserveMinBytes: number;
}

/** What a write needs on the disk ({@link SnapshotRoom.check}), and what the disk has. */
export interface RoomCheck {
  /** About what a snapshot would take once the write is in. */
  data: number;
  /** The reserve's growth for that snapshot. */
  grow: number;
  /** Bytes left to spare beside it (a quarter of the reserve's minimum). */
  left: number;
  /** Its line and the lines queued before it: what the log appends next. */
  pending: number;
  /** All the write needs: `pending`, `grow` and `left`. */
  needs: number;
  /** Free bytes in the file system; null: it does not say. */
  free: number | null;
}

/** Keeps room for the next snapshot of one engine. */
export class SnapshotRoom {
  /**
   * The bytes of log, snapshot and reserve the disk held when the log last filled it (ENOSPC):
   * what the file system gives this node, as far as it knows; null: the log never filled it.
   */
  #spaceBudget: number | null = null;

  /** Measures with the last snapshot's size and scale (`writer`'s). */
  constructor(
    private readonly parts: RoomParts,
    private readonly writer: Pick<SnapshotWriter, "last" | "scale">,
  ) {}

  /** Whether the log has filled the disk since the start (room is then known to be tight). */
  get logFilledDisk(): boolean {
    return this.#spaceBudget !== null;
  }

  /** The log filled the disk: what it, the snapshot and the reserve hold is the node's room. */
  learnBudget(): void {
    if (this.parts.reserveMinBytes <= 0) return;
    const { wal, reserve } = this.parts;
    this.#spaceBudget = wal.bytes + this.writer.last.bytes + reserve.bytes;
  }

  /**
   * Whether a write of `bytes` must first make room: it is large (its log line alone could fill
   * what the log has left), or it could take the data past what the reserve holds for the next
   * snapshot. Cheap: most writes are neither, and take no `statfs`.
   */
  needsRoom(bytes: number): boolean {
    if (this.parts.reserveMinBytes <= 0) return false;
    return bytes >= LARGE_WRITE_BYTES || this.outgrowsReserve(bytes * this.writer.scale);
  }

  /**
   * Whether the data (with `moreBytes` more) may soon not fit in the reserve: a snapshot now (the
   * reserve then grows with it) keeps the reserve larger than any snapshot the log could need.
   */
  outgrowsReserve(moreBytes = 0): boolean {
    const { needed } = reserveFor(this.#dataBytes() + moreBytes, this.parts.reserveMinBytes);
    return needed > this.parts.reserve.bytes;
  }

  /**
   * Whether the log has taken 3/4 of the room the snapshot and the reserve leave it in the space
   * the disk held when the log last filled it: a snapshot now cuts the log before it fills the
   * disk again, which would refuse writes until a repair had cut it.
   */
  logNearlyFull(): boolean {
    if (this.#spaceBudget === null) return false;
    const room = this.#spaceBudget - this.writer.last.bytes - this.parts.reserve.bytes;
    return room > 0 && this.parts.wal.bytes >= room * 0.75;
  }

  /** About what a snapshot of the store would take now. */
  #dataBytes(): number {
    return Math.ceil(storeEstimate(this.parts.store.counts()) * this.writer.scale);
  }

  /**
   * What a write of a `line` of log that adds `growth()` to the data needs on the disk (lines
   * queued and not yet written counted), and the file system's free bytes (`statfs`).
   */
  async check(growth: () => number, line: number): Promise<RoomCheck> {
    const { reserve, reserveMinBytes, disk, wal } = this.parts;
    const data = this.#dataBytes() + Math.ceil(growth() * this.writer.scale);
    const grow = Math.max(0, reserveFor(data, reserveMinBytes).needed - reserve.bytes);
    const left = Math.ceil(reserveMinBytes / 4);
    const free = await disk.freeBytes();
    const pending = line + wal.unwrittenBytes;
    return { data, grow, left, pending, needs: grow + pending + left, free };
  }

  /**
   * Sizes the reserve for the store as it is; at start, and after each snapshot. When the file
   * system has not the room it wants, it keeps what the next snapshot needs and a quarter of the
   * minimum, and gives the rest (at least another quarter) back to the log; throws
   * {@link ReserveShortError} when it cannot hold that much. `pending`: bytes the log is about
   * to append (a write's line and those queued before it), left free besides.
   */
  async fitReserve(dataBytes = this.#dataBytes(), pending = 0): Promise<void> {
    const { reserve, reserveMinBytes, disk } = this.parts;
    await reserve.refresh();
    const { needed, wanted } = reserveFor(dataBytes, reserveMinBytes);
    const quarter = Math.ceil(reserveMinBytes / 4);
    // What is kept free: the log's next lines would otherwise meet ENOSPC after their write was
    // applied (found by review: a 4 kB PUT with 9 kB free, the reserve grown to the last byte).
    const spare = quarter + pending;
    try {
      // A reserve that took the last byte would leave the next log round none, and that write
      // would be refused: it grows to `wanted` only when a quarter of the minimum is left.
      let target = wanted;
      if (reserve.bytes < wanted) {
        const free = await disk.freeBytes();
        if (free === null) {
          // The file system does not say: a quarter more is written, then cut back.
          await reserve.resize(wanted + quarter);
        } else if (reserve.bytes + free - spare < wanted) {
          target = needed + quarter;
          if (reserve.bytes + free - spare < target) {
            const cause = new Error(
              `No space left on device: the file system has ${free} bytes free`,
            );
            throw new ReserveShortError(needed, 2 * quarter, reserve.bytes + free, cause, pending);
          }
        }
      }
      await reserve.resize(target);
    } catch (err) {
      if (!(err instanceof Error) || err instanceof ReserveShortError) throw err;
      // Taking writes needs room for the log too: a quarter of the minimum given back to it,
      // and a quarter kept over `needed` so that the next writes do not each take a snapshot.
      if (reserve.bytes >= needed + quarter + spare) return await reserve.resize(needed + quarter);
      throw new ReserveShortError(needed, 2 * quarter, reserve.bytes, err, pending);
    }
  }
}
