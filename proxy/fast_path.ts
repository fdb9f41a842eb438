/**
 * The proxy's hot route ahead of the Hono app: `GET /kv/{key}` (without `If-None-Match`),
 * answered as proxy/public_routes.ts answers it, with the same client-token check, request
 * id, metrics and log line, but without the middleware chain and the router's batch
 * bookkeeping ({@link Router.runOne}). Everything else goes to the app.
 *
 * @module
 */
import type { Hono } from "hono";
import { errorResponse, RingkvError } from "../shared/errors.ts";
import { keyFromPath } from "../shared/keys.ts";
import type { Limits } from "../shared/limits.ts";
import { type LogFn, REQUEST_ID_HEADER, requestIdOf } from "../shared/log.ts";
import { type BatchOp, DEFAULT_CONTENT_TYPE } from "../shared/wire.ts";
import type { ProxyMetrics } from "./metrics.ts";
import type { RequestIds } from "./observe.ts";
import { resultError } from "./public_routes.ts";
import type { Router } from "./router.ts";

/** A fetch handler of the app (what `app.fetch` is). */
type Fetch = Hono["fetch"];

/** What the fast path needs (the app's own parts). */
export interface FastPathDeps {
  router: Router;
  limits: Limits;
  ids: RequestIds;
  metrics: ProxyMetrics;
  log: LogFn;
  clientToken?: string;
}

/** Builds the fast fetch: `GET /kv/{key}` here, everything else (and every refusal) to `slow`. */
export function fastFetch(slow: Fetch, deps: FastPathDeps): Fetch {
  const expected = deps.clientToken ? `Bearer ${deps.clientToken}` : undefined;
  return (req, env, ec) => {
    if (req.method !== "GET") return slow(req, env, ec);
    const path = pathOf(req.url);
    if (!path.startsWith("/kv/") || req.headers.get("if-none-match") !== null) {
      return slow(req, env, ec);
    }
    if (expected !== undefined && !sameText(req.headers.get("authorization"), expected)) {
      return slow(req, env, ec);
    }
    let key: string;
    try {
      key = keyFromPath(path.slice(4), deps.limits.maxKeyBytes);
    } catch (err) {
      if (err instanceof RingkvError) return slow(req, env, ec);
      throw err;
    }
    return getKey(deps, req, key);
  };
}

/** Path of a request URL, without the query, as sent. */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("://") + 3);
  if (start === -1) return "/";
  const query = url.indexOf("?", start);
  return query === -1 ? url.slice(start) : url.slice(start, query);
}

/** Compares in time that depends only on the expected length, not on where characters differ. */
function sameText(given: string | null, expected: string): boolean {
  if (given === null) return false;
  let diff = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) diff |= given.charCodeAt(i) ^ expected.charCodeAt(i);
  return diff === 0;
}

async function getKey(deps: FastPathDeps, req: Request, key: string): Promise<Response> {
  const started = performance.now();
  const id = requestIdOf(req.headers.get(REQUEST_ID_HEADER));
  const op: BatchOp = { op: "get", key };
  deps.ids.tagOne(op, id);
  let res: Response;
  try {
    res = answer(await deps.router.runOne(op), key);
  } catch (err) {
    deps.log({
      level: "error",
      msg: "internal error",
      id,
      method: "GET",
      path: req.url,
      error: String(err),
    });
    res = errorResponse(new RingkvError("internal", `Cannot answer GET /kv/{key}: internal error`));
  }
  res.headers.set(REQUEST_ID_HEADER, id);
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

function answer(r: Awaited<ReturnType<Router["runOne"]>>, key: string): Response {
  if (r instanceof RingkvError) return errorResponse(r);
  if (r.status === 404) {
    return errorResponse(new RingkvError("not_found", `Key "${key}" does not exist`));
  }
  if (r.status !== 200) return errorResponse(resultError(r, key));
  const bytes = Uint8Array.fromBase64(r.value ?? "");
  return new Response(bytes, {
    status: 200,
    headers: {
      etag: `"${r.version}"`,
      "content-type": r.contentType ?? DEFAULT_CONTENT_TYPE,
      "content-length": String(bytes.byteLength),
    },
  });
}
