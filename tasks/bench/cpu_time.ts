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
export function cpuNow(procs: readonly Watched[]): Promise<Record<string, number>> {
  return readStats(procs.map((p) => ({ ...p, stat: "stat" })));
}

/** CPU seconds from `/proc/<pid>/<stat>` of each, by name; those that are gone are left out. */
async function readStats(
  procs: readonly (Watched & { stat: string })[],
): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  if (procs.length === 0 || Deno.build.os !== "linux") return out;
  const read = await new Deno.Command("cat", {
    args: procs.map((p) => `/proc/${p.pid}/${p.stat}`),
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

/** One reading of {@link cpuSnapshot}: CPU seconds so far of each process, of its main thread and of the host. */
export interface CpuSnapshot {
  /** Wall time of the reading (ms, `performance.now()`). */
  at: number;
  /** Every thread of each process, by name. */
  total: Record<string, number>;
  /** Each process's main thread (the JavaScript thread of a Deno process), by name. */
  main: Record<string, number>;
  /** The host's busy and total CPU seconds (every core, `/proc/stat`); absent elsewhere than Linux. */
  host?: { busy: number; all: number };
}

/** What the processes used between two snapshots: per request, and in cores (CPU s per wall s). */
export interface CpuUse {
  /** µs of CPU per request of each process (every thread). */
  perRequest: Record<string, number>;
  /** Cores each process kept busy (every thread): 1 is one core all the time. */
  cores: Record<string, number>;
  /** Cores each process's main thread kept busy: near 1, that one thread is the limit. */
  mainCores: Record<string, number>;
  /** Cores the whole host kept busy (every process, ours or not), and how many it has. */
  host?: { busy: number; cores: number };
}

/**
 * {@link cpuNow} with each process's main thread (`/proc/<pid>/task/<pid>/stat`: its id is the
 * process's) and the host's CPU, for {@link cpuUse}.
 */
export async function cpuSnapshot(procs: readonly Watched[]): Promise<CpuSnapshot> {
  const threads = procs.map((p) => ({ name: p.name, pid: p.pid, stat: `task/${p.pid}/stat` }));
  const [total, main, host] = await Promise.all([
    cpuNow(procs),
    readStats(threads),
    hostSeconds(),
  ]);
  return { at: performance.now(), total, main, ...(host ? { host } : {}) };
}

/** What each process used between two snapshots, over `requests` requests. */
export function cpuUse(before: CpuSnapshot, after: CpuSnapshot, requests: number): CpuUse {
  const wall = (after.at - before.at) / 1000;
  const cores = (from: Record<string, number>, to: Record<string, number>) => {
    const out: Record<string, number> = {};
    for (const [name, end] of Object.entries(to)) {
      const start = from[name];
      if (start !== undefined && wall > 0) out[name] = (end - start) / wall;
    }
    return out;
  };
  const use: CpuUse = {
    perRequest: cpuPerRequest(before.total, after.total, requests),
    cores: cores(before.total, after.total),
    mainCores: cores(before.main, after.main),
  };
  if (before.host && after.host && after.host.all > before.host.all) {
    const all = after.host.all - before.host.all;
    // The host's total CPU seconds over the window is its cores times the window.
    use.host = {
      busy: (after.host.busy - before.host.busy) / (wall > 0 ? wall : 1),
      cores: Math.round(all / (wall > 0 ? wall : 1)),
    };
  }
  return use;
}

/** The host's busy and total CPU seconds so far (`/proc/stat`'s first line), or undefined. */
export async function hostSeconds(): Promise<{ busy: number; all: number } | undefined> {
  if (Deno.build.os !== "linux") return undefined;
  const out = await new Deno.Command("cat", {
    args: ["/proc/stat"],
    stdout: "piped",
    stderr: "null",
  })
    .output();
  const first = new TextDecoder().decode(out.stdout).split("\n")[0] ?? "";
  const ticks = first.trim().split(/\s+/).slice(1).map(Number);
  if (ticks.length < 5 || ticks.some((t) => !Number.isFinite(t))) return undefined;
  const all = ticks.reduce((a, b) => a + b, 0);
  // Fields 4 and 5 are idle and iowait: time no process had the core.
  return { busy: (all - ticks[3]! - ticks[4]!) / TICKS, all: all / TICKS };
}

/** Below this share of a core over {@link SETTLE_WINDOW_MS}, a process counts as settled. */
export const SETTLED_CORES = 0.03;
/** The window {@link settle} reads each process's CPU over. */
const SETTLE_WINDOW_MS = 500;

/** How {@link settle} decides that processes are quiet. */
export interface SettleOptions {
  /** Longest wait (default 15 s). */
  maxMs?: number;
  /** A process under this share of a core over a window is quiet (default {@link SETTLED_CORES}). */
  underCores?: number;
  /** Quiet windows in a row it takes (default 1). */
  quietWindows?: number;
  /** CPU seconds of each process now (default {@link cpuNow}); tests script it. */
  read?: (procs: readonly Watched[]) => Promise<Record<string, number>>;
  /** Length of a window in ms (default 500). */
  windowMs?: number;
}

/**
 * Waits until every process uses under `underCores` of a core over `quietWindows` half-second
 * windows in a row, at most `maxMs`: a node may still be writing the snapshot an earlier case's
 * PUTs set off, which would be counted against the next case. Resolves with whether they
 * settled (true at once when there is nothing to read).
 */
export async function settle(procs: readonly Watched[], o: SettleOptions = {}): Promise<boolean> {
  const { maxMs = 15_000, underCores = SETTLED_CORES, quietWindows = 1 } = o;
  const { read = cpuNow, windowMs = SETTLE_WINDOW_MS } = o;
  const deadline = Date.now() + maxMs;
  let before = await read(procs);
  if (Object.keys(before).length === 0) return true;
  let quiet = 0;
  while (Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, windowMs));
    const now = await read(procs);
    const busy = Object.entries(now).some(([name, s]) =>
      s - (before[name] ?? s) >= underCores * (windowMs / 1000)
    );
    quiet = busy ? 0 : quiet + 1;
    if (quiet === quietWindows) return true;
    before = now;
  }
  return false;
}

/** The ids of a process's children (Linux; none elsewhere or once it is gone), read with `cat`. */
export async function childPids(pid: number): Promise<number[]> {
  if (Deno.build.os !== "linux") return [];
  const out = await new Deno.Command("cat", {
    args: [`/proc/${pid}/task/${pid}/children`],
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(out.stdout).trim().split(/\s+/).filter(Boolean).map(Number);
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
