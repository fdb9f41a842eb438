/**
 * What a fault run measured, from its history: acknowledged writes that the final reads
 * do not show though nothing could have overwritten them, and the share of requests
 * without a definite answer, overall and from proxies that reached a majority while a
 * fault was in force (after its first timeout), and while no fault was. Pure.
 *
 * @module
 */
import type { Operation } from "./linearizability.ts";

/** An interval in which a fault was in force, and the proxies that still reached a majority. */
export interface FaultWindow {
  start: number;
  end: number;
  majority: readonly string[];
}

/** An operation with the proxy it went through. */
export type ProxiedOp = Operation & { proxy: string };

/** Counts of requests and of those without a definite answer. */
export interface Share {
  requests: number;
  indefinite: number;
}

function count(ops: readonly Operation[]): Share {
  return {
    requests: ops.length,
    indefinite: ops.filter((op) => op.result.status === "unknown").length,
  };
}

/**
 * All requests, and those sent to a proxy that reached a majority, starting at least
 * `graceMs` into a fault window (the first timeout of a fault is allowed to be lost).
 */
export function shares(
  ops: readonly ProxiedOp[],
  windows: readonly FaultWindow[],
  graceMs: number,
): { all: Share; majority: Share; calm: Share } {
  const inMajority = (op: ProxiedOp) =>
    windows.some((w) =>
      op.start >= w.start + graceMs && op.start <= w.end && w.majority.includes(op.proxy)
    );
  // Calm: no fault in force, and the last one lifted at least graceMs ago.
  const calm = (op: ProxiedOp) =>
    !windows.some((w) => op.end >= w.start && op.start <= w.end + graceMs);
  return {
    all: count(ops),
    majority: count(ops.filter(inMajority)),
    calm: count(ops.filter(calm)),
  };
}

/**
 * Keys whose last acknowledged write (one no other write could follow: every other write
 * on the key answered before it started) is not what `finals` (reads after the run) show.
 */
export function lostWrites(history: readonly Operation[], finals: readonly Operation[]): string[] {
  const lost: string[] = [];
  for (const final of finals) {
    const writes = history.filter((op) => op.key === final.key && op.call.op !== "get");
    const end = (op: Operation) => op.result.status === "unknown" ? Infinity : op.end;
    const last = writes.find((w) =>
      (w.result.status === 200 || w.result.status === 201 || w.result.status === 204) &&
      writes.every((o) => o === w || end(o) < w.start)
    );
    if (last === undefined || final.result.status === "unknown") continue;
    const want = last.call.op === "put" ? last.call.value : null;
    const got = final.result.status === 200 ? final.result.value : null;
    if (want !== got) lost.push(`${final.key}: wrote ${want}, read ${got}`);
  }
  return lost;
}
