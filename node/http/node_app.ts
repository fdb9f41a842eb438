/**
 * node/http/ (this folder's main module): the node's routes, Request in, Response out. May
 * import node/engine, node/paxos, node/storage and shared/; nothing imports it but node/main.ts.
 *
 * The data node's HTTP app (docs/internal-api.md): a Hono app built from its
 * dependencies, with the cluster-secret check, the epoch check, the request counters and the
 * one JSON error body of every route.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { createNodeApp } from "./node_app.ts";
 * import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
 * import { openEngine } from "../engine/open_engine.ts";
 * import { DEFAULT_LIMITS } from "../../shared/limits.ts";
 *
 * const engine = await openEngine({ disk: createFakeDisk(), id: "n1" });
 * const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
 * const res = await app.request("/kv/greeting", { method: "PUT", body: "hello" });
 * assert(res.status === 201);
 * await engine.close();
 * ```
 */
import { Hono } from "hono";
import { RingkvError } from "../../shared/errors.ts";
import type { Limits } from "../../shared/limits.ts";
import { adminRoutes } from "./node_admin_routes.ts";
import { NodeMap } from "../node_map.ts";
import { MapAcceptor } from "../paxos/map_acceptor.ts";
import type { MapVote } from "../../shared/wire.ts";
import type { NodeEngine } from "../engine/engine.ts";
import { internalRoutes } from "./internal_routes.ts";
import type { FloorStore } from "../paxos/acceptor.ts";
import { paxosRoutes } from "./paxos_routes.ts";
import { digestRoutes } from "./digest_routes.ts";
import { kvRoutes } from "./kv_routes.ts";
import { errorAnswer } from "./error_answer.ts";
import { RequestCounters } from "./node_metrics.ts";
import { frameMiddleware, nodeFrontFetch, nodeSecret } from "./node_frame.ts";
import { type NodeContext, rawPath } from "./node_context.ts";
import { SlotTimers } from "../../shared/slot_timers.ts";

/** What a node app is built from. */
export interface NodeAppDeps {
  engine: NodeEngine;
  limits: Limits;
  /** When set, every route but `/health` needs `Authorization: Bearer <secret>`. */
  clusterSecret?: string;
  /** Structured log sink (one object per event); silent when absent. */
  log?: (obj: Record<string, unknown>) => void;
  /** Metrics of this app (main.ts shares them with the timed disk for fsync latency). */
  counters?: RequestCounters;
  /** Durable promise watermark of the replication acceptor (in memory when absent). */
  floorStore?: FloorStore;
  /** How long the acceptor keeps a promise on a key without an entry (tests; 60 s). */
  promiseAgeMs?: number;
}

/** The node's app: one Hono app, whose `fetch` is what node/main.ts serves. */
export type NodeApp = Hono;

/** Builds the node's Hono app. */
export function createNodeApp(deps: NodeAppDeps): NodeApp {
  const cluster = new NodeMap(deps.engine);
  const votes = {
    load: () => deps.engine.loadMapVote(),
    save: (v: MapVote) => deps.engine.saveMapVote(v),
  };
  const ctx: NodeContext = {
    engine: deps.engine,
    limits: deps.limits,
    cluster,
    mapVotes: new MapAcceptor(votes, () => cluster.get()),
    paxos: {},
    counters: deps.counters ?? new RequestCounters(),
    log: deps.log ?? (() => {}),
    bodyTimers: new SlotTimers(deps.limits.bodyTimeoutMs),
  };
  const app = new Hono();
  const secret = nodeSecret(deps.clusterSecret);
  app.use("*", frameMiddleware(ctx, secret));
  kvRoutes(app, ctx);
  internalRoutes(app, ctx);
  paxosRoutes(app, ctx, deps.floorStore, deps.promiseAgeMs);
  digestRoutes(app, ctx);
  adminRoutes(app, ctx, secret?.text);
  app.notFound((c) => {
    const path = rawPath(c.req.url);
    return errorAnswer(new RingkvError("no_route", `Cannot find route ${path}`), c.req.raw, ctx);
  });
  app.onError((err, c) => errorAnswer(err, c.req.raw, ctx));
  // app.request() calls app.fetch: the tests go through the same front as production.
  app.fetch = nodeFrontFetch(ctx, secret, app.fetch);
  return app;
}
