/**
 * The node's change log for watchers: every change this node made durable (puts, deletes,
 * expiries, ingested and accepted entries), numbered by this node's own sequence in the
 * order it applied them, with the version the key had here before. Bounded (entries and
 * value bytes): the oldest go first. Held in memory; `boot` names the numbering, which a
 * restart continues when the data directory's log says where it stood (a new `boot` when it
 * cannot: node/engine/change_recovery.ts), so a reader holding positions of another numbering
 * knows they are gone. Drops (a rebalancing's cleanup) are not changes. No I/O; `wait` uses a
 * timer.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { ChangeLog } from "./change_log.ts";
 * const log = new ChangeLog("b1");
 * const stored = { kind: "text" as const, data: "v", hash: 1, contentType: "t", version: "v1" };
 * log.stage(1, [{ key: "a", stored, prev: null }]);
 * assert(log.last === 0);
 * log.durable(1);
 * const page = log.read(0, 10, "");
 * assert(page !== "gone" && page[0]!.key === "a" && page[0]!.seq === 1);
 * ```
 */
import type { Stored } from "./packed.ts";

/** One change as logged. */
export interface Change {
  seq: number;
  key: string;
  stored: Stored;
  /** The version this node held for the key before, if any. */
  prev: string | null;
}

/** A change waiting for its WAL record's fsync. */
export interface StagedChange {
  key: string;
  stored: Stored;
  prev: string | null;
}

/** Bounds of a {@link ChangeLog}. */
export interface ChangeLogLimits {
  maxEntries: number;
  maxBytes: number;
}

/**
 * The default bounds: 10,000 changes or 64 MiB of values, whichever comes first. A change of a
 * 100-byte value holds ~700 B of heap (its entry, its value and version strings): 100,000 took
 * ~70 MB, 70 B per key of a 1,000,000-key node, over the node's memory target (docs/performance.md,
 * "Memory and restart"); 10,000 take ~7 MB. That is 2 s of history at 5,000 writes/s on a node:
 * the proxies read each node's log continuously, and a resume from further back gets `compacted`.
 */
export const CHANGE_LOG_LIMITS: ChangeLogLimits = { maxEntries: 10_000, maxBytes: 64 << 20 };

/** A bounded, ordered log of durable changes. */
export class ChangeLog {
  #entries: Change[] = [];
  #head = 0;
  #seq = 0;
  #bytes = 0;
  #staged: { walSeq: number; changes: StagedChange[] }[] = [];
  #waiters = new Map<() => void, string>();
  /** Closed: waits end at once (see {@link close}). */
  #closed = false;

  /** `boot` names this log's numbering (node/engine/change_recovery.ts picks it at start). */
  constructor(readonly boot: string, private readonly limits = CHANGE_LOG_LIMITS) {}

  /**
   * A log that continues a numbering after a restart: `last` is its newest sequence number,
   * `entries` (contiguous, oldest first, ending at `last`; fewer, or none, when older ones were
   * not kept) what it still holds.
   */
  static continued(
    boot: string,
    last: number,
    entries: readonly Change[],
    limits = CHANGE_LOG_LIMITS,
  ): ChangeLog {
    const log = new ChangeLog(boot, limits);
    log.#seq = last;
    for (const c of entries) {
      log.#entries.push(c);
      log.#bytes += c.stored.data.length + c.key.length;
    }
    log.#trim();
    return log;
  }

  /** The newest sequence number (0: none yet). */
  get last(): number {
    return this.#seq;
  }

  /** The oldest sequence number still held (`last + 1` when none is). */
  get first(): number {
    return this.#head < this.#entries.length ? this.#entries[this.#head]!.seq : this.#seq + 1;
  }

