/**
 * Single-key routes of the node: `GET|HEAD|PUT|DELETE /kv/{key}`, with ETags, conditional
 * writes and the version headers of docs/internal-api.md: the version is in `ETag`; only a
 * tombstone's 404, which has no ETag, carries it in `x-ringkv-version`.
 *
 * @module
 */
import type { Context, Hono } from "hono";
import { errorResponse, RingkvError } from "../../shared/errors.ts";
import { keyFromPath } from "../../shared/keys.ts";
import type { Version } from "../../shared/version.ts";
import { DEFAULT_CONTENT_TYPE, VERSION_HEADER } from "../../shared/wire.ts";
import type { Fence, NodeEngine, WriteOp, WriteOutcome } from "../engine/engine.ts";
import { readConditions } from "../engine/conditions.ts";
import { readCappedBody } from "../../shared/capped_body.ts";
import { type NodeContext, rawPath, route } from "./node_context.ts";
import { epochFence } from "./epoch_fence.ts";
import type { Stored } from "../engine/packed.ts";
import { byteLength, toBytes } from "../engine/values.ts";

const MAX_CONTENT_TYPE = 256;
const STAR_RETRIES = 5;

/** Registers the `/kv/{key}` routes. */
export function kvRoutes(app: Hono, ctx: NodeContext): void {
  route(app, "/kv/*", {
    GET: (c) => getKey(ctx, keyOf(c, ctx), c.req.raw),
    HEAD: (c) => getKey(ctx, keyOf(c, ctx), c.req.raw, true),
    PUT: (c) => putKey(ctx, c),
    DELETE: (c) => deleteKey(ctx, c),
  });
}

/** The key of a `/kv/{key}` request, decoded from the raw path so `%2F` stays in the key. */
function keyOf(c: Context, ctx: NodeContext): string {
  return keyFromRawPath(rawPath(c.req.url), ctx);
}

/** The key of a raw `/kv/{key}` path (percent-encoding kept). */
export function keyFromRawPath(path: string, ctx: NodeContext): string {
  if (!path.startsWith("/kv/")) {
    throw new RingkvError("no_route", `Cannot find route ${path}: keys live under /kv/`);
  }
  return keyFromPath(path.slice("/kv/".length), ctx.limits.maxKeyBytes);
}

/**
 * `ETag` for a version, when there is one. It is the version's one header: a second copy in
 * `x-ringkv-version` cost every GET ~0.3 µs in Deno.serve and nobody read it.
 */
export function versionHeaders(version: Version | undefined): Record<string, string> {
  return version === undefined ? {} : { etag: `"${version}"` };
}

/**
 * The answer to GET (or, with `head`, HEAD) of `key`. A durable key answers in this turn (no
 * promise); one whose write awaits its fsync, after it, or when the caller leaves (`req.signal`,
 * read only then: Deno may make a served request's signal only when it is first asked for).
 */
export function getKey(
  ctx: NodeContext,
  key: string,
  req: Request,
  head = false,
): Response | Promise<Response> {
  const held = ctx.engine.held(key);
  return held instanceof Promise
    ? untilLeft(held, req.signal, key).then((h) => keyAnswer(key, h, head))
    : keyAnswer(key, held, head);
}

/**
 * `held`, or a 503 once the caller left: on a stalled disk the fsync may take minutes, and a
 * read waiting for it would hold its in-flight slot long after the proxy's call timed out.
 */
function untilLeft<T>(held: Promise<T>, signal: AbortSignal, key: string): Promise<T> {
  const left = () =>
    new RingkvError(
      "unavailable",
      `Cannot get key "${key}": the caller left while its write waited for the disk`,
    );
  if (signal.aborted) return Promise.reject(left());
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(left());
    signal.addEventListener("abort", onAbort, { once: true });
    held.then(resolve, reject).finally(() => signal.removeEventListener("abort", onAbort));
  });
}

