/**
 * A {@link Disk} that times every fsync (`sync`, and the whole atomic write of a snapshot
 * or map) into a histogram, for the node's `/metrics`. Wraps any disk; the engine does
 * not know.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
 * import { timedDisk } from "./timed_disk.ts";
 * import { Histogram } from "../../shared/prom.ts";
 * const fsync = new Histogram("demo_fsync_seconds", "fsync.", ["op"]);
 * const disk = timedDisk(createFakeDisk(), fsync);
 * await disk.append("wal.jsonl", new Uint8Array([1]));
 * await disk.sync("wal.jsonl");
 * assert(fsync.lines().some((l) => l.startsWith('demo_fsync_seconds_count{op="sync"} 1')));
 * ```
 */
import type { Histogram } from "../../shared/prom.ts";
import type { Disk } from "./disk.ts";

/** `disk` with its `sync` and `writeAtomic` timed into `histogram` (label `op`). */
export function timedDisk(disk: Disk, histogram: Histogram): Disk {
  const timed = async <T>(op: string, run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    const result = await run();
    histogram.observe({ op }, (performance.now() - started) / 1000);
    return result;
  };
  return {
    read: (name, range) => disk.read(name, range),
    append: (name, bytes) => disk.append(name, bytes),
    sync: (name) => timed("sync", () => disk.sync(name)),
    writeAtomic: (name, data) => timed("write_atomic", () => disk.writeAtomic(name, data)),
    truncate: (name, size) => disk.truncate(name, size),
    remove: (name) => disk.remove(name),
    size: (name) => disk.size(name),
    freeBytes: () => disk.freeBytes(),
    close: () => disk.close(),
  };
}