  /** The sequence number the last change staged so far will get (staged ones included). */
  get appended(): number {
    let n = this.#seq;
    for (const { changes } of this.#staged) n += changes.length;
    return n;
  }

  /**
   * The newest changes at or before `upTo`, at most `maxEntries` and about `maxBytes` of keys
   * and values, oldest first (contiguous, ending at `upTo`; none when `upTo` is not held).
   */
  recent(upTo: number, maxEntries: number, maxBytes: number): Change[] {
    if (upTo > this.#seq || upTo < this.first) return [];
    const end = this.#head + (upTo - this.first);
    const out: Change[] = [];
    let bytes = 0;
    for (let i = end; i >= this.#head && out.length < maxEntries; i--) {
      const c = this.#entries[i]!;
      bytes += c.stored.data.length + c.key.length;
      if (bytes > maxBytes) break;
      out.push(c);
    }
    return out.reverse();
  }

  /** Notes changes logged in WAL record `walSeq`; they are readable once it is durable. */
  stage(walSeq: number, changes: StagedChange[]): void {
    if (changes.length > 0) this.#staged.push({ walSeq, changes });
  }

  /** Every staged change up to WAL record `walSeq` is durable: number and publish them. */
  durable(walSeq: number): void {
    let n = 0;
    while (n < this.#staged.length && this.#staged[n]!.walSeq <= walSeq) {
      for (const c of this.#staged[n]!.changes) this.#add(c);
      n++;
    }
    if (n === 0) return;
    const published = this.#staged.slice(0, n);
    this.#staged = this.#staged.slice(n);
    this.#trim();
    // Only readers whose prefix a new change matches: idle watchers cost writes nothing.
    for (const [wake, prefix] of this.#waiters) {
      const matches = (c: StagedChange) => c.key.startsWith(prefix);
      if (prefix === "" || published.some((s) => s.changes.some(matches))) wake();
    }
  }

  /** Forgets staged changes (their WAL records were rolled back). */
  discardStaged(): void {
    this.#staged = [];
  }

  /**
   * Changes after `after` under `prefix`, at most `limit`; "gone" when some were dropped, or
   * when this numbering never reached `after` (a data directory put back from a backup).
   */
  read(after: number, limit: number, prefix: string): Change[] | "gone" {
    if (after < this.first - 1 || after > this.#seq) return "gone";
    const out: Change[] = [];
    const start = this.#head + Math.max(0, after + 1 - this.first);
    for (let i = start; i < this.#entries.length && out.length < limit; i++) {
      const c = this.#entries[i]!;
      if (c.key.startsWith(prefix)) out.push(c);
    }
    return out;
  }

  /**
   * The version each key had here right after change `at` (null: none), from the first
   * later change of the key (durable or staged) or else `current`; "gone" when changes
   * after `at` were dropped.
   */
  versionsAt(
    keys: readonly string[],
    at: number,
    current: (key: string) => string | undefined,
  ): Record<string, string | null> | "gone" {
    if (at < this.first - 1 || at > this.#seq) return "gone";
    const out: Record<string, string | null> = {};
    const wanted = new Set(keys);
    const start = this.#head + Math.max(0, at + 1 - this.first);
    for (let i = start; i < this.#entries.length && wanted.size > 0; i++) {
      const c = this.#entries[i]!;
      if (!wanted.delete(c.key)) continue;
      out[c.key] = c.prev;
    }
    // A change applied in memory but not yet durable is not in the log yet: use its prev.
    for (const { changes } of this.#staged) {
      for (const c of changes) if (wanted.delete(c.key)) out[c.key] = c.prev;
    }
    for (const key of wanted) out[key] = current(key) ?? null;
    return out;
  }

  /**
   * Resolves once a change under `prefix` after `after` is readable (at once when any change
   * after it is, so the caller reads it), or after `ms`, or on `signal`.
   */
  wait(after: number, ms: number, signal?: AbortSignal, prefix = ""): Promise<void> {
    // Past the head too: that position is gone (read says so), whatever comes later.
    if (this.#seq !== after || ms <= 0 || this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#waiters.delete(done);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, ms);
      this.#waiters.set(done, prefix);
      signal?.addEventListener("abort", done, { once: true });
    });
  }

  /**
   * Ends every wait now and every later one at once: a node shutting down answers its readers'
   * long polls (up to 10 s each) instead of holding its exit for them.
   */
  close(): void {
    this.#closed = true;
    for (const wake of [...this.#waiters.keys()]) wake();
  }

  #add(c: StagedChange): void {
    this.#entries.push({ seq: ++this.#seq, key: c.key, stored: c.stored, prev: c.prev });
    this.#bytes += c.stored.data.length + c.key.length;
  }

  #trim(): void {
    const { maxEntries, maxBytes } = this.limits;
    while (
      this.#head < this.#entries.length &&
      (this.#entries.length - this.#head > maxEntries || this.#bytes > maxBytes)
    ) {
      const c = this.#entries[this.#head++]!;
      this.#bytes -= c.stored.data.length + c.key.length;
    }
    // Compact the array once the dropped head is most of it.
    if (this.#head > 1024 && this.#head * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#head);
      this.#head = 0;
    }
  }
}
