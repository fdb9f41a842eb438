/**
 * The write-ahead log writer with group commit: lines appended while an fsync runs wait
 * for the next round, and one append + one fsync covers every line of a round. Each
 * line gets a sequence number; {@link Wal.durable} resolves once it is on disk.
 *
 * It can also cut the log after a snapshot: {@link Wal.startTail} begins keeping the
 * bytes appended from then on, and {@link Wal.replaceWithTail} (run between rounds)
 * atomically replaces the file with just those bytes.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
 * import { encodeLine } from "./log_format.ts";
 * import { Wal } from "./wal.ts";
 * const disk = createFakeDisk();
 * const wal = new Wal(disk, "wal.jsonl", 0);
 * const seqs = [1, 2, 3].map((n) => wal.append(encodeLine({ n })));
 * await wal.durable(seqs[2]!);
 * assert(disk.syncs("wal.jsonl") < 3);
 * ```
 */
import type { Disk } from "./disk.ts";
import { concatBytes } from "../../shared/bytes.ts";
import { RingkvError } from "../../shared/errors.ts";

interface Deferred {
  promise: Promise<void>;
  resolve: () => void;
  reject: (err: unknown) => void;
}

/** When a wait began: wall ms (reported) and monotonic ms (measured). */
interface Waiting {
  since: number;
  at: number;
}

function waitingNow(): Waiting {
  return { since: Date.now(), at: performance.now() };
}

function deferred(): Deferred {
  const d = Promise.withResolvers<void>();
  // Nobody may be waiting on a round that fails; that must not crash the process.
  d.promise.catch(() => {});
  return d;
}

/** Appends lines to one log file, fsync'ing them in rounds. */
export class Wal {
  #queue: Uint8Array[] = [];
  #unwritten = 0;
  #lastSeq = 0;
  #durableSeq = 0;
  /** Resolves when the round being gathered is durable. */
  #gathering = deferred();
  /** The round being written: its last sequence number and its promise. */
  #writing: { lastSeq: number; done: Deferred } | null = null;
  #loop: Promise<void> | null = null;
  #tasks: (() => Promise<void>)[] = [];
  #tail: Uint8Array[] | null = null;
  #failure: Error | null = null;
  /** Sequence numbers of the rounds {@link reopen} cut off: never durable. */
  #lost: { after: number; upTo: number; error: Error } | null = null;
  /** The log write under way: when its oldest line was queued (a cut: when it began). */
  #busy: Waiting | null = null;
  /** When the oldest line still queued for the next round was appended. */
  #queuedAt: Waiting | null = null;

  /** `size` is the file's current length. */
  constructor(readonly disk: Disk, readonly name: string, private size: number) {}

  /** Bytes in the file (written rounds only). */
  get bytes(): number {
    return this.size;
  }

  /**
   * How long the oldest line not yet durable has waited (`ms`, on the monotonic clock) and
   * since when (`since`, wall ms), counted from its append, so a line queued behind a slow
   * round counts that round too; a cut counts from its start. Null when nothing waits.
   */
  busy(): { since: number; ms: number } | null {
    const busy = this.#busy;
    const queued = this.#queuedAt;
    const oldest = busy === null || (queued !== null && queued.at < busy.at) ? queued : busy;
    return oldest === null ? null : { since: oldest.since, ms: performance.now() - oldest.at };
  }

  /** Called after each durable round (e.g. to start a snapshot). */
  onRound: (lastSeq: number) => void = () => {};

  /** Told the disk's error when a round fails; appends are refused until {@link reopen}. */
  onFailure: (err: Error) => void = () => {};

