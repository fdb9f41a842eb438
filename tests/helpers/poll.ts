/**
 * Waiting in tests: poll a condition until it holds or a deadline passes (never a fixed sleep
 * as proof, so a loaded machine only makes a test slower, not wrong).
 *
 * @module
 * @example
 * ```ts
 * import { until } from "./poll.ts";
 * let n = 0;
 * await until("n reaches 3", () => ++n >= 3);
 * ```
 */

/**
 * Polls `check` every `everyMs` until it holds; throws naming `what` after `ms` (a function:
 * called then, to say what was last seen).
 */
export async function until(
  what: string | (() => string),
  check: () => boolean | Promise<boolean>,
  ms = 10_000,
  everyMs = 10,
): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) {
      const said = typeof what === "function" ? what() : what;
      throw new Error(`Timed out after ${ms} ms waiting until ${said}`);
    }
    await new Promise((resolve) => setTimeout(resolve, everyMs));
  }
}
