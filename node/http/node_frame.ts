/**
 * Every node route's frame, in one place: the cluster-secret check, the epoch check, then
 * the request counters on every answer, refusals included. The Hono
 * middleware ({@link frameMiddleware}) and the front of the hot `GET /kv/{key}`
 * ({@link nodeFrontFetch}) both run it, so the two ways in answer the same.
 *
 * @module
 */
import type { Hono, MiddlewareHandler } from "hono";
import { bearerRefusal } from "../../shared/bearer.ts";
import { RingkvError } from "../../shared/errors.ts";
import { sameSecret } from "../../shared/secret.ts";
import { EPOCH_HEADER } from "../../shared/wire.ts";
import { pathStart } from "../../shared/url_path.ts";
import { errorAnswer } from "./error_answer.ts";
import { getKey, keyFromRawPath } from "./kv_routes.ts";
import { routeLabel } from "./node_metrics.ts";
import { type NodeContext, rawPath } from "./node_context.ts";

/** The secret every route but `/health` needs (and its header), or undefined when there is none. */
export type Secret = { text: string; bearer: string } | undefined;

/** The {@link Secret} of a node started with `text` (none when it is empty or absent). */
export function nodeSecret(text: string | undefined): Secret {
  return text === undefined || text === "" ? undefined : { text, bearer: `Bearer ${text}` };
}

/** Hono's `fetch`, as the app exposes it. */
type AppFetch = Hono["fetch"];

/**
 * Refuses a request without the cluster secret (401) or routed by an older map (409); a
 * promise only when the epoch must be read, so most requests pass in the same turn.
 */
export function admit(
  ctx: NodeContext,
  secret: Secret,
  req: Request,
  path: string,
): Promise<void> | undefined {
  if (path === "/health") return undefined;
  if (secret !== undefined) {
    const header = req.headers.get("authorization");
    // The common case, the exact header, is compared without parsing it.
    const refusal = sameSecret(header, secret.bearer)
      ? undefined
      : bearerRefusal(header, secret.text, "cluster");
    if (refusal !== undefined) throw refusal;
  }
  const sent = req.headers.get(EPOCH_HEADER);
  if (sent === null || path === "/internal/cluster") return undefined;
  if (!/^\d{1,15}$/.test(sent.trim())) {
    throw new RingkvError("invalid_header", `Cannot read ${EPOCH_HEADER} "${sent}"`);
  }
  return ctx.cluster.checkEpoch(Number(sent));
}

/**
 * Counts an answer. It adds no header: reading `res.headers` after construction copies them out
 * of Deno.serve's native answer (the node id header it once set here went; /health has the id).
 */
export function finish(
  ctx: NodeContext,
  method: string,
  path: string,
  res: Response,
  started: number,
): Response {
  const seconds = (performance.now() - started) / 1000;
  ctx.counters.count(method, routeLabel(path), res.status, seconds);
  return res;
}

/** The frame as a Hono middleware (one step of Hono's chain per request). */
export function frameMiddleware(ctx: NodeContext, secret: Secret): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    const path = rawPath(c.req.url);
    try {
      const admitting = admit(ctx, secret, c.req.raw, path);
      if (admitting) await admitting; // a promise only when the epoch must be checked
      await next();
    } catch (err) {
      if (!(err instanceof RingkvError)) throw err;
      c.res = errorAnswer(err, c.req.raw, ctx);
    }
    finish(ctx, c.req.method, path, c.res, started);
  };
}

/**
 * The app's `fetch`: `GET /kv/{key}` without a query goes straight to the one GET handler that
 * Hono also mounts (kv_routes.ts), inside the same frame, skipping Hono's routing and chain;
 * everything else goes to Hono.
 */
export function nodeFrontFetch(ctx: NodeContext, secret: Secret, routed: AppFetch): AppFetch {
  // Named parameters, not a rest array: this runs on every request.
  return (req, env, exec) => {
    if (req.method !== "GET") return routed(req, env, exec);
    const url = req.url;
    const path = rawPath(url);
    if (!path.startsWith("/kv/") || url.length !== path.length + pathStart(url)) {
      return routed(req, env, exec);
    }
    return frontGet(ctx, secret, req, path);
  };
}

/** A durable key with no epoch to read is answered in this turn, without a promise. */
function frontGet(
  ctx: NodeContext,
  secret: Secret,
  req: Request,
  path: string,
): Response | Promise<Response> {
  const started = performance.now();
  let answer: Response | Promise<Response>;
  try {
    const admitted = admit(ctx, secret, req, path);
    if (admitted !== undefined) return admittedGet(ctx, req, path, started, admitted);
    answer = getKey(ctx, keyFromRawPath(path, ctx), req);
  } catch (err) {
    return failedGet(ctx, req, path, started, err as Error);
  }
  if (!(answer instanceof Promise)) return finish(ctx, "GET", path, answer, started);
  return answer.then(
    (res) => finish(ctx, "GET", path, res, started),
    (err) => failedGet(ctx, req, path, started, err),
  );
}

/** The GET once the epoch it carries has been checked. */
async function admittedGet(
  ctx: NodeContext,
  req: Request,
  path: string,
  started: number,
  admitted: Promise<void>,
): Promise<Response> {
  try {
    await admitted;
    return finish(ctx, "GET", path, await getKey(ctx, keyFromRawPath(path, ctx), req), started);
  } catch (err) {
    return failedGet(ctx, req, path, started, err as Error);
  }
}

/** Hono's onError answers the same way for every error (errorAnswer). */
function failedGet(
  ctx: NodeContext,
  req: Request,
  path: string,
  started: number,
  err: Error,
): Response {
  return finish(ctx, "GET", path, errorAnswer(err, req, ctx), started);
}
