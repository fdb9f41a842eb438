/**
 * Whether the node takes writes. A failed log append or fsync, or a failed snapshot,
 * makes the node read-only: writes are refused with 503 `unavailable`, reads go on, and
 * `/health` and `/metrics` say so. The guard then retries the engine's repair (cut the
 * log back, reload, write a snapshot) with backoff until one succeeds, or until the
 * repair finds damage it cannot fix (state `failed`, with the reason).
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { WriteGuard } from "./write_guard.ts";
 * const guard = new WriteGuard({ repair: () => Promise.resolve(), firstRetryMs: 1 });
 * guard.failed("append to wal.jsonl", new Error("No space left on device"), true);
 * assert(guard.health.state === "read-only");
 * guard.close();
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import { RecoveryError } from "../storage/recovery.ts";

/** The node's write state as `/health` reports it. */
export interface WriteHealth {
  /**
   * `failed`: the repair found damage it cannot fix; a person must act (docs/storage.md).
   * `stalled`: writes are taken but wait on a log write that is slow to finish (disk_stall.ts).
   */
  state: "writable" | "stalled" | "read-only" | "failed";
  /** The disk error that made the node read-only (or why it cannot recover, or the stall). */
  reason?: string;
  /** When it stopped taking writes (ms since the epoch). */
  since?: number;
  /** Repairs tried since then. */
  retries: number;
  /** Why the last repair failed (a snapshot that cannot be read, a disk still full). */
  repairError?: string;
}

/** What a {@link WriteGuard} needs. */
export interface WriteGuardOptions {
  /** Makes the disk take writes again; `rollback`: the log must first be cut back. */
  repair: (rollback: boolean) => Promise<void>;
  /** Delay before the first repair, doubled after each failed one (default 250 ms). */
  firstRetryMs?: number;
  /** Longest delay between repairs (default 30 s). */
  maxRetryMs?: number;
  now?: () => number;
  log?: (message: string) => void;
}

/** Refuses writes while the disk is failing and runs the repair with backoff. */
export class WriteGuard {
  #health: WriteHealth = { state: "writable", retries: 0 };
  #rollback = false;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #repairing: Promise<void> | null = null;
  #closed = false;

  /** Starts writable. */
  constructor(private readonly options: WriteGuardOptions) {}

  /** The current write state (a copy). */
  get health(): WriteHealth {
    return { ...this.#health };
  }

  /** Throws 503 `unavailable` naming the disk error unless the node takes writes. */
  assertWritable(action: string): void {
    const { state, reason, since } = this.#health;
    if (state === "writable") return;
    const when = new Date(since ?? 0).toISOString();
    const next = state === "failed"
      ? "it cannot recover by itself (see docs/storage.md)"
      : "it takes writes again once a repair succeeds (retrying with backoff)";
    throw new RingkvError(
      "unavailable",
      `Cannot ${action}: the node is ${state} since ${when} (${reason}); ${next}`,
    );
  }

  /** A disk write failed: refuse writes and schedule a repair (`rollback`: the log failed). */
  failed(what: string, err: Error, rollback: boolean): void {
    this.#rollback ||= rollback;
    if (this.#closed || this.#health.state !== "writable") return;
    const now = (this.options.now ?? Date.now)();
    this.#health = {
      state: "read-only",
      reason: `${what}: ${err.message}`,
      since: now,
      retries: 0,
    };
    this.#log(`node is read-only: ${this.#health.reason}`);
    this.#schedule();
  }

  /** Stops retrying; resolves once a repair under way has settled. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    await this.#repairing;
  }

  #schedule(): void {
    const first = this.options.firstRetryMs ?? 250;
    const delay = Math.min(first * 2 ** this.#health.retries, this.options.maxRetryMs ?? 30_000);
    this.#timer = setTimeout(() => {
      this.#repairing = this.#attempt().finally(() => this.#repairing = null);
    }, delay);
    // A pending repair alone must not keep a process alive (an engine nobody closed).
    Deno.unrefTimer(this.#timer);
  }

  async #attempt(): Promise<void> {
    if (this.#closed) return;
    const rollback = this.#rollback;
    this.#rollback = false;
    try {
      await this.options.repair(rollback);
      // A log round that failed during the repair needs a repair of its own.
      if (this.#rollback) throw new Error("a log write failed during the repair");
    } catch (err) {
      if (!(err instanceof Error)) throw err;
      this.#rollback ||= rollback;
      this.#health.retries++;
      this.#health.repairError = err.message;
      if (err instanceof RecoveryError) {
        this.#health = { ...this.#health, state: "failed", reason: err.message };
        this.#log(`node cannot take writes again: ${err.message}`);
        return;
      }
      this.#log(`node is still read-only (repair ${this.#health.retries}): ${err.message}`);
      if (!this.#closed) this.#schedule();
      return;
    }
    this.#log(`node takes writes again after ${this.#health.retries + 1} repair(s)`);
    this.#health = { state: "writable", retries: 0 };
  }

  #log(message: string): void {
    (this.options.log ?? console.error)(message);
  }
}
