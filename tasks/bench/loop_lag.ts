/**
 * An event-loop lag probe for the rig (tasks/bench/cpu_rig.ts `LAG=1`), loaded into a server
 * with `deno run --preload tasks/bench/loop_lag.ts` and `LOOP_LAG_OUT=FILE`: a timer of
 * {@link PERIOD_MS} re-armed for the process's life records how late each firing is (how long
 * the thread was held by other work), and the samples go to FILE as JSON when the process
 * exits. Without the flag nothing of this runs: the servers carry no probe.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { lagSummary } from "./loop_lag.ts";
 * const s = lagSummary([[10, 0.2], [20, 30], [99, 500]], 0, 50);
 * assertEquals([s.samples, s.max], [2, 30]);
 * ```
 *
 * @module
 */

/** The probe's timer period, in ms. */
export const PERIOD_MS = 5;

/** Lag percentiles of the samples in a window, in ms. */
export interface LagSummary {
  samples: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  /** Share of the window's wall time the probe saw the loop held past 10 ms / 50 ms. */
  over10: number;
  over50: number;
}

/** The `q` quantile of ascending `sorted` (nearest rank). */
function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)]!;
}

/** Summarises `[wall ms, lag ms]` samples taken within [from, to] (wall ms). */
export function lagSummary(
  samples: readonly (readonly [number, number])[],
  from: number,
  to: number,
): LagSummary {
  const lags = samples.filter(([t]) => t >= from && t <= to).map(([, lag]) => lag);
  lags.sort((a, b) => a - b);
  const held = (ms: number) =>
    lags.reduce((sum, lag) => sum + (lag > ms ? lag : 0), 0) / Math.max(1, to - from);
  return {
    samples: lags.length,
    p50: quantile(lags, 0.5),
    p90: quantile(lags, 0.9),
    p99: quantile(lags, 0.99),
    p999: quantile(lags, 0.999),
    max: lags.at(-1) ?? 0,
    over10: held(10),
    over50: held(50),
  };
}

/** One line of a summary, for the rig's output. */
export function lagLine(what: string, s: LagSummary): string {
  const f = (n: number) => n.toFixed(1);
  return `${what} loop lag ms (${s.samples} samples): p50 ${f(s.p50)} p90 ${f(s.p90)} p99 ${
    f(s.p99)
  } p99.9 ${f(s.p999)} max ${f(s.max)}; time held >10 ms ${(s.over10 * 100).toFixed(1)} %, >50 ms ${
    (s.over50 * 100).toFixed(1)
  } %`;
}

/** Starts the probe when preloaded with `LOOP_LAG_OUT` set. */
function startProbe(out: string): void {
  const samples: [number, number][] = [];
  let due = performance.now() + PERIOD_MS;
  const tick = () => {
    const now = performance.now();
    // Bounded: a 5 ms probe over an hour's run is ~720,000 samples.
    if (samples.length < 2_000_000) samples.push([Date.now(), Math.max(0, now - due)]);
    due = now + PERIOD_MS;
    Deno.unrefTimer(setTimeout(tick, PERIOD_MS));
  };
  Deno.unrefTimer(setTimeout(tick, PERIOD_MS));
  globalThis.addEventListener("unload", () => Deno.writeTextFileSync(out, JSON.stringify(samples)));
}

const out = Deno.env.get("LOOP_LAG_OUT");
if (out) startProbe(out);
