/**
 * What the node's route modules share: the dependencies every handler sees and a way to
 * register one path with its methods, answering 405 with `Allow` for the others.
 *
 * @module
 */
import type { Context, Hono } from "hono";
import { RingkvError } from "../../shared/errors.ts";
import type { Limits } from "../../shared/limits.ts";
import { pathStart } from "../../shared/url_path.ts";
import type { NodeMap } from "../node_map.ts";
import type { MapAcceptor } from "../paxos/map_acceptor.ts";
import type { Acceptor } from "../paxos/acceptor.ts";
import type { NodeEngine } from "../engine/engine.ts";
import type { SlotTimers } from "../../shared/slot_timers.ts";
import type { RequestCounters } from "./node_metrics.ts";

/** Everything a node route handler needs. */
export interface NodeContext {
  engine: NodeEngine;
  limits: Limits;
  cluster: NodeMap;
  /** This node's vote on the next cluster map. */
  mapVotes: MapAcceptor;
  /**
   * The CASPaxos acceptor, once a round opened it (paxos_routes.ts): ingest and /metrics ask it;
   * `open` opens it (once), for `/health`'s `promiseFloor`.
   */
  paxos: { acceptor?: Acceptor; open?: () => Promise<Acceptor> };
  counters: RequestCounters;
  log: (obj: Record<string, unknown>) => void;
  /** Body deadlines at `limits.bodyTimeoutMs`, one timer per slot for every route's body. */
  bodyTimers: SlotTimers;
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
  const start = pathStart(url);
  if (start === -1) return "/";
  // Two look-ups, no array: every request reads its path.
  const query = url.indexOf("?", start);
  const hash = url.indexOf("#", start);
  const end = query === -1 ? hash : hash === -1 ? query : Math.min(query, hash);
  return end === -1 ? url.slice(start) : url.slice(start, end);
}
