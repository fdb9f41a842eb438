/**
 * What the proxy records about each client request: its request id (the client's
 * `x-request-id` when sane, else a new one; returned in the answer's header and passed
 * to the nodes on the internal calls made for it), its metrics and its log line.
 *
 * Internal data calls are batched across requests (proxy/routing/dispatcher.ts), so the ops of
 * a request are tagged with its id ({@link RequestIds.tag}) and a batch call carries the
 * ids of the requests it serves ({@link RequestIds.header}).
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { RequestIds } from "./observe.ts";
 * const ids = new RequestIds();
 * const req = new Request("http://proxy/kv/a", { headers: { "x-request-id": "r1" } });
 * ids.assign(req);
 * const op = { op: "get" as const, key: "a" };
 * ids.tag([op], req);
 * assert(ids.header([op]) === "r1");
 * ```
 */
import type { MiddlewareHandler } from "hono";
import {
  joinRequestIds,
  type LogFn,
  logsAt,
  REQUEST_ID_HEADER,
  requestIdOf,
} from "../../shared/log.ts";
import { type ProxyMetrics, routeLabel } from "./proxy_metrics.ts";
import { pathOf } from "../../shared/url_path.ts";

/** Where an op carries its request's id: a symbol, so JSON bodies never include it. */
const OP_ID: unique symbol = Symbol("requestId");

/** Request ids of client requests and of the operations run for them (per app). */
export class RequestIds {
  readonly #byRequest = new WeakMap<Request, string>();

  /** Gives `req` its id (the client's when sane) and returns it. */
  assign(req: Request): string {
    const id = requestIdOf(req.headers.get(REQUEST_ID_HEADER));
    this.#byRequest.set(req, id);
    return id;
  }

  /** The id of `req`, if it was assigned one. */
  of(req: Request): string | undefined {
    return this.#byRequest.get(req);
  }

  /** Marks `ops` as run for `req`. */
  tag(ops: readonly object[], req: Request): void {
    const id = this.#byRequest.get(req);
    if (id !== undefined) { for (const op of ops) this.tagOne(op, id); }
  }

  /** Marks `op` as run for the request of id `id`. */
  tagOne(op: object, id: string): void {
    (op as { [OP_ID]?: string })[OP_ID] = id;
  }

  /** The `x-request-id` of an internal call carrying `ops`, or undefined when untagged. */
  header(ops: readonly object[]): string | undefined {
    const ids: string[] = [];
    for (const op of ops) {
      const id = (op as { [OP_ID]?: string })[OP_ID];
      if (id !== undefined) ids.push(id);
    }
    return ids.length === 0 ? undefined : joinRequestIds(ids);
  }
}

/** Assigns the request id, answers with it, counts the request and logs it. */
export function observeRequests(
  ids: RequestIds,
  metrics: ProxyMetrics,
  log: LogFn,
): MiddlewareHandler {
  return async (c, next) => {
    const started = performance.now();
    const id = ids.assign(c.req.raw);
    await next();
    observed(metrics, log, c.req.raw, id, started, c.res);
  };
}

/**
 * Marks the answer to `req` with its request id (unless `marked` says it was built with it),
 * counts it and logs it.
 */
export function observed(
  metrics: ProxyMetrics,
  log: LogFn,
  req: Request,
  id: string,
  started: number,
  res: Response,
  marked = false,
): void {
  const seconds = (performance.now() - started) / 1000;
  const route = routeLabel(pathOf(req.url));
  const status = res.status;
  // The hot answers carry it already (set now, it would cost a copy of their headers; even
  // reading them makes a Headers object).
  if (!marked && res.headers.get(REQUEST_ID_HEADER) !== id) res.headers.set(REQUEST_ID_HEADER, id);
  metrics.request(req.method, route, status, seconds);
  const level = status >= 500 ? "warn" : "debug";
  // Built only when written: at the default level (warn) most requests log nothing.
  if (!logsAt(log, level)) return;
  log({
    level,
    msg: "request",
    id,
    method: req.method,
    route,
    status,
    ms: Math.round(seconds * 10_000) / 10,
  });
}
