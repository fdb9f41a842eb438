/**
 * Deadlines of requests that wait in a per-node queue (proxy/routing/dispatcher.ts,
 * proxy/replication/paxos_batcher.ts) behind the call in flight to that node, counted from
 * when each began waiting: without them a request queued behind a call to a node that stopped
 * answering waited for that call's timeout, then a whole timeout of its own in the next call.
 *
 * A queue reads the clock once per request (its `at`) and once per batch it forms: waiters
 * whose deadline has passed are answered then and never sent. A batch whose oldest waiter
 * waited more than a slot (a tenth of the timeout, at most 100 ms: behind a node that is slow or
 * stopped) is *late*: while it is in flight, one {@link Sweep} timer per queue answers each
 * waiter, queued or in that batch, at its deadline. Every other waiter began waiting at most a
 * slot before the call it goes in, or any call ahead of it, started, and a call ends by its
 * timeout plus a slot (proxy/nodes/call_deadlines.ts). So each request is answered by its
 * timeout plus at most two slots. {@link QueueDeadlines} does this for one queue; the queue
 * itself (its order, how it drops answered waiters) stays its owner's.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { WaitDeadlines } from "./wait_deadlines.ts";
 * const deadlines = new WaitDeadlines(1000, () => 1500);
 * const answered: string[] = [];
 * const waiter = (at: number) => ({ at, reject: () => answered.push(`since ${at}`) });
 * const queue = [waiter(400), waiter(500), waiter(900)];
 * assertEquals(deadlines.expire(queue, 0, () => new Error("timed out")), 2);
 * assertEquals(answered, ["since 400", "since 500"]);
 * ```
 */
import { slotMsOf } from "../../shared/slot_timers.ts";

/** A request waiting for a node: when it began waiting, and how to answer it. */
export interface Waiter {
  readonly at: number;
  reject(err: unknown): void;
}

/** The timeout of waiters of one client's queues, and the clock they are stamped with. */
export class WaitDeadlines {
  /** How long a batch's oldest waiter may have waited before the batch is late. */
  readonly lateMs: number;

  /** Deadlines `timeoutMs` after each waiter's `at` (read from `now`). */
  constructor(
    readonly timeoutMs: number,
    readonly now: () => number = performance.now.bind(performance),
  ) {
    this.lateMs = slotMsOf(timeoutMs);
  }

  /**
   * Rejects with one `error()` the waiters of `list` from index `from` whose deadline has
   * passed (they are in the order they began waiting); returns the index of the first left.
   * `answered` is when the node last answered a call: a deadline counts from it when later
   * than the waiter's `at`, so a node that answers, however busy, is waited for (a bulk load
   * behind a node's earlier batches on a loaded host got 503s), and one that stopped is not.
   */
  expire(list: readonly Waiter[], from: number, error: () => unknown, answered = 0): number {
    const passed = this.now() - this.timeoutMs;
    if (answered > passed) return from;
    let i = from;
    let err: unknown;
    for (; i < list.length && list[i]!.at <= passed; i++) list[i]!.reject(err ??= error());
    return i;
  }

  /** Whether a batch whose oldest waiter is `oldest` is late (see the module doc). */
  isLate(oldest: Waiter, answered = 0): boolean {
    return this.now() - Math.max(oldest.at, answered) > this.lateMs;
  }

  /** When `waiter`'s deadline is (Infinity for none), the node last answering at `answered`. */
  dueOf(waiter: Waiter | undefined, answered = 0): number {
    return waiter === undefined ? Infinity : Math.max(waiter.at, answered) + this.timeoutMs;
  }
}

/** A late batch in flight (see the module doc) and how many of its waiters were answered. */
export interface LateBatch<W extends Waiter> {
  readonly items: readonly W[];
  cut: number;
}

/**
 * The deadlines of one node's queue: when the node last answered a call of it (deadlines count
 * from that when later), and its late batches in flight, whose waiters, and the queued ones,
 * one {@link Sweep} answers at their deadlines.
 */
export class QueueDeadlines<W extends Waiter> {
  #answered = 0;
  #late: LateBatch<W>[] | undefined;
  #sweep: Sweep | undefined;

  /**
   * The deadlines of `deadlines` for one queue. `error()` answers a waiter past its deadline;
   * `expireQueued(this)` answers the queued waiters past theirs (with {@link expire}) and
   * returns the first one left, if any.
   */
  constructor(
    private readonly deadlines: WaitDeadlines,
    private readonly error: () => unknown,
    private readonly expireQueued: (deadlines: QueueDeadlines<W>) => W | undefined,
  ) {}

  /** {@link WaitDeadlines.expire} with this queue's error and last answer. */
  expire(list: readonly W[], from: number): number {
    return this.deadlines.expire(list, from, this.error, this.#answered);
  }

  /** When `batch` is late, watches it while it flies; give what it returns to {@link landed}. */
  watchIfLate(batch: readonly W[]): LateBatch<W> | undefined {
    if (!this.deadlines.isLate(batch[0]!, this.#answered)) return undefined;
    const late = { items: batch, cut: 0 };
    (this.#late ??= []).push(late);
    this.#sweep ??= new Sweep(() => this.#sweepDue(), this.deadlines.now);
    this.#sweep.by(this.deadlines.dueOf(batch[0], this.#answered));
    return late;
  }

  /** The call of a batch {@link watchIfLate} returned `late` for has ended. */
  landed(late: LateBatch<W> | undefined): void {
    if (late === undefined) return;
    const all = this.#late!;
    all.splice(all.indexOf(late), 1);
    if (all.length === 0) this.#sweep!.stop();
  }

  /** The node answered a call: deadlines count from now on. */
  answered(): void {
    // Those whose deadline passed before this answer are past it: the answer is no excuse.
    this.expireQueued(this);
    this.#answered = this.deadlines.now();
  }

  /** Answers the waiters past their deadline; returns when the next one is due. */
  #sweepDue(): number {
    let next = Infinity;
    for (const late of this.#late ?? []) {
      late.cut = this.expire(late.items, late.cut);
      next = Math.min(next, this.deadlines.dueOf(late.items[late.cut], this.#answered));
    }
    return Math.min(next, this.deadlines.dueOf(this.expireQueued(this), this.#answered));
  }
}

/** One timer that runs `sweep` by the earliest time asked for; `sweep` says when next. */
export class Sweep {
  #timer: ReturnType<typeof setTimeout> | undefined;
  #at = Infinity;

  /** `sweep` answers what is due and returns when it should run next (Infinity: not again). */
  constructor(private readonly sweep: () => number, private readonly now: () => number) {}

  /** Makes sure the sweep runs at `at` or earlier. */
  by(at: number): void {
    if (at >= this.#at) return;
    clearTimeout(this.#timer);
    this.#at = at;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#at = Infinity;
      const next = this.sweep();
      if (next < Infinity) this.by(next);
    }, Math.max(0, Math.ceil(at - this.now())));
  }

  /** Clears the timer. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#at = Infinity;
  }
}
