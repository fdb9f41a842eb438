/**
 * The node's internal routes for proxies: batch, ingest, scan, drop, key listing and the
 * stored cluster map (docs/internal-api.md).
 *
 * @module
 */
import type { Context, Hono } from "hono";
import { RingkvError } from "../../shared/errors.ts";
import { INCARNATION_HEADER, NDJSON, type WireEntry } from "../../shared/wire.ts";
import { parseBatchBody, runBatch } from "./batch.ts";
import { changeRoutes } from "./change_routes.ts";
import { parseClusterMap } from "../node_map.ts";
import { isVersion } from "../../shared/version.ts";
import { readCappedBody } from "../../shared/capped_body.ts";
import { checkIncarnation } from "./incarnation_guard.ts";
import { decodeText, isObject, parseJson, readRouteJson } from "./node_request_body.ts";
import { type NodeContext, route } from "./node_context.ts";
import { epochFence } from "./epoch_fence.ts";
import { baseToLearn } from "../paxos/map_acceptor.ts";
import { parseRangesJson, parseRangesQuery, parseWireEntry, toWire } from "./wire_entries.ts";
import { checkGrace } from "../../shared/tombstone_grace.ts";

const SCAN_CHUNK_CHARS = 64 * 1024;
const encoder = new TextEncoder();

/** Registers the `/internal/*` routes. */
export function internalRoutes(app: Hono, ctx: NodeContext): void {
  const { engine, limits } = ctx;
  route(app, "/internal/batch", {
    POST: async (c) => {
      const body = await readRouteJson(c.req.raw, ctx, "the batch");
      const batch = parseBatchBody(body, limits);
      const results = await runBatch(engine, batch, limits, epochFence(ctx, c.req.raw));
      return c.json({ results });
    },
  });
  route(app, "/internal/ingest", {
    POST: async (c) => {
      const entries = await readNdjson(c, ctx);
      // Asked as each entry is applied: an entry below the acceptor's absent-key floor keeps it.
      const admit = (e: WireEntry) => ctx.paxos.acceptor?.admitIngest(e) ?? true;
      return c.json(await engine.ingest(entries, epochFence(ctx, c.req.raw), admit));
    },
  });
  route(app, "/internal/scan", { GET: (c) => scan(c, ctx) });
  route(app, "/internal/drop", {
    POST: async (c) => {
      // A drop meant for the node a map records, not one started at its URL since.
      checkIncarnation(c.req.header(INCARNATION_HEADER), ctx, "drop ranges");
      const body = await readRouteJson(c.req.raw, ctx, "the drop");
      if (!isObject(body)) {
        throw new RingkvError("bad_request", 'Cannot drop: the body must be {"ranges": [...]}');
      }
      const ranges = parseRangesJson(body.ranges);
      return c.json({ dropped: await engine.drop(ranges, epochFence(ctx, c.req.raw)) });
    },
  });
  route(app, "/internal/keys", { GET: (c) => listKeys(c, ctx) });
  route(app, "/internal/expired", { GET: (c) => listExpired(c, ctx) });
  route(app, "/internal/tombstones", { GET: (c) => listOldTombstones(c, ctx) });
  changeRoutes(app, ctx);
  route(app, "/internal/cluster", {
    GET: async (c) => {
      const map = await ctx.cluster.get();
      if (map === null) {
        throw new RingkvError("not_found", "Cannot get the cluster map: this node has none yet");
      }
      return c.json(map);
    },
    PUT: async (c) => {
      const body = await readRouteJson(c.req.raw, ctx, "the cluster map");
      const map = parseClusterMap(body);
      await ctx.cluster.put(map);
      return c.json(map);
    },
  });
  // The vote on the next map (node/paxos/map_acceptor.ts). The answer names the data
  // directory: the proposer counts a node on a new one only beside enough that remember.
  const voter = () => ({ id: ctx.engine.id, incarnation: ctx.engine.incarnation });
  route(app, "/internal/cluster/prepare", {
    POST: async (c) => {
      const body = await readRouteJson(c.req.raw, ctx, "the prepare");
      const { epoch, ballot } = parseVoteBody(body);
      await learnBase(ctx, body, epoch);
      return c.json({ accepted: await ctx.mapVotes.prepare(epoch, ballot), ...voter() });
    },
  });
  // Read only (no promise, nothing stored): a proxy looks for a map accepted but never pushed.
  route(app, "/internal/cluster/vote", {
    GET: async (c) => c.json({ vote: await ctx.mapVotes.peek(), ...voter() }),
  });
  route(app, "/internal/cluster/accept", {
    POST: async (c) => {
      const body = await readRouteJson(c.req.raw, ctx, "the accept");
      const { epoch, ballot } = parseVoteBody(body);
      await learnBase(ctx, body, epoch);
      const map = parseClusterMap((body as { map?: unknown }).map);
      if (map.epoch !== epoch) {
        throw new RingkvError(
          "bad_request",
          `Cannot accept a map of epoch ${map.epoch} as epoch ${epoch}`,
        );
      }
      await ctx.mapVotes.accept(epoch, ballot, map);
      return c.json({ epoch, ...voter() });
    },
  });
}

/** Takes the base map a vote carries, as {@link baseToLearn} says (one implementation, fakes too). */
async function learnBase(ctx: NodeContext, body: unknown, epoch: number): Promise<void> {
  const base = (body as { base?: unknown }).base;
  if (base === undefined || base === null) return;
  const self = { id: ctx.engine.id, incarnation: ctx.engine.incarnation };
  const map = baseToLearn(parseClusterMap(base), epoch, self, await ctx.cluster.get());
  // Read again: another call may have stored a newer map meanwhile.
  if (map !== null && map.epoch > await ctx.cluster.epoch()) await ctx.cluster.put(map);
}

