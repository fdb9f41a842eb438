/**
 * What the node's route modules share: the dependencies every handler sees and a way to
 * register one path with its methods, answering 405 with `Allow` for the others.
 *
 * @module
 */
import type { Context, Hono } from "hono";
import { RingkvError } from "../../shared/errors.ts";
import type { Limits } from "../../shared/limits.ts";
import type { NodeMap } from "../node_map.ts";
import type { NodeEngine } from "../engine/engine.ts";
import type { RequestCounters } from "./node_metrics.ts";

/** Everything a node route handler needs. */
export interface NodeContext {
  engine: NodeEngine;
  limits: Limits;
  cluster: NodeMap;
  counters: RequestCounters;
  log: (obj: Record<string, unknown>) => void;
}

/** A route handler. */
export type Handler = (c: Context) => Response | Promise<Response>;

/** Registers `handlers` (by method) on `path`; other methods get 405 with `Allow`. */
export function route(app: Hono, path: string, handlers: Partial<Record<string, Handler>>): void {
  const allow = Object.keys(handlers).join(", ");
  app.all(path, (c) => {
    const handler = handlers[c.req.method];
    if (handler === undefined) {
      throw new RingkvError(
        "method_not_allowed",
        `Cannot ${c.req.method} ${routeName(path)}: allowed methods are ${allow}`,
        { allow },
      );
    }
    return handler(c);
  });
}

function routeName(path: string): string {
  return path.endsWith("/*") ? path.slice(0, -1) + "{key}" : path;
}

/** The path of a request exactly as sent (percent-encoding kept), without the query. */
export function rawPath(url: string): string {
  const start = url.indexOf("/", url.indexOf(":") + 3);
  if (start === -1) return "/";
  let end = url.length;
  for (const mark of ["?", "#"]) {
    const at = url.indexOf(mark, start);
    if (at !== -1 && at < end) end = at;
  }
  return url.slice(start, end);
}
