/**
 * CPU time of the processes a case drives, read from Linux's `/proc/<pid>/stat` (user plus
 * system, every thread): what a case costs in CPU per request, which a loaded machine moves
 * far less than requests/s. Elsewhere than Linux there is no reading (undefined).
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { cpuPerRequest } from "./cpu_time.ts";
 * const per = cpuPerRequest({ proxy0: 1.0 }, { proxy0: 1.5 }, 1000);
 * assertEquals(per, { proxy0: 500 });
 * ```
 */

/** A process whose CPU time is read: its name in the report and its id. */
export interface Watched {
  name: string;
  pid: number;
}

/** Clock ticks per second of `/proc/<pid>/stat` (USER_HZ, 100 on Linux). */
const TICKS = 100;

/** The CPU seconds `pid` has used, or undefined when `/proc` cannot tell. */
export function cpuSeconds(pid: number): number | undefined {
  let text;
  try {
    text = Deno.readTextFileSync(`/proc/${pid}/stat`);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotCapable)) {
      throw err;
    }
    return undefined;
  }
  // The command name may hold spaces: the fields after it start after the last ")".
  const fields = text.slice(text.lastIndexOf(")") + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? ticks / TICKS : undefined;
}

/** CPU seconds of each process now, by name (those `/proc` cannot tell left out). */
export function cpuNow(procs: readonly Watched[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const p of procs) {
    const s = cpuSeconds(p.pid);
    if (s !== undefined) out[p.name] = s;
  }
  return out;
}

/** Microseconds of CPU per request of each process between two readings. */
export function cpuPerRequest(
  before: Record<string, number>,
  after: Record<string, number>,
  requests: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, end] of Object.entries(after)) {
    const start = before[name];
    if (start !== undefined && requests > 0) out[name] = ((end - start) / requests) * 1e6;
  }
  return out;
}
