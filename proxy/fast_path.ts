/**
 * The proxy's hot route, answered from the parsed request without a `Request` or a
 * `Response` (shared/http1/fast.ts): `GET /kv/{key}` (without `If-None-Match`), answered as
 * proxy/public_routes.ts answers it, with the same client-token check, request id, metrics
 * and log line, but without the middleware chain and the router's batch bookkeeping
 * ({@link Router.runOne}). Everything else is declined (null) and goes to the app.
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
import { resultError } from "./public_routes.ts";
import type { Router } from "./router.ts";

/** What the fast path needs (the app's own parts). */
export interface FastPathDeps {
  router: Router;
  limits: Limits;
  ids: RequestIds;
  metrics: ProxyMetrics;
  log: LogFn;
  clientToken?: string;
}

/** Builds the proxy's fast handler: `GET /kv/{key}` here, everything else declined. */
export function proxyFastPath(deps: FastPathDeps): FastHandler {
  const expected = deps.clientToken ? `Bearer ${deps.clientToken}` : undefined;
  return (req) => {
    const path = req.path;
    if (req.method !== "GET" || !path.startsWith("/kv/") || req.header("if-none-match") !== null) {
      return null;
    }
    if (expected !== undefined && !sameText(req.header("authorization"), expected)) return null;
    let key: string;
    try {
      key = keyFromPath(path.slice(4), deps.limits.maxKeyBytes);
    } catch (err) {
      if (err instanceof RingkvError) return null;
      throw err;
    }
    return getKey(deps, key, req.header(REQUEST_ID_HEADER), path);
  };
}

/** Compares in time that depends only on the expected length, not on where characters differ. */
function sameText(given: string | null, expected: string): boolean {
  if (given === null) return false;
  let diff = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) diff |= given.charCodeAt(i) ^ expected.charCodeAt(i);
  return diff === 0;
}

async function getKey(
  deps: FastPathDeps,
  key: string,
  givenId: string | null,
  path: string,
): Promise<FastAnswer> {
  const started = performance.now();
  const id = requestIdOf(givenId);
  const op: BatchOp = { op: "get", key };
  deps.ids.tagOne(op, id);
  let res: FastAnswer;
  try {
    res = answer(await deps.router.runOne(op), key);
  } catch (err) {
    deps.log({
      level: "error",
      msg: "internal error",
      id,
      method: "GET",
      path,
      error: String(err),
    });
    res = fastError(new RingkvError("internal", `Cannot answer GET /kv/{key}: internal error`));
  }
  res.headers[REQUEST_ID_HEADER] = id;
  const seconds = (performance.now() - started) / 1000;
  const status = res.status;
  deps.metrics.request("GET", "/kv/{key}", status, seconds);
  deps.log({
    level: status >= 500 ? "warn" : "debug",
    msg: "request",
    id,
    method: "GET",
    route: "/kv/{key}",
    status,
    ms: Math.round(seconds * 10_000) / 10,
  });
  return res;
}

function answer(r: Awaited<ReturnType<Router["runOne"]>>, key: string): FastAnswer {
  if (r instanceof RingkvError) return fastError(r);
  if (r.status === 404) {
    return fastError(new RingkvError("not_found", `Key "${key}" does not exist`));
  }
  if (r.status !== 200) return fastError(resultError(r, key));
  return {
    status: 200,
    headers: { etag: `"${r.version}"`, "content-type": r.contentType ?? DEFAULT_CONTENT_TYPE },
    body: Uint8Array.fromBase64(r.value ?? ""),
  };
}
