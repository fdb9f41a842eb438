/**
 * A sleep that ends early when its signal aborts, and leaves neither its timer nor its abort
 * listener behind either way (a long-lived signal, such as a watch stream's, would otherwise
 * collect one listener per sleep).
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { abortableSleep } from "./abortable_sleep.ts";
 * const stop = new AbortController();
 * const started = performance.now();
 * const slept = abortableSleep(60_000, stop.signal);
 * stop.abort();
 * await slept;
 * assert(performance.now() - started < 60_000);
 * ```
 */

/** Resolves after `ms`, or at once when `signal` aborts (already or meanwhile). */
export function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