/** The answer to a GET: a tombstone's 404 has no ETag, so its version goes in x-ringkv-version. */
function keyAnswer(key: string, held: Stored | undefined, head: boolean): Response {
  if (held === undefined || held.kind === "tombstone") {
    const err = new RingkvError("not_found", `Cannot get key "${key}": it does not exist`);
    return errorResponse(err, held ? { [VERSION_HEADER]: held.version } : undefined);
  }
  // Text goes out as the string it is held as: Deno encodes it natively, no bytes made in JS.
  const body = held.kind === "text" ? held.data : toBytes(held) as Uint8Array<ArrayBuffer>;
  // Two headers, each ~0.3 µs in Deno.serve: the version and node id headers went (nobody read
  // them on a GET; the node's id is in /health).
  const headers: Record<string, string> = {
    "content-type": held.contentType,
    etag: `"${held.version}"`,
  };
  // Deno.serve sends a GET body's exact Content-Length itself (one header fewer to build: ~2 µs
  // of ~20 per GET); HEAD drops the body, so there it is said.
  if (head) headers["content-length"] = String(byteLength(held));
  return new Response(body, { status: 200, headers });
}

async function putKey(ctx: NodeContext, c: Context): Promise<Response> {
  const key = keyOf(c, ctx);
  const { conditions, matchAny } = readConditions(c.req.raw.headers);
  const contentType = c.req.header("content-type") || DEFAULT_CONTENT_TYPE;
  if (contentType.length > MAX_CONTENT_TYPE) {
    throw new RingkvError(
      "invalid_header",
      `Cannot store Content-Type: it is ${contentType.length} characters, the limit is ${MAX_CONTENT_TYPE}`,
    );
  }
  const max = ctx.limits.maxValueBytes;
  const value = await readCappedBody(
    c.req.raw,
    max,
    (size, exact) =>
      new RingkvError(
        "value_too_large",
        `Cannot store the value of "${key}": it is ${size}${
          exact ? "" : "+"
        } bytes, the limit is ${max}`,
      ),
    "the value",
    ctx.bodyTimers,
  );
  const op: WriteOp = { op: "put", key, value, contentType, ...conditions };
  const outcome = await writeOne(ctx.engine, op, matchAny, epochFence(ctx, c.req.raw));
  if (outcome.status === 412) return preconditionFailed(key, outcome);
  return new Response(null, { status: outcome.status, headers: versionHeaders(outcome.version) });
}

async function deleteKey(ctx: NodeContext, c: Context): Promise<Response> {
  const key = keyOf(c, ctx);
  const { conditions, matchAny } = readConditions(c.req.raw.headers);
  const op: WriteOp = { op: "delete", key, ...conditions };
  const outcome = await writeOne(ctx.engine, op, matchAny, epochFence(ctx, c.req.raw));
  if (outcome.status === 412) return preconditionFailed(key, outcome);
  if (outcome.status === 404) {
    const err = new RingkvError("not_found", `Cannot delete key "${key}": it does not exist`);
    return errorResponse(err); // the store answers a delete's 404 without a version
  }
  return new Response(null, { status: 204, headers: versionHeaders(outcome.version) });
}

function preconditionFailed(key: string, outcome: WriteOutcome): Response {
  const err = new RingkvError(
    "precondition_failed",
    `Cannot write key "${key}": its current version does not match the condition`,
  );
  return errorResponse(err, versionHeaders(outcome.version));
}

/**
 * Writes one op (refused by `fence` as {@link NodeEngine.write} says). With `If-Match: *` the
 * key must exist: the engine only compares exact versions, so read the current one and retry
 * while other writers keep replacing it.
 */
export async function writeOne(
  engine: NodeEngine,
  op: WriteOp,
  matchAny: boolean,
  fence?: Fence,
): Promise<WriteOutcome> {
  if (!matchAny) return (await engine.write([op], fence))[0]!;
  let outcome: WriteOutcome = { status: 412 };
  for (let attempt = 0; attempt < STAR_RETRIES; attempt++) {
    const current = await engine.get(op.key);
    if (current === undefined || current.value === null) return { status: 412 };
    outcome = (await engine.write([{ ...op, ifMatch: current.version }], fence))[0]!;
    if (outcome.status !== 412) return outcome;
  }
  return outcome;
}
