/**
 * A per-key linearizability checker for histories of get/put/delete/compare-and-set on
 * a key-value store with versions (ETags): the Wing & Gong search (Wing and Gong 1993,
 * "Testing and verifying concurrent objects") with porcupine's memoization (Athalye,
 * github.com/anishathalye/porcupine): a configuration (set of linearized operations,
 * model state) that failed once is never explored again. Keys are independent and
 * checked one by one.
 *
 * Operations that failed or timed out ("unknown") may have taken effect at any point
 * after their call, or never: they have no return time and may also be linearized as
 * no-ops. A write whose answer is unknown leaves the state with an unknown version (its
 * ballot, which no client saw); one that changed nothing may have re-stamped the value
 * with an unseen version. If-Match never holds on an unknown version.
 *
 * The model's state is the value and its version. A version the store re-stamped
 * (docs/replication.md: a no-op write or a read that found replicas disagreeing) may
 * appear on a get or a 412 only when it is newer than the state's version and no write
 * produced it.
 *
 * @module
 */

/** What a client asked. Values must be unique per key (each put writes a fresh one). */
export type Call =
  | { op: "get" }
  | { op: "put"; value: string; ifMatch?: string; ifNoneMatch?: boolean }
  | { op: "delete"; ifMatch?: string };

/** What it got: a status with the value/version seen, or unknown (failed, timed out). */
export type Result =
  | { status: 200 | 201 | 204 | 404 | 412; value?: string; version?: string }
  | { status: "unknown" };

/** One operation of a history (times from one monotonic clock, e.g. performance.now()). */
export interface Operation {
  key: string;
  client: number;
  call: Call;
  result: Result;
  start: number;
  /** Ignored for unknown results. */
  end: number;
}

interface State {
  value: string | null;
  /** undefined: written by an operation whose answer is unknown. */
  version: string | null | undefined;
}

/** The first key whose history is not linearizable, or null when every key's is. */
export function checkHistory(history: readonly Operation[]): string | null {
  const byKey = new Map<string, Operation[]>();
  for (const op of history) {
    const ops = byKey.get(op.key) ?? [];
    ops.push(op);
    byKey.set(op.key, ops);
  }
  for (const [key, ops] of byKey) if (!linearizable(ops)) return key;
  return null;
}

/** Whether one key's operations have a linearization from the absent state. */
export function linearizable(ops: readonly Operation[]): boolean {
  const written = new Set<string>();
  for (const op of ops) {
    if (op.call.op === "get") continue;
    const status = op.result.status;
    if ((status === 200 || status === 201 || status === 204) && op.result.version) {
      written.add(op.result.version);
    }
  }
  const ends = ops.map((op) => op.result.status === "unknown" ? Infinity : op.end);
  const all = (1n << BigInt(ops.length)) - 1n;
  const failed = new Set<string>();
  const search = (done: bigint, state: State): boolean => {
    if (done === all) return true;
    const memo = `${done.toString(36)}|${state.value}|${state.version}`;
    if (failed.has(memo)) return false;
    let minEnd = Infinity;
    for (let i = 0; i < ops.length; i++) {
      if ((done & (1n << BigInt(i))) === 0n && ends[i]! < minEnd) minEnd = ends[i]!;
    }
    for (let i = 0; i < ops.length; i++) {
      const bit = 1n << BigInt(i);
      if ((done & bit) !== 0n || ops[i]!.start > minEnd) continue;
      for (const next of step(state, ops[i]!, written)) {
        if (search(done | bit, next)) return true;
      }
    }
    failed.add(memo);
    return false;
  };
  return search(0n, { value: null, version: null });
}

/** The states `op` can lead to from `s` (none: it cannot happen in `s`). */
export function step(s: State, op: Operation, written: ReadonlySet<string>): State[] {
  const r = op.result;
  if (r.status === "unknown") {
    // An operation that changed nothing may still have re-stamped a live value with a
    // version nobody saw (docs/replication.md), whether it answered or not.
    const restamped: State[] = s.value === null ? [] : [{ ...s, version: undefined }];
    const applied = op.call.op === "get" ? undefined : apply(s, op.call);
    return applied === undefined
      ? [s, ...restamped]
      : [s, ...restamped, { ...applied, version: undefined }];
  }
  const live = s.value !== null;
  const versionOk = (v: string | undefined) =>
    v !== undefined && (s.version === undefined || v === s.version ||
      (!written.has(v) && (s.version === null || v > s.version)));
  if (op.call.op === "get") {
    if (r.status === 404) return live ? [] : [s];
    if (r.status !== 200 || !live || r.value !== s.value || !versionOk(r.version)) return [];
    return [{ ...s, version: r.version }];
  }
  if (r.status === 412) {
    if (holds(s, op.call)) return [];
    if (!live || r.version === undefined) return [s];
    return versionOk(r.version) ? [{ ...s, version: r.version }] : [];
  }
  if (!holds(s, op.call)) return [];
  if (op.call.op === "delete") {
    if (r.status === 404) return live ? [] : [s];
    return r.status === 204 && live ? [{ value: null, version: null }] : [];
  }
  const want = live ? 200 : 201;
  return r.status === want ? [{ value: op.call.value, version: r.version ?? undefined }] : [];
}

function holds(s: State, call: Call): boolean {
  const live = s.value !== null;
  if (call.op === "get") return true;
  // An unknown version (undefined) is the ballot of a write whose answer was lost, or a
  // re-stamp nobody saw: no client can name it, since every answer that shows the
  // state's version makes it known; so If-Match never holds on it.
  if (call.ifMatch !== undefined) return live && s.version === call.ifMatch;
  if (call.op === "put" && call.ifNoneMatch) return !live;
  return true;
}

/** The state after a write that took effect, or undefined when its condition fails. */
function apply(s: State, call: Call): State | undefined {
  if (call.op === "get" || !holds(s, call)) return undefined;
  if (call.op === "delete") return { value: null, version: null };
  return { value: call.value, version: undefined };
}
