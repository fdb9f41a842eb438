/**
 * The admin API (DESIGN.md "Admin API"): the cluster view, adding and removing nodes,
 * and the ring. Every route needs `Authorization: Bearer <admin token>`. The data
 * path mounts this app (`createProxyApp({admin})`); it also works on its own.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { createAdminRoutes } from "./admin_routes.ts";
 * assert(typeof createAdminRoutes === "function");
 * ```
 */
import { bearerRefusal, wwwAuthenticate } from "../../shared/bearer.ts";
import { Hono } from "hono";
import type { Context, Next } from "hono";
import { clipped, errorResponse, RingkvError } from "../../shared/errors.ts";
import { parseNodeUrl } from "../../shared/node_url.ts";
import { Ring } from "../../shared/ring.ts";
import { isWriterId } from "../../shared/version.ts";
import type { ClusterMap } from "../../shared/wire.ts";
import { countCopies, estimateKeys, keysOfCopies, movingShare } from "../cluster/key_counts.ts";
import type { ClusterState } from "../cluster/map_view.ts";
import { type NodeAdmin, type NodeWrites, secretRefusal } from "../nodes/node_admin.ts";
import type { Rebalancer } from "../rebalance/rebalancer.ts";
import type { Replication } from "../replication/wiring.ts";
import { allNodes, meantNode, type Plan, previousNodes } from "../cluster/map_transitions.ts";
import { readBody } from "./request_body.ts";

/** Largest body of an admin call (`{"url", "weight"}` needs far less). */
const MAX_ADMIN_BODY_BYTES = 64 * 1024;

/** What the admin routes need. */
export interface AdminDeps {
  state: ClusterState;
  rebalancer: Rebalancer;
  admin: NodeAdmin;
  /** Without one, every admin call is refused (403). */
  adminToken?: string;
  /** Time allowed to receive a request body (`--body-timeout-ms`), then 408. */
  bodyTimeoutMs: number;
  /** Node health as the data path sees it, and missed writes (proxy/replication/wiring.ts). */
  replication?: Pick<Replication, "healthOf" | "hints"> & {
    antiEntropy?: Pick<Replication["antiEntropy"], "last">;
  };
}

/** One node in `GET /cluster`. */
export interface NodeView {
  id: string;
  url: string;
  weight: number;
  /**
   * `read-only`: it answers but refuses writes (its disk failed; `writes` says why);
   * `stalled`: it answers, but its writes wait on a slow log fsync; `unauthorized`: it answers,
   * but refuses this proxy's cluster secret (its `/health` proves another), so takes no call.
   */
  state: "up" | "down" | "joining" | "leaving" | "read-only" | "stalled" | "unauthorized";
  keys: number | null;
  /** Why the node refuses writes, from its `/health`. */
  writes?: NodeWrites;
  /** The last failure talking to it, if any. */
  error?: string;
}

/** The admin routes' middleware: 403 without an admin token configured, 401 without the right one. */
export function requireAdminToken(token: string | undefined) {
  return async (c: Context, next: Next) => {
    if (token === undefined) {
      throw new RingkvError(
        "forbidden",
        "Cannot use the admin API: the proxy has no admin token (--admin-token or RINGKV_ADMIN_TOKEN)",
      );
    }
    const refusal = bearerRefusal(c.req.header("authorization"), token, "admin");
    if (refusal !== undefined) {
      return errorResponse(refusal, { "www-authenticate": wwwAuthenticate("admin") });
    }
    return await next();
  };
}

