/**
 * The clients of the replication chaos tests: each picks random operations on a few keys
 * (gets, puts, compare-and-sets, deletes) and runs them through a proposer, and the history is
 * kept for tests/helpers/linearizability.ts.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import type { BatchOp, BatchResult } from "../../shared/wire.ts";
import { StaleEpochError } from "../../proxy/nodes/node_client.ts";
import type { Replicas, Replicated } from "../../proxy/replication/caspaxos.ts";
import type { Call, Operation, Result } from "./linearizability.ts";

/**
 * One client operation: the call as the checker sees it, and the op the proxy runs (its value
 * as `store` writes it: base64 of the value by default).
 */
export function pick(
  random: () => number,
  key: string,
  value: string,
  seen?: string,
  store: (value: string) => string = btoa,
): { call: Call; op: BatchOp } {
  const x = random();
  const ops: [number, Call, () => BatchOp][] = [
    [0.3, { op: "get" }, () => ({ op: "get", key })],
    [0.55, { op: "put", value }, () => ({ op: "put", key, value: store(value) })],
    [
      0.75,
      { op: "put", value, ifMatch: seen },
      () => ({ op: "put", key, value: store(value), ifMatch: seen }),
    ],
    [
      0.85,
      { op: "put", value, ifNoneMatch: true },
      () => ({ op: "put", key, value: store(value), ifNoneMatch: "*" }),
    ],
    [0.95, { op: "delete" }, () => ({ op: "delete", key })],
    [1, { op: "delete", ifMatch: seen }, () => ({ op: "delete", key, ifMatch: seen })],
  ];
  const [, call, op] = ops.find(([p]) => x < p)!;
  if (seen === undefined && "ifMatch" in call) return pick(() => 0.4, key, value, seen, store);
  return { call, op: op() };
}

/** What the checker sees of an answer (a read's value as `load` reads it: base64 by default). */
export function resultOf(call: Call, res: BatchResult, load: (v: string) => string = atob): Result {
  const version = res.version;
  if (call.op === "get" && res.status === 200) {
    return { status: 200, value: load(res.value!), ...(version ? { version } : {}) };
  }
  return { status: res.status as 200, ...(version ? { version } : {}) };
}

/** Runs `op` as the router would: a stale epoch (nothing applied) is retried. */
export async function runOnce(
  rep: Replicated,
  replicas: Replicas,
  op: BatchOp,
): Promise<BatchResult | undefined> {
  for (let attempt = 0; attempt < 4; attempt++) {
    try {
      return await rep.run(replicas, op);
    } catch (err) {
      if (err instanceof StaleEpochError) continue;
      if (!(err instanceof RingkvError)) throw err;
      return undefined;
    }
  }
  return undefined;
}

/** The operations of one key in a history, in the order they started, one JSON line each. */
export function historyOf(history: readonly Operation[], key: string): string {
  const ops = history.filter((o) => o.key === key).sort((a, b) => a.start - b.start);
  return ops.map((o) => JSON.stringify(o)).join("\n");
}
