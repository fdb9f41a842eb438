/**
 * An in-memory {@link Disk} for tests. It models what a crash keeps: file contents
 * survive only up to their last `sync`, and names (creations, renames, removals) only
 * up to the last directory fsync (which `writeAtomic` and `remove` do). Tests can count
 * syncs, crash it, make it fail after some number of operations, cut bytes, flip bytes or single
 * bits, fill it
 * (appends past its capacity write what fits, then fail as ENOSPC does), fail fsyncs and
 * fail reads of a file (EIO).
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { createFakeDisk } from "./fake_disk.ts";
 * const disk = createFakeDisk();
 * await disk.writeAtomic("wal.jsonl", new Uint8Array(0));
 * await disk.append("wal.jsonl", new TextEncoder().encode("kept\n"));
 * await disk.sync("wal.jsonl");
 * await disk.append("wal.jsonl", new TextEncoder().encode("lost\n"));
 * const after = disk.crash();
 * assert(new TextDecoder().decode(after.bytes("wal.jsonl")!) === "kept\n");
 * ```
 */
import type { ByteRange, Disk } from "../../node/storage/disk.ts";
import { TEMP_SUFFIX } from "../../node/storage/disk.ts";

/** A file's contents: what reads see, and what the last sync made durable. */
interface Inode {
  data: Uint8Array;
  synced: Uint8Array;
}

/** Options of {@link createFakeDisk}. */
export interface FakeDiskOptions {
  /** Every operation after this many throws, as if the machine stopped there. */
  failAfterOps?: number;
}

/** An in-memory disk with crash and damage controls. */
export interface FakeDisk extends Disk {
  /** How many `sync` calls (all files) have completed, or of one file. */
  syncs(name?: string): number;
  /** A new disk holding only what was durable: synced bytes under durable names. */
  crash(options?: FakeDiskOptions): FakeDisk;
  /** The same files, as a fresh disk (a clean restart). */
  reopen(options?: FakeDiskOptions): FakeDisk;
  /** Cuts a file to its first `length` bytes (durably, as if the crash hit there). */
  cut(name: string, length: number): void;
  /** Flips every bit of the byte at `offset` (durably). */
  flip(name: string, offset: number): void;
  /**
   * Flips the bits of `mask` in the byte at `offset` (durably): one bit of rot can leave a
   * line valid UTF-8 and JSON (`h` ^ 0x02 is `j`), where {@link flip} never does.
   */
  flipBits(name: string, offset: number, mask: number): void;
  /** The current bytes of a file, or null. */
  bytes(name: string): Uint8Array | null;
  /** Names of the current files, sorted. */
  names(): string[];
  /** Caps the bytes all files may hold (undefined: no cap); appends past it fail part-way. */
  setCapacity(bytes: number | undefined): void;
  /** Makes `freeBytes()` answer null, as a file system that does not tell (`true`). */
  hideFreeBytes(hidden: boolean): void;
  /** Makes the next `count` fsyncs fail (their data stays unsynced, as after EIO). */
  failSyncs(count: number): void;
  /** Makes reads of `name` fail as EIO does (`true`), or work again (`false`). */
  failReads(name: string, failing: boolean): void;
}

/** The message of a read or fsync the fake disk fails, as Linux words EIO. */
export const IO_ERROR = "Input/output error (os error 5)";

/** The message of a write the fake disk has no room for, as Linux words ENOSPC. */
export const NO_SPACE = "No space left on device (os error 28)";

/** An empty fake disk. */
export function createFakeDisk(options: FakeDiskOptions = {}): FakeDisk {
  return new MemoryDisk(new Map(), new Map(), options);
}

class MemoryDisk implements FakeDisk {
  #ops = 0;
  #capacity: number | undefined;
  #failingSyncs = 0;
  #statfsUnknown = false;
  readonly #failingReads = new Set<string>();
  readonly #syncCounts = new Map<string, number>();

  constructor(
    /** Names as reads see them. */
    readonly live: Map<string, Inode>,
    /** Names as they survive a crash (updated by directory fsyncs). */
    readonly durable: Map<string, Inode>,
    readonly options: FakeDiskOptions,
  ) {}

