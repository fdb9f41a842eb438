/**
 * What a node's `POST /internal/batch` result must hold before the proxy answers from it
 * (docs/internal-api.md): a status, a version on every 2xx (the client's `ETag`), and a value
 * on a GET's 200. A result that breaks this is the node's fault, answered 502 by the caller,
 * never passed on as `ETag: "undefined"` or an empty value.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { resultProblem } from "./batch_results.ts";
 * const op = { op: "get" as const, key: "k" };
 * assertEquals(resultProblem(op, { status: 404 }), undefined);
 * assertEquals(resultProblem(op, { status: 200, text: "v" }), "result 0 is 200 without a version");
 * ```
 */
import { isVersion } from "../../shared/version.ts";
import type { BatchOp } from "../../shared/wire.ts";

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
