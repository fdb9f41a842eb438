/**
 * When the next hint replay to a node may start. At once, unless its last replay failed without
 * any progress (refused hints whose owners could not be read, or an accept call that failed, and
 * nothing accepted, ingested or found current); then after a wait that starts at one probe
 * interval and doubles up to {@link MAX_REPLAY_BACKOFF_MS}. Probes come every quarter interval,
 * and each such replay re-read every refused key's owners. Pure: the caller passes its monotonic
 * clock.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ReplayBackoff } from "./replay_backoff.ts";
 * const backoff = new ReplayBackoff(1000);
 * backoff.record("n2", { accepted: 0, ingested: 0, current: 0, retry: 3, unsent: 0, notOwned: 0 }, 0);
 * assertEquals([backoff.due("n2", 999), backoff.due("n2", 1000)], [false, true]);
 * ```
 */
import type { ReplayReport } from "./hint_replay.ts";

/** The longest wait between two replays to a node that make no progress. */
export const MAX_REPLAY_BACKOFF_MS = 30_000;

/** Per node: when its next replay may start, and how long the last wait was. */
export class ReplayBackoff {
  readonly #waits = new Map<string, { until: number; waitMs: number }>();

  /** `firstMs`: the first wait (the probe interval); `maxMs`: the longest. */
  constructor(
    private readonly firstMs: number,
    private readonly maxMs = MAX_REPLAY_BACKOFF_MS,
  ) {}

  /** Whether a replay to `node` may start at `now` (monotonic ms). */
  due(node: string, now: number): boolean {
    return now >= (this.#waits.get(node)?.until ?? -Infinity);
  }

  /** Records how a replay to `node` that ended at `now` went. */
  record(node: string, report: ReplayReport, now: number): void {
    const progress = report.accepted + report.ingested + report.current > 0;
    if (progress || report.retry + report.unsent === 0) {
      this.#waits.delete(node);
      return;
    }
    const last = this.#waits.get(node)?.waitMs;
    const waitMs = last === undefined ? this.firstMs : Math.min(this.maxMs, last * 2);
    this.#waits.set(node, { until: now + waitMs, waitMs });
  }

  /** Forgets `node`'s wait: its next replay may start at once. */
  forget(node: string): void {
    this.#waits.delete(node);
  }

  /** Forgets the nodes not in `members` (they left the map). */
  keepOnly(members: ReadonlySet<string>): void {
    for (const node of [...this.#waits.keys()]) if (!members.has(node)) this.#waits.delete(node);
  }
}
