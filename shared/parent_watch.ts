/**
 * Stopping with the process that started us. `deno task cluster` sets
 * {@link PARENT_PID_ENV} on its nodes and proxy: a `kill -9` of the task cannot forward a
 * signal, and children left running keep their ports and data-directory locks. A server
 * started any other way has no such variable and runs on as before.
 *
 * The OS gives an orphan to init (or a subreaper), so `Deno.ppid` (no permission needed)
 * changes once the parent has ended; a poll is all Deno offers for it.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { watchedParent } from "./parent_watch.ts";
 * assertEquals(watchedParent({ RINGKV_PARENT_PID: "4242" }), 4242);
 * assertEquals(watchedParent({}), undefined);
 * ```
 */

/** The variable naming the pid a child stops with (set by `deno task cluster` only). */
export const PARENT_PID_ENV = "RINGKV_PARENT_PID";

/** How often the parent is looked for: a stop within a second is soon enough for a leftover. */
const POLL_MS = 500;

/** The pid in {@link PARENT_PID_ENV}, or undefined when unset or not a pid (then no watch). */
export function watchedParent(
  env: Readonly<Record<string, string | undefined>>,
): number | undefined {
  const raw = env[PARENT_PID_ENV];
  if (raw === undefined || !/^[1-9]\d*$/.test(raw)) return undefined;
  return Number(raw);
}

/**
 * Resolves once `readPpid()` is no longer `parentPid` (the parent ended; also when it had
 * already ended before this was called), polling every `everyMs`. The timer does not keep the
 * process alive, and stops with `signal`.
 */
export function parentGone(
  parentPid: number,
  options: { readPpid?: () => number; everyMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const readPpid = options.readPpid ?? (() => Deno.ppid);
  const gone = Promise.withResolvers<void>();
  if (readPpid() !== parentPid) {
    gone.resolve();
    return gone.promise;
  }
  const timer = setInterval(() => {
    if (readPpid() === parentPid) return;
    clearInterval(timer);
    gone.resolve();
  }, options.everyMs ?? POLL_MS);
  Deno.unrefTimer(timer);
  options.signal?.addEventListener("abort", () => clearInterval(timer), { once: true });
  return gone.promise;
}

/** The log line of a server stopping because its parent is gone. */
export function orphanLine(role: "node" | "proxy", parentPid: number): Record<string, unknown> {
  return {
    level: "warn",
    msg: `stopping: process ${parentPid} (${PARENT_PID_ENV}) is no longer this ${role}'s parent`,
  };
}