  /**
   * After a failed round: cuts the file back to its last durable round (a torn or
   * unsynced tail must not sit in the middle of the log once appends resume) and takes
   * appends again. Lines of the failed rounds are gone; their waiters were refused.
   */
  async reopen(): Promise<void> {
    if (!this.#failure) return;
    await this.#loop;
    await this.disk.truncate(this.name, this.size);
    this.#lost = { after: this.#durableSeq, upTo: this.#lastSeq, error: this.#failure };
    this.#durableSeq = this.#lastSeq;
    this.#gathering = deferred();
    this.#writing = null;
    this.#queue = [];
    this.#unwritten = 0;
    this.#queuedAt = null;
    this.#failure = null;
  }

  /** Bytes appended but not yet written to the file (queued, or in a round's write). */
  get unwrittenBytes(): number {
    return this.#unwritten;
  }

  /** Queues a line; returns its sequence number. Throws if the log has failed. */
  append(line: Uint8Array): number {
    this.assertHealthy();
    this.#unwritten += line.length;
    const seq = ++this.#lastSeq;
    this.#queuedAt ??= waitingNow();
    this.#queue.push(line);
    this.#kick();
    return seq;
  }

  /** Throws the error that broke the log, if any. */
  assertHealthy(): void {
    if (this.#failure) throw this.#failure;
  }

  /** Resolves once the line with sequence number `seq` is durable. */
  durable(seq: number): Promise<void> {
    if (this.#failure) return Promise.reject(this.#failure);
    const lost = this.#lost;
    if (lost && seq > lost.after && seq <= lost.upTo) return Promise.reject(lost.error);
    if (seq <= this.#durableSeq) return Promise.resolve();
    if (this.#writing && seq <= this.#writing.lastSeq) return this.#writing.done.promise;
    return this.#gathering.promise;
  }

  /** Resolves once every line appended so far is durable. */
  flush(): Promise<void> {
    // Lines of rounds that failed were refused to their writers and never become durable.
    const lost = this.#lost;
    return this.durable(lost !== null && this.#lastSeq <= lost.upTo ? lost.after : this.#lastSeq);
  }

  /** Starts keeping the bytes of rounds written from now on. */
  startTail(): void {
    this.#tail = [];
  }

  /** Stops keeping bytes (the snapshot that wanted them failed). */
  stopTail(): void {
    this.#tail = null;
  }

  /** Between rounds, replaces the file with `head` and the bytes kept since {@link startTail}. */
  replaceWithTail(head: Uint8Array = new Uint8Array(0)): Promise<void> {
    return this.exclusive(() => this.replaceNow(head));
  }

  /**
   * Runs `task` between rounds: no line is written while it runs (appends wait for the round
   * after it, and count the wait as {@link busy}). A task must not wait on the log itself.
   */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    const done = Promise.withResolvers<T>();
    this.#tasks.push(() => task().then(done.resolve, done.reject));
    this.#kick();
    return done.promise;
  }

  /**
   * Inside an {@link exclusive} task: writes the lines queued so far as a round now, and
   * throws its error when it fails (their writers are refused, as in any failed round).
   */
  async roundNow(): Promise<void> {
    this.assertHealthy();
    if (this.#queue.length === 0) return;
    this.#queuedAt = null;
    await this.#round();
    this.assertHealthy();
  }

  /**
   * Inside an {@link exclusive} task, after a snapshot it wrote: replaces the file with `head`
   * and the bytes of the rounds {@link roundNow} wrote since {@link startTail}.
   */
  async replaceNow(head: Uint8Array): Promise<void> {
    try {
      this.assertHealthy();
      const bytes = concatBytes([head, ...(this.#tail ?? [])]);
      await this.disk.writeAtomic(this.name, bytes);
      this.size = bytes.length;
    } finally {
      this.#tail = null;
    }
  }

  #kick(): void {
    this.#loop ??= this.#run().finally(() => {
      this.#loop = null;
      if (!this.#failure && (this.#queue.length > 0 || this.#tasks.length > 0)) this.#kick();
    });
  }

  async #run(): Promise<void> {
    // Lines appended in the same turn (a batch's entries, accepted one by one) share a round.
    await Promise.resolve();
    while (this.#queue.length > 0 || this.#tasks.length > 0) {
      const task = this.#tasks.shift();
      // A round takes the whole queue: its wait began with its oldest line.
      this.#busy = task ? waitingNow() : this.#queuedAt ?? waitingNow();
      if (!task) this.#queuedAt = null;
      try {
        await (task ? task() : this.#round());
      } finally {
        this.#busy = null;
      }
    }
  }

  async #round(): Promise<void> {
    const batch = concatBytes(this.#queue);
    this.#queue = [];
    const round = { lastSeq: this.#lastSeq, done: this.#gathering };
    this.#gathering = deferred();
    this.#writing = round;
    try {
      try {
        await this.disk.append(this.name, batch);
      } finally {
        this.#unwritten = Math.max(0, this.#unwritten - batch.length);
      }
      await this.disk.sync(this.name);
    } catch (err) {
      // 503: the write was not made durable and the node will refuse writes for a while.
      this.#failure = new RingkvError(
        "unavailable",
        `Cannot write ${this.name}: ${(err as Error).message}; ` +
          "later writes are refused until the log is cut back to its last durable record",
      );
      round.done.reject(this.#failure);
      this.#gathering.reject(this.#failure);
      this.#queue = [];
      this.#unwritten = 0;
      this.#queuedAt = null;
      this.onFailure(err as Error);
      return;
    }
    this.size += batch.length;
    this.#tail?.push(batch);
    this.#durableSeq = round.lastSeq;
    this.#writing = null;
    round.done.resolve();
    this.onRound(round.lastSeq);
  }
}
