/**
 * Gives memory back after bulk work: a restart's replay or a large load leaves hundreds of
 * MiB of garbage, and V8 keeps the pages it freed (fragmented, or pooled for reuse) until its
 * memory reducer runs, seen 8-30 s later and never on a node that stays idle after a restart.
 * When the process runs with `--v8-flags=--expose-gc`, this runs V8's "last resort" full GC
 * once bulk work is over: two compacting, memory-reducing mark-compacts that release the
 * pooled pages. It is a pause (about 0.3 s with 1,000,000 keys of 100 B), taken only after
 * 32 MiB of writes and a quiet second, or right after recovery; the plain major GC used before
 * paused ~0.1 s and gave almost nothing back (docs/performance.md, "Memory and restart").
 * Without the flag it does nothing.
 *
 * @module
 */

/** V8's `gc` as `--expose-gc` exposes it. */
export type Gc = (
  options: { type: "major"; execution: "async"; flavor: "last-resort" },
) => void;

/** Bytes of writes after which a quiet moment triggers a GC. */
const BULK_BYTES = 32 << 20;
/** How long writes must pause before the GC starts. */
const QUIET_MS = 1000;

/** Starts a compacting full GC after bulk work, when the runtime exposes `gc`. */
export class GcHint {
  #bytes = 0;
  #timer: ReturnType<typeof setTimeout> | undefined;

  /** `gc` defaults to the runtime's (undefined without `--expose-gc`). */
  constructor(
    readonly gc: Gc | undefined = (globalThis as { gc?: Gc }).gc,
    readonly quietMs = QUIET_MS,
  ) {}

  /** Now: bulk work (a recovery) just ended. */
  now(): void {
    // "async" runs it from a task soon after (not inside the caller); it still pauses.
    this.gc?.({ type: "major", execution: "async", flavor: "last-resort" });
  }

  /** `bytes` were written; after enough of them, a GC follows the next quiet second. */
  wrote(bytes: number): void {
    if (!this.gc) return;
    this.#bytes += bytes;
    if (this.#bytes < BULK_BYTES) return;
    clearTimeout(this.#timer);
    const timer = setTimeout(() => {
      this.#timer = undefined;
      this.#bytes = 0;
      this.now();
    }, this.quietMs);
    Deno.unrefTimer(timer);
    this.#timer = timer;
  }

  /** Cancels a pending GC. */
  stop(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
