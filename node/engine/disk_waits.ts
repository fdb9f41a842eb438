/**
 * Disk writes under way outside the log that requests wait on (cluster.json, acceptor.json),
 * timed so that `/health` can report one that stalls as it does a stalled log round.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { DiskWaits } from "./disk_waits.ts";
 * const waits = new DiskWaits();
 * const saving = waits.track("cluster.json", () => Promise.resolve());
 * assertEquals(waits.oldest()?.file, "cluster.json");
 * await saving;
 * assertEquals(waits.oldest(), null);
 * ```
 */

/** A write under way: its file, since when (wall ms) and for how long (monotonic ms). */
export interface DiskWait {
  file: string;
  since: number;
  ms: number;
}

/** Times the disk writes under way. */
export class DiskWaits {
  readonly #running = new Map<number, { file: string; since: number; at: number }>();
  #next = 0;

  /** Runs `write`, counted as under way on `file` until it settles. */
  track<T>(file: string, write: () => Promise<T>): Promise<T> {
    const id = this.#next++;
    this.#running.set(id, { file, since: Date.now(), at: performance.now() });
    const done = () => this.#running.delete(id);
    try {
      return write().finally(done);
    } catch (err) {
      done();
      throw err;
    }
  }

  /** The write that has been under way longest, or null when none is. */
  oldest(): DiskWait | null {
    let oldest: { file: string; since: number; at: number } | null = null;
    for (const wait of this.#running.values()) {
      if (oldest === null || wait.at < oldest.at) oldest = wait;
    }
    if (oldest === null) return null;
    return { file: oldest.file, since: oldest.since, ms: performance.now() - oldest.at };
  }
}
