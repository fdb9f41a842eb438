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

/** The CPU seconds in a `/proc/<pid>/stat` line, or undefined when it is not one. */
export function statSeconds(line: string): number | undefined {
  // The command name may hold spaces: the fields after it start after the last ")".
  const close = line.lastIndexOf(")");
  if (close === -1) return undefined;
  const fields = line.slice(close + 2).split(" ");
  const ticks = Number(fields[11]) + Number(fields[12]);
  return Number.isFinite(ticks) ? ticks / TICKS : undefined;
}

/**
 * CPU seconds of each process now, by name; those `/proc` cannot tell are left out. Read
 * with `cat`: Deno opens `/proc` only with every permission, and the bench has --allow-run.
 */
export async function cpuNow(procs: readonly Watched[]): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (procs.length === 0 || Deno.build.os !== "linux") return out;
  const read = await new Deno.Command("cat", {
    args: procs.map((p) => `/proc/${p.pid}/stat`),
    stdout: "piped",
    stderr: "null",
  }).output();
  // A process that is gone has no line: match lines to processes by the pid they start with.
  const byPid = new Map<number, string>();
  for (const line of new TextDecoder().decode(read.stdout).split("\n")) {
    byPid.set(Number(line.slice(0, line.indexOf(" "))), line);
  }
  for (const p of procs) {
    const s = statSeconds(byPid.get(p.pid) ?? "");
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
