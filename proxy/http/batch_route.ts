/**
 * `POST /kv`: `{"set": {"k": <json value>}, "delete": ["k2"]}`. A JSON string is stored
 * as its text (`text/plain; charset=utf-8`), any other JSON value as its JSON text
 * (`application/json`), each number in it as the client wrote it. Each pair is routed to its
 * owner and applied independently (not atomically across nodes, like `MSET` across Redis
 * Cluster slots); the answer lists every key's outcome and comes only when every pair is durable.
 *
 * @module
 */
import { clipped, RingkvError } from "../../shared/errors.ts";
import { checkKey } from "../../shared/keys.ts";
import { scanNames } from "../../shared/json_names.ts";
import type { Limits } from "../../shared/limits.ts";
import type { BatchOp } from "../../shared/wire.ts";
import type { PublicRoutesDeps } from "./public_routes.ts";
import { readBody, utf8Text } from "./request_body.ts";
import { storedType } from "./expiry_view.ts";
import type { Outcome } from "../routing/router.ts";

const ENCODER = new TextEncoder();

/** Content type of a batch value given as a JSON string. */
export const TEXT_CONTENT_TYPE = "text/plain; charset=utf-8";
/** Content type of a batch value given as any other JSON value. */
export const JSON_CONTENT_TYPE = "application/json";

/** One key's outcome in the batch answer. */
export interface KeyOutcome {
  status: number;
  version?: string;
  error?: { code: string; message: string; [extra: string]: unknown };
}

/** Handles `POST /kv`: 200 when every pair was applied (or was a delete of nothing), else 207. */
export async function handleBatch(deps: PublicRoutesDeps, req: Request): Promise<Response> {
  const { maxBatchBytes, bodyTimeoutMs } = deps.limits;
  const timeout = deps.bodyTimers ?? bodyTimeoutMs;
  const body = await readBody(req, maxBatchBytes, "batch_too_large", "the batch", timeout);
  const ops = parseBatch(body, deps.limits);
  deps.requestIds?.tag(ops, req);
  const outcomes = await deps.router.run(ops);
  const results = Object.fromEntries(ops.map((op, i) => [op.key, keyOutcome(outcomes[i]!)]));
  const complete = Object.values(results).every((r) => r.error === undefined);
  return Response.json({ results }, { status: complete ? 200 : 207 });
}

function keyOutcome(outcome: Outcome): KeyOutcome {
  if (outcome instanceof RingkvError) {
    // The same error body as the single-key call's (a down node's `node` and `url` included).
    const error = { ...outcome.extra, code: outcome.code, message: outcome.message };
    return { status: outcome.status, error };
  }
  const { status, version, error } = outcome;
  if (status === 404) return { status };
  if (status >= 200 && status < 300) return { status, version };
  return {
    status,
    error: error ?? { code: "bad_gateway", message: `The node answered ${status}` },
  };
}

/** JSON source text access (ES2025, V8 in Deno 2.9), which TypeScript's lib does not declare. */
interface RawJson {
  readonly rawJSON: string;
}
const SOURCE_JSON = JSON as typeof JSON & {
  parse(
    text: string,
    reviver: (key: string, value: unknown, context: { source?: string }) => unknown,
  ): unknown;
  rawJSON(text: string): RawJson;
  isRawJSON(value: unknown): value is RawJson;
};

/**
 * Keeps each number as its source text: `JSON.stringify` then writes it back as written, where a
 * JS number would round `12345678901234567890` and turn `1e400` into `null`.
 */
function keepNumberText(_key: string, value: unknown, context: { source?: string }): unknown {
  return typeof value === "number" ? SOURCE_JSON.rawJSON(context.source!) : value;
}

/**
 * Where a JSON text may hold a number: each one follows `:`, `,` or `[` (whitespace aside). The
 * reviver triples the parse of a batch of strings (0.2 to 0.7 ms for 1000 values); this scan
 * costs 0.02 ms, and a match inside a string only costs that batch the reviver.
 */
