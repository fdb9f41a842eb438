/**
 * The proxy's hot routes, answered from the parsed request without a `Request` or a
 * `Response` (shared/http1/fast.ts): `GET /kv/{key}` (without `If-None-Match`) and an
 * unconditional `PUT /kv/{key}` whose whole value came with its head, answered as
 * proxy/public_routes.ts answers them, with the same checks, client-token check, request
 * id, metrics and log line, but without the middleware chain and the router's batch
 * bookkeeping ({@link Router.runOne}). Everything else is declined (null) before anything
 * is done, and goes to the app.
 *
 * @module
 */
import { RingkvError } from "../shared/errors.ts";
import { type FastAnswer, fastError, type FastHandler } from "../shared/http1/fast.ts";
import { keyFromPath } from "../shared/keys.ts";
import type { Limits } from "../shared/limits.ts";
import { type LogFn, REQUEST_ID_HEADER, requestIdOf } from "../shared/log.ts";
import { type BatchOp, DEFAULT_CONTENT_TYPE } from "../shared/wire.ts";
import type { ProxyMetrics } from "./metrics.ts";
import type { RequestIds } from "./observe.ts";
import { MAX_CONTENT_TYPE_LENGTH, resultError } from "./public_routes.ts";
import type { Router } from "./router.ts";
import { sameSecret } from "../shared/secret.ts";

/** What the fast path needs (the app's own parts). */
export interface FastPathDeps {
  router: Router;
  limits: Limits;
  ids: RequestIds;
  metrics: ProxyMetrics;
  log: LogFn;
  clientToken?: string;
}

/** Builds the proxy's fast handler: GET and PUT of `/kv/{key}` here, everything else declined. */
export function proxyFastPath(deps: FastPathDeps): FastHandler {
  const expected = deps.clientToken ? `Bearer ${deps.clientToken}` : undefined;
  return (req) => {
    const path = req.path;
    const method = req.method;
    if ((method !== "GET" && method !== "PUT") || !path.startsWith("/kv/")) return null;
    if (req.header("if-none-match") !== null || req.header("if-match") !== null) return null;
    if (expected !== undefined && !sameSecret(req.header("authorization"), expected)) return null;
    let key: string;
    try {
      key = keyFromPath(path.slice(4), deps.limits.maxKeyBytes);
    } catch (err) {
      if (err instanceof RingkvError) return null;
      throw err;
    }
    const id = req.header(REQUEST_ID_HEADER);
    if (method === "GET") return serve(deps, "GET", { op: "get", key }, id, path);
    const contentType = req.header("content-type") ?? DEFAULT_CONTENT_TYPE;
    const value = req.body;
    if (
      contentType.length > MAX_CONTENT_TYPE_LENGTH || value.byteLength > deps.limits.maxValueBytes
    ) {
      return null; // the app's 400 or 413
    }
    const op: BatchOp = { op: "put", key, value: value.toBase64(), contentType };
    return serve(deps, "PUT", op, id, path);
  };
}

async function serve(
  deps: FastPathDeps,
  method: "GET" | "PUT",
  op: BatchOp,
  givenId: string | null,
  path: string,
): Promise<FastAnswer> {
  const started = performance.now();
  const id = requestIdOf(givenId);
  deps.ids.tagOne(op, id);
  let res: FastAnswer;
  try {
    const outcome = await deps.router.runOne(op);
    res = method === "GET" ? answerGet(outcome, op.key) : answerPut(outcome, op.key);
  } catch (err) {
    deps.log({ level: "error", msg: "internal error", id, method, path, error: String(err) });
    res = fastError(
      new RingkvError("internal", `Cannot answer ${method} /kv/{key}: internal error`),
    );
  }
  res.headers[REQUEST_ID_HEADER] = id;
  const seconds = (performance.now() - started) / 1000;
  const status = res.status;
  deps.metrics.request(method, "/kv/{key}", status, seconds);
  deps.log({
    level: status >= 500 ? "warn" : "debug",
    msg: "request",
    id,
    method,
    route: "/kv/{key}",
    status,
    ms: Math.round(seconds * 10_000) / 10,
  });
  return res;
}

type Outcome = Awaited<ReturnType<Router["runOne"]>>;

function answerPut(r: Outcome, key: string): FastAnswer {
  if (r instanceof RingkvError) return fastError(r);
  if (r.status !== 200 && r.status !== 201) return fastError(resultError(r, key));
  return {
    status: r.status,
    headers: { "content-type": "application/json", etag: `"${r.version}"` },
    body: JSON.stringify({ version: r.version }),
  };
}

function answerGet(r: Outcome, key: string): FastAnswer {
  if (r instanceof RingkvError) return fastError(r);
  if (r.status === 404) {
    return fastError(new RingkvError("not_found", `Key "${key}" does not exist`));
  }
  if (r.status !== 200) return fastError(resultError(r, key));
  return {
    status: 200,
    headers: { etag: `"${r.version}"`, "content-type": r.contentType ?? DEFAULT_CONTENT_TYPE },
    // Text goes out as it came (writeFastAnswer encodes it into the answer's one buffer).
    body: r.text ?? Uint8Array.fromBase64(r.value ?? ""),
  };
}
