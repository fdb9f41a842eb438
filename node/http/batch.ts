/**
 * `POST /internal/batch`: many single-key operations in one call. Ops are independent:
 * one op's 4xx or 412 does not affect the others. All writes are one log record, fsync'd
 * once; reads run alongside, so a read of a key written in the same call may see either
 * value (the proxy only batches requests that were in flight together).
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import { checkKey } from "../../shared/keys.ts";
import type { Limits } from "../../shared/limits.ts";
import { isVersion } from "../../shared/version.ts";
import { type BatchOp, type BatchResult, DEFAULT_CONTENT_TYPE } from "../../shared/wire.ts";
import { BatchValues } from "./batch_values.ts";
import type { Fence, NodeEngine, WriteOp } from "../engine/engine.ts";
import type { Stored } from "../engine/packed.ts";
import { isObject } from "./node_request_body.ts";
import { byteLength, toBytes } from "../engine/values.ts";

type Parsed = { read: string } | { write: WriteOp } | { error: RingkvError };

/** A batch call's ops (each checked by {@link runBatch}) and how it wants values back. */
export interface BatchBody {
  ops: unknown[];
  /** `"textValues": true`: a value held as UTF-8 text comes back as `text`, not base64. */
  textValues: boolean;
  /** `"valueBudget": n`: reads stop once their values would pass n bytes (docs/internal-api.md). */
  valueBudget?: number;
}

/** Checks the body's shape; per-op problems are left to {@link runBatch}. */
export function parseBatchBody(body: unknown, limits: Limits): BatchBody {
  if (!isObject(body) || !Array.isArray(body.ops)) {
    throw new RingkvError("invalid_batch", 'Cannot run the batch: the body must be {"ops": [...]}');
  }
  if (body.ops.length > limits.maxBatchOps) {
    throw new RingkvError(
      "batch_too_large",
      `Cannot run the batch: it has ${body.ops.length} ops, the limit is ${limits.maxBatchOps}`,
    );
  }
  const valueBudget = valueBudgetOf(body, "run the batch", "invalid_batch");
  const textValues = body.textValues === true;
  return valueBudget === undefined
    ? { ops: body.ops, textValues }
    : { ops: body.ops, textValues, valueBudget };
}

/** The `valueBudget` of a call's `body` (undefined when absent); 400 `code` when not bytes. */
export function valueBudgetOf(
  body: Record<string, unknown>,
  what: string,
  code: "invalid_batch" | "bad_request",
): number | undefined {
  const { valueBudget } = body;
  if (valueBudget === undefined) return undefined;
  if (!Number.isSafeInteger(valueBudget) || (valueBudget as number) < 1) {
    throw new RingkvError(code, `Cannot ${what}: "valueBudget" is not a whole number >= 1`);
  }
  return valueBudget as number;
}

/**
 * Runs the ops and answers each in its position; `null` for a read left unread because the
 * values before it took the batch's `valueBudget` (the caller asks for it again). `fence`
 * refuses the whole call (nothing read, nothing written) routed by a map older than the node's:
 * checked as the reads are taken and again as the writes apply.
 */
export async function runBatch(
  engine: NodeEngine,
  batch: BatchBody,
  limits: Limits,
  fence?: Fence,
): Promise<(BatchResult | null)[]> {
  fence?.();
  const { ops, textValues } = batch;
  const values = new BatchValues(valueTexts(ops));
  const parsed = ops.map((op, i) => parseOp(op, i, limits, values));
  const results: (BatchResult | null)[] = new Array(ops.length);
  // Reads of durable keys are taken at once; only a key with a write awaiting its fsync waits.
  const pending: Promise<void>[] = [];
  const readAt: number[] = [];
  const held: (Stored | undefined)[] = [];
  const writes: WriteOp[] = [];
  const writeAt: number[] = [];
  parsed.forEach((p, i) => {
    if ("error" in p) results[i] = errorResult(p.error);
    else if ("write" in p) {
      writes.push(p.write);
      writeAt.push(i);
    } else {
      const j = readAt.push(i) - 1;
      const now = engine.held(p.read);
      if (!(now instanceof Promise)) held[j] = now;
      else pending.push(now.then((later) => void (held[j] = later)));
    }
  });
  const outcomes = writes.length > 0 ? engine.write(writes, fence) : Promise.resolve([]);
  const [done] = await Promise.all([outcomes, ...pending]);
  const fits = withinBudget(held, batch.valueBudget, textValues);
  readAt.forEach((i, j) => (results[i] = j < fits ? readResult(held[j], textValues) : null));
  done.forEach((outcome, j) => {
    results[writeAt[j]!] = outcome.version === undefined
      ? { status: outcome.status }
      : { status: outcome.status, version: outcome.version };
  });
  return results;
}

/**
 * How many of `held`, in order, one answer carries: all without a budget; else while their
 * values, as the answer carries them (`textValues`: text when it can be, else base64), stay
 * within it, and the first value whatever its size (so every call moves on).
 */
export function withinBudget(
  held: readonly (Stored | undefined)[],
  budget: number | undefined,
  textValues: boolean,
): number {
  if (budget === undefined || held.length < 2) return held.length;
  let bytes = 0;
  for (let j = 0; j < held.length; j++) {
    const size = answerBytes(held[j], textValues);
    if (bytes > 0 && bytes + size > budget) return j;
    bytes += size;
  }
  return held.length;
}

