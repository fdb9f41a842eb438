/**
 * The one-round-trip write's counters in Prometheus text, read from a {@link Replicated} at
 * scrape time (docs/operations.md): each outcome of fast_write.ts `FAST_OUTCOMES`, the writes
 * that skipped the fast path while too many failed, and the keys the record holds.
 *
 * @module
 * @example
 * ```ts
 * import { assertMatch } from "@std/assert";
 * import { render } from "../../shared/prom.ts";
 * import { fastWriteMetrics } from "./fast_write_metrics.ts";
 * const counts = { fast: { decided: 2 }, fastRecord: { paused: 0, keys: 1 } };
 * const text = render(fastWriteMetrics(counts));
 * assertMatch(text, /ringkv_proxy_fast_writes_total\{outcome="decided"\} 2/);
 * ```
 */
import { Counter, gauge, type Metric } from "../../shared/prom.ts";
import { FAST_OUTCOMES, type FastCounts } from "./fast_write.ts";

/** What the counters are read from (a Replicated). */
export interface FastWriteSource {
  fast: Partial<FastCounts>;
  fastRecord: { paused: number; keys: number };
}

/** The fast write's metrics as they stand now. */
export function fastWriteMetrics(source: FastWriteSource): Metric[] {
  const outcomes = new Counter(
    "ringkv_proxy_fast_writes_total",
    `One-round-trip writes by outcome (${Object.keys(FAST_OUTCOMES).join(", ")}).`,
    ["outcome"],
  );
  for (const outcome of Object.keys(FAST_OUTCOMES) as (keyof FastCounts)[]) {
    outcomes.inc({ outcome }, source.fast[outcome] ?? 0);
  }
  const paused = new Counter(
    "ringkv_proxy_fast_writes_paused_total",
    "Writes that took the full round because more than one fast write in 4 failed.",
    [],
  );
  paused.inc({}, source.fastRecord.paused);
  return [
    outcomes,
    paused,
    gauge(
      "ringkv_proxy_fast_write_keys",
      "Keys whose next write from this proxy may take one round trip.",
      [{ value: source.fastRecord.keys }],
    ),
  ];
}
