/**
 * Timeouts for a client's node calls at one timer per slot instead of one per call: calls
 * that start within one slot (a tenth of the timeout, at most 100 ms) share an
 * `AbortSignal`, which one timer aborts a timeout after the slot ends. So every call still
 * ends by its timeout plus at most one slot, and none before it. A slot's timer is cleared
 * once none of its calls is in flight, so no timer outlives the calls it guards.
 * tasks/bench/call_floor.ts: a timer and an AbortController per call cost about 9 µs of
 * CPU per call more than a shared signal (docs/performance-history.md, "A node call's CPU").
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { CallDeadlines } from "./call_deadlines.ts";
 * const deadlines = new CallDeadlines(1000);
 * const slot = deadlines.enter();
 * try {
 *   assert(!slot.signal.aborted); // pass slot.signal to fetch
 * } finally {
 *   deadlines.leave(slot);
 * }
 * ```
 */
import { slotMsOf } from "../../shared/slot_timers.ts";

/** Calls that started in one slot: their shared signal and how many are in flight. */
export interface DeadlineSlot {
  readonly signal: AbortSignal;
  /** When the slot stops taking calls (the clock of {@link CallDeadlines}). */
  readonly ends: number;
  active: number;
  abort: AbortController;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** The timer's delay from the slot's start: whole ms, at least the slot plus the timeout. */
  readonly firesAfterMs: number;
}

/** The rejection of a call that had no answer before its timeout. */
export function timeoutError(): DOMException {
  return new DOMException("no answer before the timeout", "TimeoutError");
}

/** Shared deadlines of one client's calls, all with the same timeout. */
export class CallDeadlines {
  #slot: DeadlineSlot | undefined;
  readonly #slotMs: number;

  /** Deadlines `timeoutMs` after each call's start (plus at most one slot). */
  constructor(
    readonly timeoutMs: number,
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    this.#slotMs = slotMsOf(timeoutMs);
  }

  /** The slot of a call starting now; pass it to {@link leave} when the call ends. */
  enter(): DeadlineSlot {
    const now = this.now();
    let slot = this.#slot;
    if (slot === undefined || now >= slot.ends || slot.signal.aborted) {
      slot = this.#open(now);
    }
    slot.active++;
    return slot;
  }

  /** Ends one call of `slot`; the last one out clears the slot's timer. */
  leave(slot: DeadlineSlot): void {
    if (--slot.active > 0) return;
    clearTimeout(slot.timer);
    slot.timer = undefined;
    if (this.#slot === slot) this.#slot = undefined;
  }

  #open(now: number): DeadlineSlot {
    const abort = new AbortController();
    const ends = now + this.#slotMs;
    const firesAfterMs = Math.ceil(this.#slotMs + this.timeoutMs);
    const slot: DeadlineSlot = {
      signal: abort.signal,
      ends,
      active: 0,
      abort,
      timer: undefined,
      firesAfterMs,
    };
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (this.#slot === slot) this.#slot = undefined;
      abort.abort(timeoutError());
    }, firesAfterMs);
    this.#slot = slot;
    return slot;
  }
}
