/**
 * What a node's results must hold before the proxy answers from them (docs/internal-api.md): a
 * `POST /internal/batch` result a status, a version on every 2xx (the client's `ETag`) and a
 * value on a GET's 200; a read or prepare entry a key, a value or null and a version (compared
 * as a ballot). A result that breaks this is the node's fault, answered 502 by the caller,
 * never passed on as `ETag: "undefined"` or an empty value.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { resultProblem } from "./node_results.ts";
 * const op = { op: "get" as const, key: "k" };
 * assertEquals(resultProblem(op, { status: 404 }), undefined);
 * assertEquals(resultProblem(op, { status: 200, text: "v" }), "result 0 is 200 without a version");
 * ```
 */
import { isVersion } from "../../shared/version.ts";
import type { BatchOp, WireEntry } from "../../shared/wire.ts";

/** Why `result` cannot be the answer to `op` (at position `i`), or undefined when it can. */
export function resultProblem(op: BatchOp, result: unknown, i = 0): string | undefined {
  if (typeof result !== "object" || result === null) return `result ${i} is not an object`;
  const r = result as Record<string, unknown>;
  const status = r.status;
  if (!Number.isInteger(status) || (status as number) < 100 || (status as number) > 599) {
    return `result ${i} has no HTTP status`;
  }
  if ((status as number) < 200 || (status as number) > 299) return undefined;
  if (typeof r.version !== "string" || !isVersion(r.version)) {
    return `result ${i} is ${status} without a version`;
  }
  if (op.op === "get" && typeof r.text !== "string" && typeof r.value !== "string") {
    return `result ${i} is ${status} without a value`;
  }
  return undefined;
}

/** Why `e` (at position `i`) cannot be a read or prepare entry, or undefined when it can. */
export function entryProblem(e: unknown, i = 0): string | undefined {
  if (e === null) return undefined;
  const w = e as Partial<WireEntry> | undefined;
  if (
    typeof w !== "object" || typeof w.k !== "string" || typeof w.ver !== "string" ||
    !isVersion(w.ver) || (w.v !== null && typeof w.v !== "string")
  ) {
    return `entry ${i} is not a key, value and version`;
  }
  return undefined;
}