/** The bytes of `held`'s value in an answer (JSON's escapes aside), as {@link readResult} sends it. */
function answerBytes(held: Stored | undefined, textValues: boolean): number {
  if (held === undefined || held.kind === "tombstone") return 0;
  if (held.kind === "text" && textValues && !SIX_CHAR_ESCAPES.test(held.data)) {
    return byteLength(held);
  }
  return held.kind === "base64" ? held.data.length : Math.ceil(byteLength(held) / 3) * 4;
}

/**
 * Control characters JSON writes as `\u00XX` (6 chars for 1 byte): text full of them would
 * be far longer than its base64 (a 1 MiB value of NULs, 6 MiB), so such values go as base64.
 */
// deno-lint-ignore no-control-regex
const SIX_CHAR_ESCAPES = /[\u0000-\u0007\u000b\u000e-\u001f]/;

function readResult(held: Stored | undefined, textValues: boolean): BatchResult {
  if (held === undefined) return { status: 404 };
  const { kind, data, version, contentType } = held;
  if (kind === "tombstone") return { status: 404, version };
  if (kind === "text" && textValues && !SIX_CHAR_ESCAPES.test(data)) {
    return { status: 200, version, text: data, contentType };
  }
  const value = kind === "base64" ? data : toBytes(held)!.toBase64();
  return { status: 200, version, value, contentType };
}

function errorResult(err: RingkvError): BatchResult {
  return { status: err.status, error: { code: err.code, message: err.message } };
}

/** The `value` texts of the ops, for {@link BatchValues} to reserve room. */
function* valueTexts(ops: readonly unknown[]): Generator<string> {
  for (const op of ops) if (isObject(op) && typeof op.value === "string") yield op.value;
}

function parseOp(raw: unknown, i: number, limits: Limits, values: BatchValues): Parsed {
  try {
    return checkOp(raw, i, limits, values);
  } catch (err) {
    if (err instanceof RingkvError) return { error: err };
    throw err;
  }
}

function checkOp(
  raw: unknown,
  i: number,
  limits: Limits,
  values: BatchValues,
): { read: string } | { write: WriteOp } {
  const bad = (why: string) => new RingkvError("invalid_batch", `Cannot run op ${i}: ${why}`);
  if (!isObject(raw)) throw bad("it is not a JSON object");
  const op = raw as Partial<Record<keyof BatchOp, unknown>>;
  if (typeof op.key !== "string") throw bad('"key" is not a string');
  const key = checkKey(op.key, limits.maxKeyBytes);
  if (op.op === "get") return { read: key };
  if (op.op !== "put" && op.op !== "delete") throw bad('"op" is not get, put or delete');
  const conditions = checkConditions(op, bad);
  if (op.op === "delete") {
    if (op.expire !== undefined && (op.expire !== true || conditions.ifMatch === undefined)) {
      throw bad('"expire" must be true and come with "ifMatch"');
    }
    return { write: { op: "delete", key, ...conditions, ...(op.expire ? { expire: true } : {}) } };
  }
  const value = checkValue(op, i, limits, values, bad);
  return { write: { op: "put", key, ...value, ...conditions } };
}

function checkValue(
  op: Partial<Record<keyof BatchOp, unknown>>,
  i: number,
  limits: Limits,
  values: BatchValues,
  bad: (why: string) => RingkvError,
): { value: Uint8Array; contentType: string } {
  if (typeof op.value !== "string") throw bad('"value" (base64) is missing');
  if (op.contentType !== undefined && typeof op.contentType !== "string") {
    throw bad('"contentType" is not a string');
  }
  const value = decodeValue(values, op.value, i);
  if (value.length > limits.maxValueBytes) {
    throw new RingkvError(
      "value_too_large",
      `Cannot run op ${i}: the value is ${value.length} bytes, the limit is ${limits.maxValueBytes}`,
    );
  }
  return { value, contentType: op.contentType || DEFAULT_CONTENT_TYPE };
}

function decodeValue(values: BatchValues, text: string, i: number): Uint8Array {
  try {
    return values.decode(text);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new RingkvError(
      "bad_request",
      `Cannot decode the value of op ${i}: it is not valid base64`,
    );
  }
}

function checkConditions(
  op: Partial<Record<keyof BatchOp, unknown>>,
  bad: (why: string) => RingkvError,
): { ifMatch?: string; ifNoneMatch?: "*"; minVersion?: string } {
  const out: { ifMatch?: string; ifNoneMatch?: "*"; minVersion?: string } = {};
  if (op.ifMatch !== undefined) {
    if (typeof op.ifMatch !== "string" || op.ifMatch === "") {
      throw bad('"ifMatch" is not a version');
    }
    out.ifMatch = op.ifMatch;
  }
  if (op.ifNoneMatch !== undefined) {
    if (op.ifNoneMatch !== "*") throw bad('"ifNoneMatch" can only be "*"');
    out.ifNoneMatch = "*";
  }
  if (op.minVersion !== undefined) {
    if (typeof op.minVersion !== "string" || !isVersion(op.minVersion)) {
      throw bad('"minVersion" is not a version');
    }
    out.minVersion = op.minVersion;
  }
  return out;
}
