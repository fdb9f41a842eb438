/**
 * Timeouts at one timer per slot instead of one per request, for hot paths where every
 * request arms a timeout that almost never fires (a body deadline): timeouts started within
 * one slot (a tenth of the timeout, at most 100 ms) share a timer, which runs the callbacks
 * still armed a timeout after the slot ends. So each callback runs after its timeout plus at
 * most one slot, never before, or not at all once stopped. Deno's `setTimeout` +
 * `clearTimeout` cost ~5 µs of CPU per request here (the Node-compatible timers;
 * docs/performance-history.md "A PUT's CPU in the proxy"), a slot ~0.2 µs.
 *
 * Unlike proxy/nodes/call_deadlines.ts (node calls last milliseconds), a body read usually
 * ends within the turn it starts in, so a slot emptied while it still takes timeouts keeps its
 * timer, unref'd while nothing is armed (it never holds the process up; ref'd again by the next
 * start, ~0.2 µs), else nearly every request would arm one; a slot that a newer one replaced is
 * cleared by its last one out.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { SlotTimers } from "./slot_timers.ts";
 * const timers = new SlotTimers(1000);
 * let fired = false;
 * const armed = timers.start(() => (fired = true));
 * timers.stop(armed); // done in time: the callback never runs; the slot's timer stays,
 * // unref'd (it holds nothing up), for the next start within the slot
 * assert(!fired);
 * ```
 */

/** Timeouts started within one slot: their callbacks still armed, and the slot's timer. */
export interface TimerSlot {
  /** When the slot stops taking timeouts (the clock of {@link SlotTimers}). */
  readonly ends: number;
  /** The timer's delay from the slot's start: whole ms, at least the slot plus the timeout. */
  readonly firesAfterMs: number;
  readonly armed: Set<() => void>;
  timer: ReturnType<typeof setTimeout> | undefined;
  /** Whether the timer is unref'd: the slot is current and nothing is armed in it. */
  idle: boolean;
}

/** An armed timeout: pass it to {@link SlotTimers.stop}. */
export interface Armed {
  readonly slot: TimerSlot;
  readonly onTimeout: () => void;
}

/**
 * The slot of timeouts of `timeoutMs`: a tenth of it, at most 100 ms, in whole ms (Deno
 * drops a timer's fraction, 16.5 fires at 16.2, which would fire a late joiner's early).
 */
export function slotMsOf(timeoutMs: number): number {
  return Math.max(1, Math.floor(Math.min(100, timeoutMs / 10)));
}

/** Shared-slot timeouts, all of the same length. */
export class SlotTimers {
  #slot: TimerSlot | undefined;
  readonly #slotMs: number;

  /** Timeouts of `timeoutMs` (plus at most one slot) from each start. */
  constructor(
    readonly timeoutMs: number,
    private readonly now: () => number = performance.now.bind(performance),
  ) {
    this.#slotMs = slotMsOf(timeoutMs);
  }

  /** Runs `onTimeout` once the timeout has passed, unless {@link stop} is called first. */
  start(onTimeout: () => void): Armed {
    const now = this.now();
    let slot = this.#slot;
    if (slot === undefined || now >= slot.ends) slot = this.#open(now);
    if (slot.idle) {
      slot.idle = false;
      Deno.refTimer(slot.timer!);
    }
    slot.armed.add(onTimeout);
    return { slot, onTimeout };
  }

  /** Disarms `armed`; the last one out of a slot that a newer one replaced clears its timer. */
  stop({ slot, onTimeout }: Armed): void {
    if (!slot.armed.delete(onTimeout) || slot.armed.size > 0) return;
    if (this.#slot === slot) {
      // More may join: the timer stays, without holding the process up meanwhile.
      slot.idle = true;
      Deno.unrefTimer(slot.timer!);
      return;
    }
    clearTimeout(slot.timer);
    slot.timer = undefined;
  }

  #open(now: number): TimerSlot {
    const slot: TimerSlot = {
      ends: now + this.#slotMs,
      firesAfterMs: Math.ceil(this.#slotMs + this.timeoutMs),
      armed: new Set(),
      timer: undefined,
      idle: false,
    };
    const timer = setTimeout(() => {
      slot.timer = undefined;
      if (this.#slot === slot) this.#slot = undefined;
      const due = [...slot.armed];
      slot.armed.clear();
      runAll(due);
    }, slot.firesAfterMs);
    slot.timer = timer;
    this.#slot = slot;
    return slot;
  }
}

/** Runs every callback, then throws the first one's error: one that throws skips no other. */
function runAll(callbacks: readonly (() => void)[]): void {
  let failure: { err: unknown } | undefined;
  for (const callback of callbacks) {
    try {
      callback();
    } catch (err) {
      failure ??= { err };
    }
  }
  if (failure !== undefined) throw failure.err;
}
