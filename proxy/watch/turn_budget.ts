/**
 * Bounds how long the watch holds the proxy's one thread in one turn of the event loop: a
 * merge or an SSE text of a large page runs in slices of {@link SLICE_MS}, and between two
 * slices the loop serves what arrived meanwhile (the PUTs' requests and their node calls'
 * answers), so a write waits for at most a slice of watch work, not for a whole page's.
 * Slicing changes when the work runs, never its order or its result.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { TurnBudget } from "./turn_budget.ts";
 * let now = 0;
 * const budget = new TurnBudget(2, () => now, () => Promise.resolve());
 * assertEquals(budget.spent(), false);
 * now = 3;
 * assertEquals(budget.spent(), true);
 * await budget.yield();
 * assertEquals(budget.spent(), false);
 * ```
 *
 * @module
 */

/**
 * Time one slice of watch work may hold the thread, in ms: a PUT's answer waits behind at
 * most about this much of it (docs/performance-history.md "Event-loop lag under the watch load").
 */
export const SLICE_MS = 2;

/**
 * Resolves in a later turn of the event loop, after the I/O that is ready: a timer, since a
 * microtask or a `MessageChannel` message runs before the loop polls its sockets.
 */
export function nextTurn(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

/** The time left in the current slice of work, and the yield that starts the next. */
export class TurnBudget {
  #start: number;
  /** Slices yielded so far (tests, metrics). */
  yields = 0;

  /** A slice of `ms` starts now; `pause` waits for the loop's next turn ({@link nextTurn}). */
  constructor(
    private readonly ms = SLICE_MS,
    private readonly clock: () => number = () => performance.now(),
    private readonly pause: () => Promise<void> = nextTurn,
  ) {
    this.#start = clock();
  }

  /** Whether the slice has used its time: the caller then awaits {@link yield}. */
  spent(): boolean {
    return this.clock() - this.#start >= this.ms;
  }

  /** Starts a slice now (the caller awaited something else since: the loop has turned). */
  restart(): void {
    this.#start = this.clock();
  }

  /** Lets the event loop serve what is ready, then starts a new slice. */
  async yield(): Promise<void> {
    this.yields++;
    await this.pause();
    this.#start = this.clock();
  }
}
