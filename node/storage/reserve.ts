/**
 * `snapshot.reserve`: space the node holds in its data directory for the snapshot that
 * compacts the log. A log that fills the file system leaves no room for that snapshot (it
 * writes `snapshot.json.tmp`, about the size of the data, before the log can be cut); deleting
 * the reserve makes the room, and it is written again once the log is cut (docs/storage.md,
 * "A full or failing disk"). CockroachDB's automatic ballast file is the same idea; here it
 * is sized to the data and used by the node itself.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
 * import { RESERVE_FILE, SpaceReserve } from "./reserve.ts";
 * const disk = createFakeDisk();
 * const reserve = await SpaceReserve.open(disk);
 * await reserve.resize(4096);
 * assert(disk.bytes(RESERVE_FILE)?.length === 4096);
 * await reserve.release();
 * assert(disk.bytes(RESERVE_FILE) === null && reserve.bytes === 0);
 * ```
 */
import type { Disk } from "./disk.ts";

/** The reserve's file name in the data directory. */
export const RESERVE_FILE = "snapshot.reserve";

/** The smallest reserve by default: room for a first snapshot and the log's first line. */
export const DEFAULT_RESERVE_MIN_BYTES = 64 * 1024;

const CHUNK_BYTES = 1 << 20;

/**
 * The reserve for data whose snapshot takes about `dataBytes`: `needed`, the least the next
 * snapshot needs (the data, and a quarter of `minBytes` for the snapshot's first and last lines
 * and the log's first line), and `wanted`, with room for the data to grow by half before a
 * snapshot must grow it (so a growing store is not snapshotted every few writes). Both are 0
 * when `minBytes` is 0: no reserve.
 */
export function reserveFor(
  dataBytes: number,
  minBytes: number,
): { needed: number; wanted: number } {
  if (minBytes <= 0) return { needed: 0, wanted: 0 };
  return {
    needed: Math.ceil(dataBytes + minBytes / 4),
    wanted: Math.ceil(dataBytes * 1.5) + minBytes,
  };
}

/** Whether a disk error is ENOSPC (Deno's errors carry the errno's name in `code`). */
export function isNoSpace(err: unknown): boolean {
  return (err as { code?: unknown } | null)?.code === "ENOSPC";
}

/** The file system has not the room the reserve should hold (ENOSPC while growing it). */
export class ReserveShortError extends Error {
  /**
   * `needed`: the least the next snapshot needs (the data and a quarter of `--reserve-min-bytes`);
   * `forLog`: the room to write beside it, given back to the log (half of that flag); `held`:
   * what the reserve could hold; `cause`: the disk's error; `pending`: the log lines about to be
   * written, kept free too.
   */
  constructor(
    readonly needed: number,
    readonly forLog: number,
    readonly held: number,
    cause: Error,
    readonly pending = 0,
  ) {
    const lines = pending > 0 ? ` and ${pending} for the lines about to be logged` : "";
    super(
      `grow ${RESERVE_FILE} to the ${needed} bytes the next snapshot needs, plus ${
        forLog + pending
      } for the log (half of --reserve-min-bytes${lines}; it could hold ${held}): ${cause.message}`,
      { cause },
    );
    this.name = "ReserveShortError";
  }
}

/** Holds `snapshot.reserve` at a size; releases it when a snapshot needs the room. */
export class SpaceReserve {
  #bytes: number;

  private constructor(readonly disk: Disk, bytes: number) {
    this.#bytes = bytes;
  }

  /** The reserve as the directory holds it (none: 0 bytes). */
  static async open(disk: Disk): Promise<SpaceReserve> {
    return new SpaceReserve(disk, (await disk.size(RESERVE_FILE)) ?? 0);
  }

  /** Bytes held. */
  get bytes(): number {
    return this.#bytes;
  }

  /**
   * Grows (by writing real bytes: a sparse file would hold no space) or cuts the reserve to
   * `target` bytes. A grow that fails keeps what it wrote and throws the disk's error (ENOSPC:
   * the file system has less room than the next snapshot needs). A crash that loses part of
   * the file only makes the next start write it again.
   */
  async resize(target: number): Promise<void> {
    await this.refresh();
    if (target === this.#bytes) return;
    if (target === 0) return await this.release();
    if (target < this.#bytes) {
      await this.disk.truncate(RESERVE_FILE, target);
      this.#bytes = target;
      return;
    }
    try {
      const chunk = filler();
      while (this.#bytes < target) {
        const n = Math.min(chunk.length, target - this.#bytes);
        await this.disk.append(RESERVE_FILE, chunk.subarray(0, n));
        this.#bytes += n;
      }
      // Closes the file the appends kept open (a node near its fd limit needs every one).
      await this.disk.truncate(RESERVE_FILE, this.#bytes);
    } catch (err) {
      // A write cut short by ENOSPC may have kept part of its chunk.
      this.#bytes = (await this.disk.size(RESERVE_FILE).catch(() => null)) ?? this.#bytes;
      throw err;
    }
  }

  /**
   * Reads the size the file has now: one deleted or cut by hand would otherwise be counted as
   * held, never written again, and its room counted twice.
   */
  async refresh(): Promise<void> {
    this.#bytes = (await this.disk.size(RESERVE_FILE)) ?? 0;
  }

  /** Deletes the reserve, giving its space to the file system. */
  async release(): Promise<void> {
    await this.disk.remove(RESERVE_FILE);
    this.#bytes = 0;
  }
}

/**
 * 1 MiB that does not compress (a compressing file system would keep zeros in no space, and
 * a block repeated within its records, as btrfs's 128 KiB, in half).
 */
function filler(): Uint8Array {
  const chunk = new Uint8Array(CHUNK_BYTES);
  // getRandomValues fills at most 64 KiB per call.
  for (let at = 0; at < chunk.length; at += 65536) {
    crypto.getRandomValues(chunk.subarray(at, at + 65536));
  }
  return chunk;
}