  read(name: string, range?: ByteRange): Promise<Uint8Array | null> {
    return this.#op(`read ${name}`, () => {
      if (this.#failingReads.has(name)) throw new Error(`${IO_ERROR}: read '${name}'`);
      const data = this.live.get(name)?.data;
      if (!data) return null;
      return range ? data.slice(range.offset, range.offset + range.length) : data.slice();
    });
  }

  append(name: string, bytes: Uint8Array): Promise<void> {
    return this.#op(`append ${name}`, () => {
      const inode = this.live.get(name) ?? this.#create(name);
      const room = this.#capacity === undefined ? bytes.length : this.#capacity - this.#used();
      inode.data = concat(inode.data, bytes.subarray(0, Math.max(0, room)));
      if (room < bytes.length) {
        // As Deno's error for ENOSPC carries it.
        throw Object.assign(new Error(`Cannot append to ${name}: ${NO_SPACE}`), { code: "ENOSPC" });
      }
    });
  }

  sync(name: string): Promise<void> {
    return this.#op(`sync ${name}`, () => {
      const inode = this.#existing(name);
      if (this.#failingSyncs > 0) {
        this.#failingSyncs--;
        throw new Error(`Cannot sync ${name}: ${IO_ERROR}`);
      }
      inode.synced = inode.data.slice();
      this.#syncCounts.set(name, (this.#syncCounts.get(name) ?? 0) + 1);
    });
  }

  async writeAtomic(name: string, data: Uint8Array | AsyncIterable<Uint8Array>): Promise<void> {
    const temp = name + TEMP_SUFFIX;
    await this.#op(`create ${temp}`, () => this.#create(temp));
    try {
      if (data instanceof Uint8Array) await this.append(temp, data);
      else for await (const chunk of data) await this.append(temp, chunk);
      await this.sync(temp);
    } catch (err) {
      // As the real disk does: a failed temp file must not keep the space it took.
      this.live.delete(temp);
      throw err;
    }
    await this.#op(`rename ${temp}`, () => {
      this.live.set(name, this.#existing(temp));
      this.live.delete(temp);
      this.#syncDir();
    });
  }

  truncate(name: string, size: number): Promise<void> {
    return this.#op(`truncate ${name}`, () => {
      const inode = this.#existing(name);
      inode.data = inode.data.slice(0, size);
      inode.synced = inode.data.slice();
    });
  }

  remove(name: string): Promise<void> {
    return this.#op(`remove ${name}`, () => {
      if (this.live.delete(name)) this.#syncDir();
    });
  }

  size(name: string): Promise<number | null> {
    return this.#op(`size ${name}`, () => this.live.get(name)?.data.length ?? null);
  }

  hideFreeBytes(hidden: boolean): void {
    this.#statfsUnknown = hidden;
  }

  freeBytes(): Promise<number | null> {
    return this.#op(
      "statfs",
      () =>
        this.#capacity === undefined || this.#statfsUnknown ? null : this.#capacity - this.#used(),
    );
  }

  close(): Promise<void> {
    return Promise.resolve();
  }

  syncs(name?: string): number {
    if (name !== undefined) return this.#syncCounts.get(name) ?? 0;
    let total = 0;
    for (const count of this.#syncCounts.values()) total += count;
    return total;
  }

  crash(options: FakeDiskOptions = {}): FakeDisk {
    const files = new Map<string, Inode>();
    for (const [name, inode] of this.durable) {
      files.set(name, { data: inode.synced.slice(), synced: inode.synced.slice() });
    }
    return new MemoryDisk(files, new Map(files), options);
  }

  reopen(options: FakeDiskOptions = {}): FakeDisk {
    return new MemoryDisk(this.live, this.durable, options);
  }

  cut(name: string, length: number): void {
    const inode = this.#existing(name);
    inode.data = inode.data.slice(0, length);
    inode.synced = inode.data.slice();
  }

  flip(name: string, offset: number): void {
    this.flipBits(name, offset, 0xff);
  }

  flipBits(name: string, offset: number, mask: number): void {
    const inode = this.#existing(name);
    if (offset < 0 || offset >= inode.data.length) {
      throw new RangeError(`Cannot flip byte ${offset} of ${name}: it has ${inode.data.length}`);
    }
    inode.data[offset]! ^= mask;
    inode.synced = inode.data.slice();
  }

  bytes(name: string): Uint8Array | null {
    return this.live.get(name)?.data.slice() ?? null;
  }

  names(): string[] {
    return [...this.live.keys()].sort();
  }

  setCapacity(bytes: number | undefined): void {
    this.#capacity = bytes;
  }

  failSyncs(count: number): void {
    this.#failingSyncs = count;
  }

  failReads(name: string, failing: boolean): void {
    if (failing) this.#failingReads.add(name);
    else this.#failingReads.delete(name);
  }

  #used(): number {
    let total = 0;
    for (const inode of this.live.values()) total += inode.data.length;
    return total;
  }

  #create(name: string): Inode {
    const inode = { data: new Uint8Array(0), synced: new Uint8Array(0) };
    this.live.set(name, inode);
    return inode;
  }

  #existing(name: string): Inode {
    const inode = this.live.get(name);
    if (!inode) throw new Deno.errors.NotFound(`Cannot use ${name}: no such file on the fake disk`);
    return inode;
  }

  #syncDir(): void {
    this.durable.clear();
    for (const [name, inode] of this.live) this.durable.set(name, inode);
  }

  /** Runs one counted operation; past `failAfterOps` the "machine" has stopped. */
  #op<T>(what: string, run: () => T): Promise<T> {
    this.#ops++;
    const limit = this.options.failAfterOps;
    if (limit !== undefined && this.#ops > limit) {
      return Promise.reject(
        new Error(`Cannot ${what}: the fake disk stopped after ${limit} operations`),
      );
    }
    try {
      return Promise.resolve(run());
    } catch (err) {
      return Promise.reject(err);
    }
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
