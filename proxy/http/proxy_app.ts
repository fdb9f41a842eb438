/**
 * proxy/http/ (this folder's main module): the public and admin routes, Request in, Response
 * out, plus the page, OpenAPI and metrics. May import every other proxy folder and shared/.
 *
 * The proxy's HTTP app: the public /kv API routed through the ring (per-node batching
 * by a {@link Dispatcher}), with the admin routes mounted as given. `Deno.serve` lives in
 * proxy/main.ts; tests call `app.request()` with in-process nodes behind `fetch`.
 *
 * @module
 */
import { allowedMethods } from "./allowed_methods.ts";
import { Hono } from "hono";
import { errorResponse, RingkvError } from "../../shared/errors.ts";
import { KeyPoints } from "../../shared/key_points.ts";
import { SlotTimers } from "../../shared/slot_timers.ts";
import { callValueBytes, type Limits } from "../../shared/limits.ts";
import type { BatchOp } from "../../shared/wire.ts";
import { Dispatcher, type DispatcherOptions } from "../routing/dispatcher.ts";
import { instrumentFetch, memberAtHost, ProxyMetrics } from "./proxy_metrics.ts";
import { observeRequests, RequestIds } from "./observe.ts";
import { NodeClient, type NodeFetch, type NodeRef } from "../nodes/node_client.ts";
import { createPublicRoutes } from "./public_routes.ts";
import { answerError, proxyFrontFetch } from "./proxy_front.ts";
import { headLength, streamHeads } from "./head_length.ts";
import { refuseConditions } from "./conditions_scope.ts";
import { createReplication, type Replication } from "../replication/wiring.ts";
import { Router } from "../routing/router.ts";
import { ChangeFeed } from "../watch/change_feed.ts";
import { SharedFeed } from "../watch/shared_feed.ts";
import { createWatchRoute, type WatchRouteDeps } from "./watch_route.ts";
import type { TopologySource } from "../cluster/topology.ts";

/** What the proxy app needs; proxy/main.ts builds these from flags. */
export interface ProxyDeps {
  topology: TopologySource;
  /** Injected; tests pass in-process node apps. */
  fetch: NodeFetch;
  limits: Limits;
  /** Sent to nodes as `Authorization: Bearer`. */
  clusterSecret?: string;
  /** When set, /kv routes need `Authorization: Bearer <it>`, else 401. */
  clientToken?: string;
  /** Timeout of every internal call. */
  timeoutMs: number;
  /** Mounted as is (admin routes, own auth). */
  admin?: Hono;
  log?: (obj: Record<string, unknown>) => void;
  /** Per-node batching tuning (defaults: 1 call in flight, 10,000 waiting ops per node). */
  dispatcher?: Partial<Pick<DispatcherOptions, "maxInFlight" | "maxQueue">>;
  /** Keys whose ring points are remembered (default 100,000). */
  keyPointsCapacity?: number;
  /** Quorum replication parts (proxy/replication/wiring.ts); built here when absent. */
  replication?: Replication;
  /** Request and internal-call metrics (main.ts shares them with GET /metrics). */
  metrics?: ProxyMetrics;
  /** Request ids of client requests (main.ts shares them with the admin routes). */
  requestIds?: RequestIds;
  /** Watch stream settings (cap, node wait); docs/api.md "Watching changes". */
  watch?: Pick<WatchRouteDeps, "maxWatchers" | "waitMs" | "keepaliveMs" | "eventTexts">;
  /** Given the app's router and node client (main.ts starts the TTL reaper on them). */
  onRouter?: (router: Router, client: NodeClient) => void;
}

/** The proxy's app: one Hono app, whose `fetch` is what proxy/main.ts serves. */
export type ProxyApp = Hono;

/** Builds the proxy app. */
export function createProxyApp(deps: ProxyDeps): ProxyApp {
  const metrics = deps.metrics ?? new ProxyMetrics();
  const ids = deps.requestIds ?? new RequestIds();
  metrics.nameNodesBy(memberAtHost(deps.topology));
  const client = new NodeClient({ ...deps, fetch: instrumentFetch(deps.fetch, metrics) });
  const send = (node: NodeRef, epoch: number, ops: BatchOp[], valueBudget: number) =>
    client.batch(node, epoch, ops, ids.header(ops), valueBudget);
  const dispatcher = new Dispatcher(send, {
    ...deps.dispatcher,
    maxBatchOps: deps.limits.maxBatchOps,
    maxBatchBytes: deps.limits.maxBatchBytes,
    timeoutMs: deps.timeoutMs,
    valueBudget: callValueBytes(deps.limits),
  });
  // One memo for the router and the watch: a watched key was just routed, its point is known.
  const points = new KeyPoints({ capacity: deps.keyPointsCapacity });
  const router = new Router({
    topology: deps.topology,
    points,
    dispatcher,
    client,
    log: deps.log,
    replicated: (deps.replication ?? createReplication(deps)).replicated,
  });
  deps.onRouter?.(router, client);
  const app = new Hono();
  const log = deps.log ?? (() => {});
  app.use("*", observeRequests(ids, metrics, log));
  app.use("*", headLength());
  app.use("*", refuseConditions());
  app.onError((err, c) => answerError(err, c.req.raw, ids, log));
  app.notFound((c) => {
    // A known path with another method is 405 with Allow, not 404 (RFC 9110).
    const allow = allowedMethods(app.routes, c.req.path);
    if (allow.length === 0) {
      return errorResponse(
        new RingkvError("no_route", `No route for ${c.req.method} ${c.req.path}`),
      );
    }
    return errorResponse(
      new RingkvError(
        "method_not_allowed",
        `Cannot ${c.req.method} ${c.req.path}: allowed are ${allow.join(", ")}`,
      ),
      { allow: allow.join(", ") },
    );
  });
  if (deps.admin) app.route("/", deps.admin);
  app.get("/health", () => {
    const { map } = deps.topology.current();
    return Response.json({ status: "ok", epoch: map.epoch, nodes: map.nodes.length });
  });
  app.route(
    "/",
    createWatchRoute({
      topology: deps.topology,
      feed: new SharedFeed(new ChangeFeed(deps), deps.watch?.waitMs),
      points,
      clientToken: deps.clientToken,
      maxKeyBytes: deps.limits.maxKeyBytes,
      timeoutMs: deps.timeoutMs,
      ...deps.watch,
    }),
  );
  const { limits, clientToken } = deps;
  // One timer per slot for the body deadlines of every PUT and POST /kv, not one per request.
  const bodyTimers = new SlotTimers(limits.bodyTimeoutMs);
  const routes = { router, client, limits, clientToken, requestIds: ids, bodyTimers };
  app.route("/", createPublicRoutes(routes));
  // app.request() calls app.fetch: the tests go through the same front as production.
  app.fetch = proxyFrontFetch({ routes, ids, metrics, log }, streamHeads(app.fetch));
  return app;
}
