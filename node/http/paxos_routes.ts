/**
 * The node's replication routes (docs/internal-api.md, docs/replication.md):
 * `POST /internal/read` (entries with tombstones and versions, no promise),
 * `POST /internal/prepare` and `POST /internal/accept` (CASPaxos phases, node/paxos/acceptor.ts),
 * `POST /internal/purge` (old tombstones every replica holds, forgotten through the acceptor).
 *
 * @module
 */
import type { Hono } from "hono";
import { RingkvError } from "../../shared/errors.ts";
import { checkKey } from "../../shared/keys.ts";
import { isVersion } from "../../shared/version.ts";
import { checkGrace } from "../../shared/tombstone_grace.ts";
import { INCARNATION_HEADER, type WireEntry } from "../../shared/wire.ts";
import { Acceptor, type FloorStore, memoryFloorStore } from "../paxos/acceptor.ts";
import { FLOOR_FILE } from "../paxos/acceptor_floor.ts";
import { valueBudgetOf, withinBudget } from "./batch.ts";
import { checkIncarnation } from "./incarnation_guard.ts";
import { isObject, readRouteJson } from "./node_request_body.ts";
import { type NodeContext, route } from "./node_context.ts";
import { epochFence } from "./epoch_fence.ts";
import { heldToWire, parseWireEntry } from "./wire_entries.ts";

/** Registers the replication routes; the acceptor opens on first use. */
export function paxosRoutes(
  app: Hono,
  ctx: NodeContext,
  floor?: FloorStore,
  promiseAgeMs?: number,
): void {
  const store = floor ?? memoryFloorStore();
  // A save that stalls holds every prepare above the watermark: /health times it too.
  const timed: FloorStore = {
    ...(store.persistent ? { persistent: true } : {}),
    load: () => store.load(),
    save: (v) => ctx.engine.diskWaits.track(FLOOR_FILE, () => store.save(v)),
  };
  let opening: Promise<Acceptor> | undefined;
  const acceptor = () =>
    opening ??= Acceptor.open(ctx.engine, timed, { log: ctx.log, promiseAgeMs }).then((a) => {
      ctx.paxos.acceptor = a;
      return a;
    }, (err) => {
      // A failed load (EIO on acceptor.json) is not kept: the next round reads the file again.
      opening = undefined;
      throw err;
    });
  ctx.paxos.open = acceptor;
  route(app, "/internal/read", {
    POST: async (c) => {
      checkIncarnation(c.req.header(INCARNATION_HEADER), ctx, "read");
      const call = await body(c.req.raw, ctx, "read");
      const keys = listField(call, "keys", "read", ctx);
      for (const key of keys) {
        if (typeof key !== "string") {
          throw new RingkvError("bad_request", "Cannot read: every key must be a string");
        }
        checkKey(key, ctx.limits.maxKeyBytes);
      }
      const budget = valueBudgetOf(call as Record<string, unknown>, "read", "bad_request");
      epochFence(ctx, c.req.raw)?.(); // the entries are taken now
      const held = await Promise.all((keys as string[]).map((key) => ctx.engine.held(key)));
      // Past the budget the list ends early: the proxy reads the keys after it again.
      const entries = held.slice(0, withinBudget(held, budget, false)).map((h, i) =>
        h === undefined ? null : heldToWire(keys[i] as string, h)
      );
      return c.json({ entries });
    },
  });
  route(app, "/internal/purge", {
    POST: async (c) => {
      checkIncarnation(c.req.header(INCARNATION_HEADER), ctx, "purge tombstones");
      const call = await body(c.req.raw, ctx, "purge");
      const graceMs = checkGrace(isObject(call) ? call.graceMs : undefined);
      const given = listField(call, "entries", "purge", ctx).map(parsePurged(ctx));
      // Stored here long enough ago by this node's clock (a fast delete's version is older).
      const storedBy = ctx.engine.now() - graceMs;
      if (isObject(call) && call.check === true) {
        const eligible = new Set(ctx.engine.purgeable(given, storedBy));
        return c.json({
          purged: 0,
          kept: given.filter((t) => !eligible.has(t.key)).map((t) => t.key),
        });
      }
      await ctx.cluster.get();
      const epochCheck = epochFence(ctx, c.req.raw);
      const fence = () => {
        epochCheck?.();
        assertStableMap(ctx);
      };
      fence();
      const purged = new Set(await (await acceptor()).purge(given, storedBy, fence));
      // Young by this node's clock, or no longer that tombstone here (written again).
      const kept = given.filter((t) => !purged.has(t.key)).map((t) => t.key);
      return c.json({ purged: purged.size, kept });
    },
  });
  route(app, "/internal/prepare", {
    POST: async (c) => {
      checkIncarnation(c.req.header(INCARNATION_HEADER), ctx, "prepare");
      const ops = listField(await body(c.req.raw, ctx, "prepare"), "ops", "prepare", ctx);
      const parsed = ops.map(parsePrepare(ctx));
      const a = await acceptor();
      epochFence(ctx, c.req.raw)?.(); // each promise is given now, before its first wait
      const results = await Promise.all(parsed.map(async ({ key, ballot }) => {
        const { entry, ...vote } = await a.prepare(key, ballot);
        return { ...vote, entry: entry === undefined ? null : heldToWire(key, entry) };
      }));
      return c.json({ results });
    },
  });
  route(app, "/internal/accept", {
    POST: async (c) => {
      checkIncarnation(c.req.header(INCARNATION_HEADER), ctx, "accept");
      const list = listField(await body(c.req.raw, ctx, "accept"), "entries", "accept", ctx);
      const entries: WireEntry[] = list.map((e, i) =>
        parseWireEntry(e, ctx.limits, `entry ${i + 1}`)
      );
      const a = await acceptor();
      // Decided in order, stored as one log record (node/paxos/acceptor.ts).
      const results = await a.acceptAll(entries, epochFence(ctx, c.req.raw));
      return c.json({ results });
    },
  });
}