/** The `GET /cluster` view: the map with each node's state and key count. */
export async function clusterView(
  deps: Omit<AdminDeps, "bodyTimeoutMs">,
): Promise<Record<string, unknown>> {
  const map = deps.state.current().map;
  const rb = map.rebalancing;
  const nodes = await Promise.all(
    allNodes(map).map(async (n): Promise<NodeView> => {
      const role = rb?.nodeId !== n.id ? "up" : rb.kind === "add" ? "joining" : "leaving";
      const error = deps.state.nodeErrors.get(n.url);
      const base = {
        id: n.id,
        url: n.url,
        weight: n.weight,
        ...(error ? { error } : {}),
        ...(deps.replication ? { health: deps.replication.healthOf(n.id) } : {}),
      };
      try {
        const { health, secret } = await deps.admin.challengedHealth(n.url);
        const error = secretRefusal(`Node ${n.id} at ${n.url}`, secret);
        if (error !== undefined) {
          return { ...base, state: "unauthorized", keys: health.keys, error };
        }
        const { writes } = health;
        if (writes === undefined) return { ...base, state: role, keys: health.keys };
        const impaired = writes.state === "stalled" ? "stalled" : "read-only";
        return { ...base, state: role === "up" ? impaired : role, keys: health.keys, writes };
      } catch (err) {
        if (!(err instanceof RingkvError)) throw err;
        return { ...base, state: "down", keys: null, error: err.message };
      }
    }),
  );
  const serving = nodes.filter((n) => map.nodes.some((m) => m.id === n.id));
  // Serving nodes that answer: fewer than the replica count means fewer copies than promised.
  const nodesUp = serving.filter((n) => n.state !== "down" && n.state !== "unauthorized").length;
  const ring = deps.state.current().ring;
  const liveKeys = estimateKeys(ring, map.replicas, new Map(serving.map((n) => [n.id, n.keys])));
  // In cleanup the old owners still hold what moved, so the live count would count it twice.
  const startKeys = rb === null
    ? null
    : keysOfCopies(rb.totalKeys, map.replicas, previousNodes(map).length);
  const keys = rb?.phase === "cleanup" ? startKeys : liveKeys;
  const movedCopies = deps.rebalancer.movedCopies();
  return {
    epoch: map.epoch,
    replicas: map.replicas,
    nodesUp,
    belowReplicas: nodesUp < map.replicas,
    keys,
    copies: countCopies(new Map(nodes.map((n) => [n.id, n.keys]))),
    vnodes: map.vnodes,
    nodes,
    ...(deps.replication ? { underReplicated: underReplicated(deps.replication) } : {}),
    rebalancing: rb === null ? null : {
      kind: rb.kind,
      nodeId: rb.nodeId,
      phase: rb.phase,
      movedKeys: deps.rebalancer.movedKeys(),
      totalKeys: Math.round(startKeys! * await movingShareOf(map)),
      ...(movedCopies === null ? {} : { movedCopies }),
      copies: rb.totalKeys,
      startedAt: rb.startedAt,
      ...(deps.rebalancer.lastError ? { error: deps.rebalancer.lastError } : {}),
    },
  };
}

const moving = new WeakMap<object, Promise<number>>();

/** The share of keys the map's rebalancing moves, computed once per plan. */
function movingShareOf(map: ClusterMap): Promise<number> {
  const rb = map.rebalancing!;
  let share = moving.get(rb);
  if (share === undefined) {
    const vnodes = map.vnodes > 0 ? map.vnodes : undefined;
    share = Promise.all([
      Ring.build(previousNodes(map), vnodes),
      Ring.build((rb as Plan).next, vnodes),
    ]).then(([before, after]) => movingShare(before, after, map.replicas));
    moving.set(rb, share);
  }
  return share;
}

/**
 * Writes some replica missed: hinted (to be replayed), over the hint bound, and what the
 * last anti-entropy sweep found. Once a sweep has run, `keys` is its count of keys still
 * behind or unchecked (a replica down) plus the hints waiting; before, the hints' count.
 */
function underReplicated(r: NonNullable<AdminDeps["replication"]>) {
  const sweep = r.antiEntropy?.last ?? null;
  const behind = sweep === null ? 0 : sweep.behind - sweep.repaired + sweep.unchecked;
  return {
    keys: sweep === null ? r.hints.count() + r.hints.dropped : r.hints.count() + behind,
    hinted: r.hints.count(),
    unhinted: r.hints.dropped,
    ...(sweep === null ? {} : { antiEntropy: sweep }),
  };
}

