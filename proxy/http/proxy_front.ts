/**
 * The proxy app's `fetch`: a plain `GET`, `PUT` or `DELETE /kv/{key}` (no query) goes straight
 * to the one handler that Hono also mounts for it (public_routes.ts), with the same
 * client-token check, request id, metrics, log line and error answers, skipping Hono's routing
 * and chain; every other request goes to Hono. `app.request()` calls `app.fetch`, so tests run
 * this front too. A middleware added to the app must be added to `frontKey` as well (a test in
 * proxy_front_test.ts lists the middleware it stands in for).
 *
 * @module
 */
import type { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { getPath } from "hono/utils/url";
import { errorResponse, RingkvError } from "../../shared/errors.ts";
import type { LogFn } from "../../shared/log.ts";
import { observed, type RequestIds } from "./observe.ts";
import type { ProxyMetrics } from "./proxy_metrics.ts";
import {
  clientRefusal,
  deleteKey,
  getKey,
  type PublicRoutesDeps,
  putKey,
} from "./public_routes.ts";
import { pathStart } from "../../shared/url_path.ts";

/** Hono's `fetch`, as the app exposes it. */
type AppFetch = Hono["fetch"];

/** What the front needs: the public routes' deps and the app's observers. */
export interface FrontDeps {
  routes: PublicRoutesDeps;
  ids: RequestIds;
  metrics: ProxyMetrics;
  log: LogFn;
}

/** The answer to an error thrown while serving `req` (the app's `onError`, and the front's). */
export function answerError(err: Error, req: Request, ids: RequestIds, log: LogFn): Response {
  if (err instanceof RingkvError) return errorResponse(err);
  if (err instanceof HTTPException && err.status < 500) {
    return errorResponse(new RingkvError("bad_request", err.message || "Cannot read the request"));
  }
  const path = getPath(req);
  log({
    level: "error",
    msg: "internal error",
    id: ids.of(req),
    method: req.method,
    path,
    error: String(err),
  });
  return errorResponse(
    new RingkvError("internal", `Cannot answer ${req.method} ${path}: internal error`),
  );
}

/** A /kv/{key} handler of public_routes.ts. */
type KeyHandler = (deps: PublicRoutesDeps, req: Request) => Promise<Response>;

/** The handler the front calls for a method, or undefined (Hono routes it). */
function keyHandler(method: string): KeyHandler | undefined {
  return method === "GET"
    ? getKey
    : method === "PUT"
    ? putKey
    : method === "DELETE"
    ? deleteKey
    : undefined;
}

/** Wraps Hono's `fetch` (`routed`) with the front for `GET|PUT|DELETE /kv/{key}`. */
export function proxyFrontFetch(deps: FrontDeps, routed: AppFetch): AppFetch {
  // The handlers' answers carry the request id when they read the ids the front assigns.
  const marked = deps.routes.requestIds === deps.ids;
  // Named parameters, not a rest array: this runs on every request.
  return (req, env, exec) => {
    const handler = keyHandler(req.method);
    if (handler === undefined) return routed(req, env, exec);
    const url = req.url;
    const start = pathStart(url);
    if (!url.startsWith("/kv/", start) || url.includes("?", start)) {
      return routed(req, env, exec);
    }
    return frontKey(deps, req, marked, handler);
  };
}

async function frontKey(
  deps: FrontDeps,
  req: Request,
  marked: boolean,
  handler: KeyHandler,
): Promise<Response> {
  const started = performance.now();
  const id = deps.ids.assign(req);
  const token = deps.routes.clientToken;
  const refused = token ? clientRefusal(req, token) : undefined;
  let res: Response;
  let withId = marked && refused === undefined;
  try {
    res = refused ?? await handler(deps.routes, req);
  } catch (err) {
    res = answerError(err as Error, req, deps.ids, deps.log);
    withId = false; // error answers are marked by observed()
  }
  observed(deps.metrics, deps.log, req, id, started, res, withId);
  return res;
}
