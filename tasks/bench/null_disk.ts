/**
 * A disk that keeps nothing (benches only): measures the engine's work without I/O.
 *
 * @module
 */
import type { Disk } from "../../node/storage/disk.ts";

/** A {@link Disk} whose writes vanish and whose reads find nothing. */
export function nullDisk(): Disk {
  const none = () => Promise.resolve();
  return {
    read: () => Promise.resolve(null),
    append: none,
    sync: none,
    writeAtomic: none,
    truncate: none,
    remove: none,
    size: () => Promise.resolve(null),
    freeBytes: () => Promise.resolve(null),
    close: none,
  };
}