function ringView(ring: Ring) {
  return {
    nodes: ring.nodeIds,
    shares: Object.fromEntries(ring.shares()),
    points: ring.points(),
  };
}

/** `force` of `DELETE /cluster/nodes/{id}`: absent, `true` or `false`, once. */
function forceParam(values: string[] | undefined): boolean {
  if (values !== undefined && values.length > 1) {
    throw new RingkvError("bad_request", "Cannot read force: it is given more than once");
  }
  const force = values?.[0];
  if (force !== undefined && force !== "true" && force !== "false") {
    throw new RingkvError("bad_request", `Cannot read force="${force}": use true or false`);
  }
  return force === "true";
}

/** Reads `{"url", "weight"}` of `POST /cluster/nodes`. */
export function parseAddBody(text: string): { url: string; weight: number } {
  let body: { url?: unknown; weight?: unknown };
  try {
    body = JSON.parse(text);
  } catch (err) {
    throw new RingkvError(
      "invalid_json",
      `Cannot read the request body: ${(err as Error).message}`,
    );
  }
  if (typeof body !== "object" || body === null || typeof body.url !== "string") {
    throw new RingkvError(
      "bad_request",
      'Cannot add a node: the body needs "url": "http://host:port"',
    );
  }
  const url = parseNodeUrl(body.url);
  if ("problem" in url) {
    throw new RingkvError(
      "bad_request",
      `Cannot add node "${body.url.slice(0, 200)}": it ${url.problem}`,
    );
  }
  const weight = body.weight ?? 1;
  if (typeof weight !== "number" || !(weight > 0 && weight <= 100)) {
    throw new RingkvError(
      "bad_request",
      `Cannot add node ${body.url}: weight must be > 0 and <= 100`,
    );
  }
  return { url: url.origin, weight };
}

/** The admin routes as a Hono app. */
export function createAdminRoutes(deps: AdminDeps): Hono {
  const app = new Hono();
  app.onError((err) => {
    if (err instanceof RingkvError) return errorResponse(err);
    throw err;
  });
  const auth = requireAdminToken(deps.adminToken);
  for (const path of ["/cluster", "/cluster/*", "/ring"]) app.use(path, auth);

  app.get("/cluster", async (c) => c.json(await clusterView(deps)));
  app.post("/cluster/nodes", async (c) => {
    const body = await readBody(
      c.req.raw,
      MAX_ADMIN_BODY_BYTES,
      "batch_too_large",
      "the body",
      deps.bodyTimeoutMs,
    );
    const { url, weight } = parseAddBody(new TextDecoder().decode(body));
    await deps.rebalancer.startAdd(url, weight);
    return c.json(await clusterView(deps), 202);
  });
  app.delete("/cluster/nodes/:id", async (c) => {
    const id = c.req.param("id");
    if (!isWriterId(id)) {
      // No node has it (a node checks its id at start); a long one is not echoed whole.
      throw new RingkvError(
        "not_found",
        `Cannot remove node ${clipped(id)}: no node has this id (ids are 1-32 of [A-Za-z0-9_])${
          meantNode(deps.state.current().map, id)
        }`,
      );
    }
    await deps.rebalancer.startRemove(id, forceParam(c.req.queries("force")));
    return c.json(await clusterView(deps), 202);
  });
  app.get("/ring", (c) => {
    const { map, ring, nextRing } = deps.state.current();
    return c.json({ epoch: map.epoch, ...ringView(ring), next: nextRing && ringView(nextRing) });
  });
  // 405 names the allowed methods in Allow (RFC 9110).
  const refuse = (allow: string) => () =>
    errorResponse(
      new RingkvError("method_not_allowed", `Cannot use this method here: allowed are ${allow}`),
      { allow },
    );
  app.all("/cluster", refuse("GET, HEAD"));
  app.all("/cluster/nodes", refuse("POST"));
  app.all("/cluster/nodes/:id", refuse("DELETE"));
  app.all("/ring", refuse("GET, HEAD"));
  return app;
}
