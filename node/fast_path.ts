/**
 * The node's hot routes, answered from the parsed request without a `Request` or a
 * `Response` (shared/http1/fast.ts): `GET /kv/{key}` and `POST /internal/batch` when the
 * request carries the cluster secret and a current (or no) epoch. Every check of the app
 * runs here too, only with less allocation (a string compare for the secret, a plain read
 * of the loaded epoch, pre-resolved metric series); anything unusual (wrong secret, stale
 * or unreadable epoch, a missing key, a bad key, a body that does not parse) is declined
 * (null) before anything is done, and the app answers it exactly as before.
 *
 * @module
 */
import { errorBody, RingkvError } from "../shared/errors.ts";
import type { FastAnswer, FastHandler } from "../shared/http1/fast.ts";
import { keyFromPath } from "../shared/keys.ts";
import { NODE_ID_HEADER, VERSION_HEADER } from "../shared/wire.ts";
import { EPOCH_HEADER } from "../shared/wire.ts";
import { type BatchBody, parseBatchBody, runBatch } from "./batch.ts";
import { decodeText, parseJson } from "./request_body.ts";
import type { Stored } from "./packed.ts";
import type { NodeContext } from "./routing.ts";
import { toBytes } from "./values.ts";
import { sameSecret } from "../shared/secret.ts";

/** Builds the node's fast handler. */
export function nodeFastPath(ctx: NodeContext, secret: string | undefined): FastHandler {
  const expected = secret === undefined || secret === "" ? undefined : `Bearer ${secret}`;
  const id = ctx.engine.id;
  return (req) => {
    const method = req.method;
    const path = req.path;
    const isGet = method === "GET" && path.startsWith("/kv/");
    if (!isGet && (method !== "POST" || path !== "/internal/batch")) return null;
    if (expected !== undefined && !sameSecret(req.header("authorization"), expected)) return null;
    const sent = req.header(EPOCH_HEADER);
    if (sent !== null && !currentEpoch(ctx, sent)) return null;
    if (isGet) return getKey(ctx, id, path);
    return batch(ctx, id, req.body);
  };
}

/** Whether `sent` is a readable epoch no older than the loaded map's (false: let the app say). */
function currentEpoch(ctx: NodeContext, sent: string): boolean {
  const epoch = ctx.cluster.epochIfLoaded();
  if (epoch === undefined || !/^\d{1,15}$/.test(sent.trim())) return false;
  return Number(sent) >= epoch;
}

function getKey(
  ctx: NodeContext,
  id: string,
  path: string,
): FastAnswer | null | Promise<FastAnswer | null> {
  const started = performance.now();
  let key: string;
  try {
    key = keyFromPath(path.slice(4), ctx.limits.maxKeyBytes);
  } catch (err) {
    if (err instanceof RingkvError) return null;
    throw err;
  }
  // A durable key answers in this turn; one whose write awaits its fsync, after it.
  const held = ctx.engine.held(key);
  if (held instanceof Promise) {
    return held.then((later) => keyAnswer(ctx, id, later, started), (err) => {
      if (err instanceof RingkvError) return null; // that write failed: the app answers its 503
      throw err;
    });
  }
  return keyAnswer(ctx, id, held, started);
}

function keyAnswer(
  ctx: NodeContext,
  id: string,
  held: Stored | undefined,
  started: number,
): FastAnswer | null {
  if (held === undefined || held.kind === "tombstone") return null; // the app's 404 body
  ctx.counters.count("GET", "/kv/{key}", 200, (performance.now() - started) / 1000);
  return {
    status: 200,
    headers: {
      "content-type": held.contentType,
      etag: `"${held.version}"`,
      [VERSION_HEADER]: held.version,
      [NODE_ID_HEADER]: id,
    },
    // Text as held: the writer encodes it straight into the answer's buffer.
    body: held.kind === "text" ? held.data : toBytes(held)!,
  };
}

async function batch(ctx: NodeContext, id: string, body: Uint8Array): Promise<FastAnswer | null> {
  const started = performance.now();
  const { engine, limits } = ctx;
  let ops: BatchBody;
  try {
    if (body.byteLength > limits.maxBatchBytes) return null;
    ops = parseBatchBody(parseJson(decodeText(body, "the batch"), "the batch"), limits);
  } catch (err) {
    if (err instanceof RingkvError) return null; // the app answers the same error
    throw err;
  }
  let answer: FastAnswer;
  try {
    const results = await runBatch(engine, ops, limits);
    answer = {
      status: 200,
      headers: { "content-type": "application/json", [NODE_ID_HEADER]: id },
      body: JSON.stringify({ results }),
    };
  } catch (err) {
    answer = errorAnswer(err as Error, ctx, id);
  }
  ctx.counters.count(
    "POST",
    "/internal/batch",
    answer.status,
    (performance.now() - started) / 1000,
  );
  return answer;
}

/** The app's error answer (node/error_answer.ts) for an error after the batch started. */
function errorAnswer(err: Error, ctx: NodeContext, id: string): FastAnswer {
  if (!(err instanceof RingkvError)) {
    ctx.log({ level: "error", msg: "unexpected error", path: "/internal/batch", err: err.stack });
    err = new RingkvError("internal", `Cannot serve the request: ${err.message}`);
  }
  const { code, message, status } = err as RingkvError;
  return {
    status,
    headers: { "content-type": "application/json", [NODE_ID_HEADER]: id },
    body: JSON.stringify(errorBody(code, message)),
  };
}
