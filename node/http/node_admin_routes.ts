/**
 * The node's operational routes: `/health`, `/metrics`, and the flat JSON image through
 * `/export` and `/import`.
 *
 * @module
 */
import type { Hono } from "hono";
import { RingkvError } from "../../shared/errors.ts";
import { CHALLENGE_PARAM, challengeProblem, secretProof } from "../../shared/node_proof.ts";
import { parseFlatImage } from "./flat_image.ts";
import { metricsText } from "./node_metrics.ts";
import { readRouteJson } from "./node_request_body.ts";
import { type NodeContext, route } from "./node_context.ts";

/**
 * Registers `/health`, `/metrics`, `/export` and `/import`; `/health?challenge=` answers with
 * the proof of `secret` (null without one).
 */
export function adminRoutes(app: Hono, ctx: NodeContext, secret?: string): void {
  const { engine, limits } = ctx;
  route(app, "/health", {
    GET: async (c) => {
      const proof = await proofFor(c.req.queries(CHALLENGE_PARAM), secret);
      const writes = engine.writeHealth();
      const stats = engine.stats();
      const ok = writes.state === "writable";
      // 503 like etcd's NOSPACE alarm: a load balancer or probe that reads only the status
      // must not count a node that refuses writes as healthy. The body says why.
      return c.json({
        status: ok ? "ok" : writes.state,
        id: engine.id,
        incarnation: engine.incarnation,
        epoch: await ctx.cluster.epoch(),
        keys: stats.keys,
        // Deletions it remembers: a joining node must hold none either (a newer one would
        // delete this cluster's value of its key in the add's versioned copy).
        tombstones: stats.tombstones,
        // A proxy adding this node checks them: smaller than the cluster's, its add would stall.
        limits: { maxKeyBytes: limits.maxKeyBytes, maxValueBytes: limits.maxValueBytes },
        // Its wall clock: proxies' probes work out its offset from theirs (TTLs depend on it).
        now: engine.now(),
        // Every key's promise since this start: a proxy sends no one-round-trip write below it
        // (proxy/replication/caspaxos.ts); null when the acceptor cannot open (it votes on none).
        promiseFloor: await promiseFloorOf(ctx),
        ...(ok ? {} : { writes }),
        ...proof,
      }, ok ? 200 : 503);
    },
  });
  route(app, "/metrics", {
    GET: (c) => {
      const promises = {
        open: ctx.paxos.acceptor?.openPromises ?? 0,
        folded: ctx.paxos.acceptor?.foldedPromises ?? 0,
      };
      const text = metricsText(
        engine.id,
        engine.stats(),
        ctx.counters,
        engine.writeHealth(),
        promises,
      );
      return c.text(text, 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" });
    },
  });
  route(app, "/export", {
    GET: (c) => {
      const binary = c.req.query("binary");
      if (binary !== undefined && binary !== "base64") {
        throw new RingkvError("bad_request", `Cannot export with binary=${binary}: only base64`);
      }
      return c.json(engine.exportFlat(binary === "base64" ? "base64" : "refuse"));
    },
  });
  route(app, "/import", {
    POST: async (c) => {
      const body = await readRouteJson(c.req.raw, ctx, "the import");
      return c.json({ imported: await engine.importFlat(parseFlatImage(body, limits)) });
    },
  });
}

/**
 * The `proof` field of a `/health` answer: none without a challenge, null for a node without a
 * secret (so a proxy that has one refuses to add it), else the secret's proof.
 */
async function proofFor(
  challenges: string[] | undefined,
  secret: string | undefined,
): Promise<{ proof?: string | null }> {
  if (challenges === undefined) return {};
  const problem = challengeProblem(...challenges);
  if (problem !== undefined) {
    throw new RingkvError("bad_request", `Cannot answer /health?${CHALLENGE_PARAM}=: ${problem}`);
  }
  return { proof: secret === undefined ? null : await secretProof(secret, challenges[0]!) };
}

/** The acceptor's floor since this start, opening it if no round did yet; null if it cannot. */
async function promiseFloorOf(ctx: NodeContext): Promise<string | null> {
  if (ctx.paxos.acceptor !== undefined) return ctx.paxos.acceptor.floor ?? null;
  if (ctx.paxos.open === undefined) return null;
  try {
    return (await ctx.paxos.open()).floor ?? null;
  } catch (err) {
    if (!(err instanceof Error)) throw err;
    return null; // a watermark that cannot be read: the node votes on nothing either
  }
}