/** `{epoch, ballot}` of a vote call; 400 on anything else. */
function parseVoteBody(body: unknown): { epoch: number; ballot: string } {
  const { epoch, ballot } = (isObject(body) ? body : {}) as { epoch?: unknown; ballot?: unknown };
  if (!Number.isSafeInteger(epoch) || (epoch as number) < 1) {
    throw new RingkvError(
      "bad_request",
      "Cannot vote on the cluster map: epoch is not a whole number >= 1",
    );
  }
  if (typeof ballot !== "string" || !isVersion(ballot)) {
    throw new RingkvError("bad_request", "Cannot vote on the cluster map: ballot is not a version");
  }
  return { epoch: epoch as number, ballot };
}

/** Reads an NDJSON body of entries, bounded in bytes and lines; nothing applies if one is bad. */
async function readNdjson(c: Context, ctx: NodeContext): Promise<WireEntry[]> {
  const { limits } = ctx;
  const max = limits.maxBatchBytes;
  const bytes = await readCappedBody(
    c.req.raw,
    max,
    (size, exact) =>
      new RingkvError(
        "batch_too_large",
        `Cannot ingest: the body is ${size}${exact ? "" : "+"} bytes, the limit is ${max}`,
      ),
    "the ingest body",
    ctx.bodyTimers,
  );
  const lines = decodeText(bytes, "the ingest body").split("\n").filter((l) => l.trim() !== "");
  if (lines.length > limits.maxBatchOps) {
    throw new RingkvError(
      "batch_too_large",
      `Cannot ingest: the body has ${lines.length} entries, the limit is ${limits.maxBatchOps}`,
    );
  }
  return lines.map((line, i) =>
    parseWireEntry(parseJson(line, `line ${i + 1} of the ingest body`), limits, `line ${i + 1}`)
  );
}

/**
 * Streams the entries in the ranges; the key set is taken now, values as the stream goes,
 * each once durable (a write whose log round then fails is never sent: the stream breaks).
 * A node on another incarnation than the sender's map records refuses (it is no replica).
 */
function scan(c: Context, ctx: NodeContext): Response {
  checkIncarnation(c.req.header(INCARNATION_HEADER), ctx, "scan");
  const ranges = parseRangesQuery(c.req.query("ranges"));
  const keys = ctx.engine.scanKeys(ranges);
  let next = 0;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      let text = "";
      while (next < keys.length && text.length < SCAN_CHUNK_CHARS) {
        const key = keys[next++]!;
        const entry = await ctx.engine.get(key);
        if (entry !== undefined) text += JSON.stringify(toWire(key, entry)) + "\n";
      }
      if (text !== "") controller.enqueue(encoder.encode(text));
      if (next >= keys.length) controller.close();
    },
  });
  return new Response(body, { status: 200, headers: { "content-type": NDJSON } });
}

/**
 * `?before=<wall ms>&limit=n`: live keys whose TTL ran out by then and by this node's clock
 * (the earlier of the two), for the proxy's reaper.
 */
function listExpired(c: Context, ctx: NodeContext): Response {
  const before = Number(c.req.query("before"));
  const limit = Number(c.req.query("limit") ?? ctx.limits.maxBatchOps);
  if (!Number.isSafeInteger(before) || !Number.isInteger(limit) || limit < 1) {
    throw new RingkvError(
      "bad_request",
      "Cannot list expired keys: give before=<wall ms> and limit=<whole number>",
    );
  }
  const found = ctx.engine.expiredKeys(before, Math.min(limit, ctx.limits.maxBatchOps));
  return c.json({ keys: found.map(({ key, version }) => ({ k: key, ver: version })) });
}

/**
 * `?graceMs=<ms>&limit=n`: tombstones stored on this node at least `graceMs` ago by its clock, with
 * their versions and ring points, for the proxies' purge (proxy/replication/tombstone_purge.ts).
 */
function listOldTombstones(c: Context, ctx: NodeContext): Response {
  const limit = Number(c.req.query("limit") ?? ctx.limits.maxBatchOps);
  if (!Number.isInteger(limit) || limit < 1) {
    throw new RingkvError(
      "bad_request",
      "Cannot list old tombstones: give graceMs=<ms> and limit=<whole number>",
    );
  }
  const storedBy = ctx.engine.now() - checkGrace(Number(c.req.query("graceMs")));
  const found = ctx.engine.oldTombstones(storedBy, Math.min(limit, ctx.limits.maxBatchOps));
  const tombstones = found.map(({ key, version, hash }) => ({ k: key, ver: version, h: hash }));
  return c.json({ tombstones });
}

async function listKeys(c: Context, ctx: NodeContext): Promise<Response> {
  // A node back on a wiped directory would list its empty store as a replica's keys.
  checkIncarnation(c.req.header(INCARNATION_HEADER), ctx, "list keys");
  const { limits } = ctx;
  const limitText = c.req.query("limit");
  const limit = limitText === undefined ? limits.defaultListLimit : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > limits.maxListLimit) {
    throw new RingkvError(
      "bad_request",
      `Cannot list keys with limit "${limitText}": give a whole number from 1 to ${limits.maxListLimit}`,
    );
  }
  const withValues = c.req.query("values") === "true";
  const after = c.req.query("after");
  const page = await ctx.engine.list({
    prefix: c.req.query("prefix") ?? "",
    ...(after === undefined ? {} : { after }),
    limit,
  });
  const entries = page.entries.map(([key, entry]) => toWire(key, entry, withValues));
  return c.json({ entries, more: page.more });
}