function body(req: Request, ctx: NodeContext, what: string): Promise<unknown> {
  return readRouteJson(req, ctx, `the ${what}`);
}

function listField(body: unknown, field: string, what: string, ctx: NodeContext): unknown[] {
  const list = isObject(body) ? body[field] : undefined;
  if (!Array.isArray(list)) {
    throw new RingkvError("bad_request", `Cannot ${what}: the body must be {"${field}": [...]}`);
  }
  if (list.length > ctx.limits.maxBatchOps) {
    throw new RingkvError(
      "batch_too_large",
      `Cannot ${what}: ${list.length} items, the limit is ${ctx.limits.maxBatchOps}`,
    );
  }
  return list;
}

function parsePurged(ctx: NodeContext) {
  return (item: unknown, i: number): { key: string; version: string } => {
    const key = isObject(item) ? item.k : undefined;
    const version = isObject(item) ? item.ver : undefined;
    if (typeof key !== "string" || typeof version !== "string" || !isVersion(version)) {
      throw new RingkvError(
        "bad_request",
        `Cannot purge entry ${i + 1}: it must be {"k": string, "ver": version}`,
      );
    }
    checkKey(key, ctx.limits.maxKeyBytes);
    return { key, version };
  };
}

/**
 * 409 unless the node holds a stable map: while a range moves, a copy may still bring an older
 * entry of a key whose tombstone was purged (and without a map the node serves no cluster).
 */
function assertStableMap(ctx: NodeContext): void {
  const map = ctx.cluster.loaded();
  if (map !== null && map.rebalancing === null) return;
  throw new RingkvError(
    "conflict",
    map === null
      ? "Cannot purge tombstones: this node has no cluster map"
      : `Cannot purge tombstones: the cluster map of epoch ${map.epoch} is moving ranges (${
        map.rebalancing!.kind
      } ${map.rebalancing!.nodeId})`,
  );
}

function parsePrepare(ctx: NodeContext) {
  return (op: unknown, i: number): { key: string; ballot: string } => {
    const key = isObject(op) ? op.key : undefined;
    const ballot = isObject(op) ? op.ballot : undefined;
    if (typeof key !== "string" || typeof ballot !== "string" || !isVersion(ballot)) {
      throw new RingkvError(
        "bad_request",
        `Cannot prepare op ${i + 1}: it must be {"key": string, "ballot": version}`,
      );
    }
    checkKey(key, ctx.limits.maxKeyBytes);
    return { key, ballot };
  };
}
