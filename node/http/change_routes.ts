/**
 * The node's change feed for proxies' watchers (docs/internal-api.md): `GET /internal/changes`
 * pages through the change log (node/engine/change_log.ts), waiting a little for the next
 * change when there is none; `POST /internal/changes/at` says which version keys had at a
 * position of the log.
 *
 * @module
 */
import type { Context, Hono } from "hono";
import { RingkvError } from "../../shared/errors.ts";
import type { Change } from "../engine/change_log.ts";
import { base64Of } from "../engine/values.ts";
import { isObject, readRouteJson } from "./node_request_body.ts";
import { type NodeContext, route } from "./node_context.ts";

/** Longest a change read waits for a change, in ms. */
export const MAX_CHANGES_WAIT_MS = 10_000;

/** A change on the wire: sequence, key, version, previous version, value (base64), type. */
export interface WireChange {
  s: number;
  k: string;
  ver: string;
  prev: string | null;
  v: string | null;
  t?: string;
}

/** Registers `/internal/changes` and `/internal/changes/at`. */
export function changeRoutes(app: Hono, ctx: NodeContext): void {
  route(app, "/internal/changes", { GET: (c) => readChanges(c, ctx) });
  route(app, "/internal/changes/at", { POST: (c) => versionsAt(c, ctx) });
}

function bad(what: string): RingkvError {
  return new RingkvError("bad_request", `Cannot read changes: ${what}`);
}

/** A query parameter or JSON field as a whole number (digits only: `Number("")` is 0). */
function whole(raw: unknown, name: string, fallback?: number): number {
  const n = raw === undefined
    ? fallback
    : typeof raw === "number"
    ? raw
    : typeof raw === "string" && /^\d{1,16}$/.test(raw)
    ? Number(raw)
    : undefined;
  if (n === undefined || !Number.isSafeInteger(n) || n < 0) {
    throw bad(`${name} is not a whole number`);
  }
  return n;
}

async function readChanges(c: Context, ctx: NodeContext): Promise<Response> {
  const log = ctx.engine.changes;
  const boot = c.req.query("boot");
  const after = c.req.query("after") === undefined
    ? log.last
    : whole(c.req.query("after"), "after");
  const limit = Math.min(whole(c.req.query("limit"), "limit", 1000), ctx.limits.maxBatchOps);
  // An empty page that says it is full has no last change to name (review: a 500).
  if (limit < 1) throw bad("limit is not 1 or more");
  const wait = Math.min(whole(c.req.query("wait"), "wait", 0), MAX_CHANGES_WAIT_MS);
  const prefix = c.req.query("prefix") ?? "";
  const head = { boot: log.boot, first: log.first, last: log.last };
  if (boot !== undefined && boot !== log.boot) return c.json({ ...head, gone: true });
  await log.wait(after, wait, c.req.raw.signal, prefix);
  const page = log.read(after, limit, prefix);
  if (page === "gone") return c.json({ ...head, gone: true });
  const last = page.length === limit ? page[page.length - 1]!.seq : log.last;
  return c.json({ boot: log.boot, first: log.first, last, changes: page.map(toWireChange) });
}

function toWireChange(ch: Change): WireChange {
  const { stored } = ch;
  // No bytes made per change and poll: an ASCII text is btoa'd, base64 is sent as held.
  const v = base64Of(stored);
  return {
    s: ch.seq,
    k: ch.key,
    ver: stored.version,
    prev: ch.prev,
    v,
    ...(v === null ? {} : { t: stored.contentType }),
  };
}

async function versionsAt(c: Context, ctx: NodeContext): Promise<Response> {
  const body = await readRouteJson(c.req.raw, ctx, "the version query");
  if (!isObject(body) || typeof body.boot !== "string" || !Array.isArray(body.keys)) {
    throw bad('give {"boot", "at", "keys": [...]}');
  }
  const keys = body.keys.filter((k): k is string => typeof k === "string");
  const at = whole(typeof body.at === "number" ? body.at : null, "at");
  const log = ctx.engine.changes;
  if (body.boot !== log.boot) return c.json({ boot: log.boot, gone: true });
  const versions = log.versionsAt(keys, at, (key) => ctx.engine.peek(key)?.version);
  if (versions === "gone") return c.json({ boot: log.boot, gone: true });
  return c.json({ boot: log.boot, versions });
}
