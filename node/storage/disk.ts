/**
 * node/storage/ (this folder's main module): the data directory's files behind the Disk
 * interface: log, snapshot, recovery. May import shared/ and the engine's store to load into;
 * never HTTP.
 *
 * The only abstraction over the files of a node's data directory. The engine never
 * touches the file system itself; it gets a {@link Disk}. {@link createDenoDisk} is the
 * real one (and the only code in the project that opens files of the data directory);
 * `fake_disk.ts` is the in-memory one tests crash at any byte.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { createDenoDisk } from "./disk.ts";
 * const dir = await Deno.makeTempDir({ prefix: "ringkv-disk-example-" });
 * const disk = await createDenoDisk(dir);
 * try {
 *   await disk.writeAtomic("node.json", new TextEncoder().encode('{"id":"n1"}\n'));
 *   await disk.append("wal.jsonl", new TextEncoder().encode("line\n"));
 *   await disk.sync("wal.jsonl");
 *   assert((await disk.size("wal.jsonl")) === 5);
 *   // statfs: what the file system can still give (null where it does not say).
 *   const free = await disk.freeBytes();
 *   assert(free === null || free > 0);
 * } finally {
 *   await disk.close();
 *   await Deno.remove(dir, { recursive: true });
 * }
 * ```
 */
import { join } from "@std/path";
import { statfs as statfsCallback } from "node:fs";
import { promisify } from "node:util";

/** statfs(2) of a path (Deno has no API of its own for it; node:fs's is built in). */
const statfs = promisify(statfsCallback);

/** A byte range of a file. */
export interface ByteRange {
  offset: number;
  length: number;
}

/** Flat files in one directory; names are plain file names (no `/`). */
export interface Disk {
  /** The whole file (or `range` of it, shorter at the end), or null when it does not exist. */
  read(name: string, range?: ByteRange): Promise<Uint8Array | null>;
  /** Appends bytes at the end of the file, creating it when missing (not durable yet). */
  append(name: string, bytes: Uint8Array): Promise<void>;
  /** Makes everything appended to the file so far durable (fsync). */
  sync(name: string): Promise<void>;
  /**
   * Replaces the file with `data` atomically: writes `<name>.tmp`, fsyncs it, renames it
   * over `name`, fsyncs the directory. After a crash the file is either old or new.
   */
  writeAtomic(name: string, data: Uint8Array | AsyncIterable<Uint8Array>): Promise<void>;
  /** Cuts the file to `size` bytes and makes that durable. */
  truncate(name: string, size: number): Promise<void>;
  /** Deletes the file durably (no error when it does not exist). */
  remove(name: string): Promise<void>;
  /** The file's size in bytes, or null when it does not exist. */
  size(name: string): Promise<number | null>;
  /**
   * Bytes the file system can still give this process (statfs's available blocks), or null when
   * that is not known.
   */
  freeBytes(): Promise<number | null>;
  /** Releases open files. */
  close(): Promise<void>;
}

/** The suffix of the temporary file {@link Disk.writeAtomic} writes before renaming. */
export const TEMP_SUFFIX = ".tmp";

/** A {@link Disk} over a real directory (created when missing). */
export async function createDenoDisk(dir: string): Promise<Disk> {
  await Deno.mkdir(dir, { recursive: true });
  return new DenoDisk(dir);
}

class DenoDisk implements Disk {
  /** Files kept open for appending, by name. */
  readonly #appending = new Map<string, Deno.FsFile>();

  constructor(readonly dir: string) {}

  async read(name: string, range?: ByteRange): Promise<Uint8Array | null> {
    try {
      if (!range) return await Deno.readFile(join(this.dir, name));
      using file = await Deno.open(join(this.dir, name), { read: true });
      await file.seek(range.offset, Deno.SeekMode.Start);
      return await readUpTo(file, range.length);
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
  }

  async append(name: string, bytes: Uint8Array): Promise<void> {
    let file = this.#appending.get(name);
    if (!file) {
      file = await Deno.open(join(this.dir, name), { append: true, create: true });
      this.#appending.set(name, file);
    }
    // Never a blocking write on this thread, small as a round is: on a stalled disk (frozen,
    // or page-cache writeback throttled) it would stop reads and /health too (issue 16).
    await writeAll(file, bytes);
  }

  async sync(name: string): Promise<void> {
    const open = this.#appending.get(name);
    if (open) return await open.syncData();
    using file = await Deno.open(join(this.dir, name), { read: true, write: true });
    await file.syncData();
  }

  async writeAtomic(name: string, data: Uint8Array | AsyncIterable<Uint8Array>): Promise<void> {
    this.#forget(name);
    const temp = join(this.dir, name + TEMP_SUFFIX);
    try {
      using file = await Deno.open(temp, { write: true, create: true, truncate: true });
      if (data instanceof Uint8Array) await writeAll(file, data);
      else for await (const chunk of data) await writeAll(file, chunk);
      await file.syncData();
    } catch (err) {
      // A half-written temp file on a full disk would keep the space a retry needs.
      await removeIfThere(temp);
      throw err;
    }
    await Deno.rename(temp, join(this.dir, name));
    await this.#syncDir();
  }

  async truncate(name: string, size: number): Promise<void> {
    this.#forget(name);
    using file = await Deno.open(join(this.dir, name), { write: true });
    await file.truncate(size);
    await file.syncData();
  }

  async remove(name: string): Promise<void> {
    this.#forget(name);
    try {
      await Deno.remove(join(this.dir, name));
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return;
      throw err;
    }
    await this.#syncDir();
  }

  async freeBytes(): Promise<number | null> {
    try {
      const { bavail, bsize } = await statfs(this.dir);
      return bavail * bsize;
    } catch {
      return null; // a file system that does not say: the reserve finds its room by ENOSPC
    }
  }

  async size(name: string): Promise<number | null> {
    try {
      return (await Deno.stat(join(this.dir, name))).size;
    } catch (err) {
      if (err instanceof Deno.errors.NotFound) return null;
      throw err;
    }
  }

  close(): Promise<void> {
    for (const name of [...this.#appending.keys()]) this.#forget(name);
    return Promise.resolve();
  }

  /** Closes the append handle of a file that is about to be replaced or cut. */
  #forget(name: string): void {
    this.#appending.get(name)?.close();
    this.#appending.delete(name);
  }

  async #syncDir(): Promise<void> {
    using dir = await Deno.open(this.dir, { read: true });
    await dir.sync();
  }
}

async function writeAll(file: Deno.FsFile, bytes: Uint8Array): Promise<void> {
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}

async function removeIfThere(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
  }
}

async function readUpTo(file: Deno.FsFile, length: number): Promise<Uint8Array> {
  const buffer = new Uint8Array(length);
  let filled = 0;
  while (filled < length) {
    const n = await file.read(buffer.subarray(filled));
    if (n === null) break;
    filled += n;
  }
  return filled === length ? buffer : buffer.slice(0, filled);
}
