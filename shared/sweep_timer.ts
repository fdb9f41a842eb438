/**
 * A sweep run every so often in the background, never two at once: a run still going when the
 * next is due skips that turn. A run's expected failure (a RingkvError: a node down) goes to
 * `failed`; any other error is thrown from the timer (a bug, as for every timer).
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { SweepTimer } from "./sweep_timer.ts";
 * let runs = 0;
 * const timer = new SweepTimer();
 * timer.start(1, async () => void runs++, () => {});
 * await new Promise((r) => setTimeout(r, 30));
 * timer.stop();
 * assert(runs > 0);
 * ```
 */
import { RingkvError } from "./errors.ts";

/** Runs a sweep every `everyMs` until {@link SweepTimer.stop}. */
export class SweepTimer {
  #timer: ReturnType<typeof setInterval> | undefined;
  #running = false;

  /** Starts sweeping (a second start while running changes nothing). */
  start(everyMs: number, run: () => Promise<unknown>, failed: (err: RingkvError) => void): void {
    this.#timer ??= setInterval(() => {
      if (this.#running) return;
      this.#running = true;
      run().catch((err) => {
        if (!(err instanceof RingkvError)) throw err;
        failed(err);
      }).finally(() => this.#running = false);
    }, everyMs);
  }

  /** Stops the timer; a run under way ends by itself. */
  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
  }
}
