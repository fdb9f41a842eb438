/**
 * Timeouts at one timer per slot instead of one per request, for hot paths where every
 * request arms a timeout that almost never fires (a body deadline): timeouts started within
 * one slot (a tenth of the timeout, at most 100 ms) share a timer, which runs the callbacks
 * still armed a timeout after the slot ends. So each callback runs after its timeout plus at
 * most one slot, never before, or not at all once stopped; the last one stopped clears the
 * slot's timer. Deno's `setTimeout` + `clearTimeout` cost ~5 µs of CPU per request here (the
 * Node-compatible timers; docs/performance.md "A PUT's CPU in the proxy"), a slot ~0.2 µs.
 * proxy/nodes/call_deadlines.ts does the same for node calls, with a shared `AbortSignal`.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { SlotTimers } from "./slot_timers.ts";
 * const timers = new SlotTimers(1000);
 * let fired = false;
 * const armed = timers.start(() => (fired = true));
 * timers.stop(armed); // done in time: the callback never runs, no timer is left
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
}

/** An armed timeout: pass it to {@link SlotTimers.stop}. */
export interface Armed {
  readonly slot: TimerSlot;
  readonly onTimeout: () => void;
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
    // Whole ms: Deno drops a timer's fraction, which would fire a late joiner's callback early.
    this.#slotMs = Math.max(1, Math.floor(Math.min(100, timeoutMs / 10)));
  }

  /** Runs `onTimeout` once the timeout has passed, unless {@link stop} is called first. */
  start(onTimeout: () => void): Armed {
    const now = this.now();
    let slot = this.#slot;
    if (slot === undefined || now >= slot.ends) slot = this.#open(now);
    slot.armed.add(onTimeout);
    return { slot, onTimeout };
  }

  /** Disarms `armed`; the last one out of a slot clears its timer. */
  stop({ slot, onTimeout }: Armed): void {
    if (!slot.armed.delete(onTimeout) || slot.armed.size > 0) return;
    clearTimeout(slot.timer);
    slot.timer = undefined;
    if (this.#slot === slot) this.#slot = undefined;
  }

  #open(now: number): TimerSlot {
    const slot: TimerSlot = {
      ends: now + this.#slotMs,
      firesAfterMs: Math.ceil(this.#slotMs + this.timeoutMs),
      armed: new Set(),
      timer: undefined,
    };
    slot.timer = setTimeout(() => {
      slot.timer = undefined;
      if (this.#slot === slot) this.#slot = undefined;
      const due = [...slot.armed];
      slot.armed.clear();
      for (const onTimeout of due) onTimeout();
    }, slot.firesAfterMs);
    this.#slot = slot;
    return slot;
  }
}
