/**
 * Quorum plumbing for replication: {@link gather} calls replicas until enough of them
 * gave a good answer (up replicas first, the others only when a quorum cannot be formed
 * without them), and {@link KeyLocks} runs one operation per key at a time in a proxy.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import type { NodeRef } from "../nodes/node_client.ts";

/** The majority of `n` replicas. */
export function quorumOf(n: number): number {
  return Math.floor(n / 2) + 1;
}

/** How many of `n` replicas may miss a write (or a map) while a quorum still has it. */
export function toleratedOf(n: number): number {
  return n - quorumOf(n);
}

/** How a {@link gather} went. */
export interface Gathered<T> {
  /** Good answers, in arrival order (at least `need` when `ok`). */
  good: { node: NodeRef; value: T }[];
  /** Answers that were not good (e.g. refused votes). */
  bad: { node: NodeRef; value: T }[];
  errors: RingkvError[];
  /** Replicas that were never called (known down, and not needed). */
  skipped: NodeRef[];
  ok: boolean;
}

/**
 * Calls `call` on the `ordered` replicas (up ones first; `upCount` of them) until `need`
 * answers are good or that has become impossible. A down replica is called in place of
 * one that failed, never of one that refused: a refusal names a ballot the caller can
 * beat at the replicas that answer, while a down one costs a whole timeout (a paused node
 * on every request, not once per probe interval). Calls still running when it settles
 * keep running (their outcome goes to `call`'s own handlers).
 */
export function gather<T>(
  ordered: readonly NodeRef[],
  upCount: number,
  need: number,
  call: (node: NodeRef) => Promise<T>,
  isGood: (value: T) => boolean,
): Promise<Gathered<T>> {
  const result: Gathered<T> = { good: [], bad: [], errors: [], skipped: [], ok: false };
  if (need <= 0) return Promise.resolve({ ...result, ok: true, skipped: [...ordered] });
  return new Promise((resolve) => {
    let started = 0;
    let pending = 0;
    let done = false;
    const finish = (ok: boolean) => {
      if (done) return;
      done = true;
      resolve({ ...result, ok, skipped: ordered.slice(started) });
    };
    const launch = () => {
      const node = ordered[started++]!;
      pending++;
      call(node).then((value) => {
        (isGood(value) ? result.good : result.bad).push({ node, value });
      }, (err) => {
        if (!(err instanceof RingkvError)) throw err;
        result.errors.push(err);
      }).finally(() => {
        pending--;
        check();
      });
    };
    const check = () => {
      if (done) return;
      if (result.good.length >= need) return finish(true);
      while (
        result.good.length + pending < need && started < ordered.length &&
        (started < upCount || result.bad.length === 0)
      ) launch();
      if (result.good.length + pending < need) finish(false);
    };
    const first = Math.max(Math.min(upCount, ordered.length), Math.min(need, ordered.length));
    while (started < first) launch();
    check();
  });
}

/** Runs one operation per key at a time, in arrival order. */
export class KeyLocks {
  readonly #tails = new Map<string, Promise<void>>();

  /**
   * With `waitMs`, a `run` that waits longer than that for the key's earlier ones gives up with
   * `waitedOut()`, and its `fn` never runs (the order of those after it is kept): behind an
   * operation waiting on a node that stopped answering, the n-th request for one key took n
   * timeouts (QA: 2.1, 4.2, 6.3, 8.4 and 10.5 s).
   */
  constructor(
    private readonly waitMs?: number,
    private readonly waitedOut: (key: string, ms: number) => Error = (key, ms) =>
      new Error(`Cannot run an operation on key ${key}: waited ${ms} ms for the earlier ones`),
  ) {}

  /**
   * Runs `fn` after every earlier `run` of `key` has settled. A key nobody holds starts `fn`
   * at once: every write takes this lock, and waiting a turn for nothing cost it promises.
   */
  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const before = this.#tails.get(key);
    const gate = Promise.withResolvers<void>();
    const tail = before === undefined ? gate.promise : before.then(() => gate.promise);
    this.#tails.set(key, tail);
    // Set only for a run that waits with a limit: an uncontended run allocates nothing more.
    let wait: { abandoned: boolean; timer: ReturnType<typeof setTimeout> } | undefined = undefined;
    const go = async () => {
      try {
        if (wait !== undefined) {
          clearTimeout(wait.timer); // its wait is over: `fn` has its own deadlines
          if (wait.abandoned) throw this.waitedOut(key, this.waitMs!);
        }
        return await fn();
      } finally {
        gate.resolve();
        if (this.#tails.get(key) === tail) this.#tails.delete(key);
      }
    };
    if (before === undefined) return go();
    const turn = before.then(go);
    if (this.waitMs === undefined) return turn;
    // Only a run that waits pays for a timer.
    const { promise, resolve, reject } = Promise.withResolvers<T>();
    wait = {
      abandoned: false,
      timer: setTimeout(() => {
        wait!.abandoned = true;
        reject(this.waitedOut(key, this.waitMs!));
      }, this.waitMs),
    };
    turn.then(resolve, reject);
    return promise;
  }
}