const NUMBER_START = /[:,[][ \t\n\r]*[-\d]/;

/** `text` parsed, each number kept as written when there may be any. */
function parseKeepingNumbers(text: string): unknown {
  return NUMBER_START.test(text) ? SOURCE_JSON.parse(text, keepNumberText) : JSON.parse(text);
}

/** A field of the batch itself (not a value to store) as plain JSON: a kept number unwrapped. */
function plain(value: unknown): unknown {
  return SOURCE_JSON.isRawJSON(value) ? Number(value.rawJSON) : value;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** Levels of arrays and objects a batch may nest, the body's own two included. */
export const MAX_NESTING = 1000;

function tooDeep(): RingkvError {
  return invalid(`its arrays and objects nest deeper than ${MAX_NESTING} levels`);
}

function invalid(why: string): RingkvError {
  return new RingkvError(
    "invalid_batch",
    `Cannot apply the batch: ${why}; expected {"set": {"key": <json value>, ...}, "delete": ["key", ...], "ttl": {"key": <seconds>, ...}}`,
  );
}

/** The body of `POST /kv` as operations (puts first); every key and value checked. */
export function parseBatch(bytes: Uint8Array, limits: Limits): BatchOp[] {
  const text = utf8Text(bytes);
  if (text === undefined) {
    throw new RingkvError("invalid_json", "Cannot read the batch: it is not UTF-8");
  }
  let doc: unknown;
  try {
    doc = plain(parseKeepingNumbers(text));
  } catch (err) {
    // The reviver that keeps numbers recurses: ~3,400 levels overflow its stack (review).
    if (err instanceof RangeError) throw tooDeep();
    throw new RingkvError("invalid_json", `Cannot read the batch: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw invalid("the body is not a JSON object");
  // JSON.parse keeps the last of two equal names: a write would be dropped without a word.
  const scan = scanNames(text, MAX_NESTING);
  if (scan.tooDeep) throw tooDeep(); // with numbers or without: one limit
  const repeated = scan.repeated;
  if (repeated !== undefined) {
    // The name may come from inside a value (up to the body's size): not echoed whole.
    throw invalid(
      `the name ${clipped(repeated, { quoted: true })} appears twice in one JSON object`,
    );
  }
  const unknown = Object.keys(doc).find((k) => k !== "set" && k !== "delete" && k !== "ttl");
  if (unknown !== undefined) throw invalid(`unknown field "${unknown}"`);
  // Absent means none; null is not an object or an array (docs/api.md promises 400).
  const set = doc.set === undefined ? {} : plain(doc.set);
  const del = doc.delete === undefined ? [] : doc.delete;
  if (!isObject(set)) throw invalid(`"set" is not an object`);
  if (!Array.isArray(del) || !del.every((k) => typeof k === "string")) {
    throw invalid(`"delete" is not an array of strings`);
  }
  const entries = Object.entries(set);
  if (entries.length + del.length > limits.maxBatchOps) {
    throw new RingkvError(
      "batch_too_large",
      `Cannot apply the batch: it has ${
        entries.length + del.length
      } operations, the limit is ${limits.maxBatchOps}`,
    );
  }
  const ops: BatchOp[] = entries.map(([key, value]) => putOp(key, value, limits));
  if (doc.ttl !== undefined) applyTtls(ops, plain(doc.ttl));
  const seen = new Set(entries.map(([key]) => key));
  for (const key of del as string[]) {
    checkKey(key, limits.maxKeyBytes);
    if (seen.has(key)) throw invalid(`key "${key}" appears twice`);
    seen.add(key);
    ops.push({ op: "delete", key });
  }
  return ops;
}

/** Gives the puts named in `"ttl": {"key": seconds}` their expiry; every name must be a set key. */
function applyTtls(ops: BatchOp[], ttl: unknown): void {
  if (!isObject(ttl)) throw invalid(`"ttl" is not an object`);
  const now = Date.now();
  for (const [key, given] of Object.entries(ttl)) {
    const seconds = plain(given);
    const op = ops.find((o) => o.key === key);
    if (op === undefined) throw invalid(`"ttl" names key "${key}", which "set" does not`);
    const raw = typeof seconds === "number" ? String(seconds) : JSON.stringify(seconds);
    op.contentType = storedType(op.contentType!, raw, key, now);
  }
}

function putOp(key: string, value: unknown, limits: Limits): BatchOp {
  checkKey(key, limits.maxKeyBytes);
  const isText = typeof value === "string";
  const bytes = ENCODER.encode(isText ? value : JSON.stringify(value));
  if (bytes.byteLength > limits.maxValueBytes) {
    throw new RingkvError(
      "value_too_large",
      `Cannot apply the batch: the value of key "${key}" is ${bytes.byteLength} bytes, the limit is ${limits.maxValueBytes} (--max-value-bytes)`,
    );
  }
  const contentType = isText ? TEXT_CONTENT_TYPE : JSON_CONTENT_TYPE;
  return { op: "put", key, value: bytes.toBase64(), contentType };
}
