/**
 * The node's hot routes ahead of the Hono app: `GET /kv/{key}` and `POST /internal/batch`
 * when the request carries the cluster secret and a current (or no) epoch. Every check of
 * the app runs here too, only with less allocation (a string compare for the secret, a
 * plain read of the loaded epoch, pre-resolved metric series); anything unusual (wrong
 * secret, stale or unreadable epoch, a missing key, a bad key) goes to the app, which
 * answers it exactly as before.
 *
 * @module
 */
import type { Hono } from "hono";
import { RingkvError } from "../shared/errors.ts";
import { keyFromPath } from "../shared/keys.ts";
import { EPOCH_HEADER, NODE_ID_HEADER, VERSION_HEADER } from "../shared/wire.ts";
import { parseBatchBody, runBatch } from "./batch.ts";
import { errorAnswer } from "./error_answer.ts";
import { readJsonBody } from "./request_body.ts";
import { type NodeContext, rawPath } from "./routing.ts";

/** A fetch handler of the app (what `app.fetch` is). */
type Fetch = Hono["fetch"];

/** Builds the fast fetch: the hot routes here, everything else (and every refusal) to `slow`. */
export function fastFetch(slow: Fetch, ctx: NodeContext, secret: string | undefined): Fetch {
  const expected = secret === undefined || secret === "" ? undefined : `Bearer ${secret}`;
  const id = ctx.engine.id;
  return (req, env, ec) => {
    const method = req.method;
    if (method !== "GET" && method !== "POST") return slow(req, env, ec);
    const path = rawPath(req.url);
    const isGet = method === "GET" && path.startsWith("/kv/");
    if (!isGet && (method !== "POST" || path !== "/internal/batch")) return slow(req, env, ec);
    const headers = req.headers;
    if (expected !== undefined && !sameText(headers.get("authorization"), expected)) {
      return slow(req, env, ec);
    }
    const sent = headers.get(EPOCH_HEADER);
    if (sent !== null && !currentEpoch(ctx, sent)) return slow(req, env, ec);
    if (isGet) return getKey(ctx, id, path, () => slow(req, env, ec));
    return batch(ctx, id, req);
  };
}

/** Whether `sent` is a readable epoch no older than the loaded map's (false: let the app say). */
function currentEpoch(ctx: NodeContext, sent: string): boolean {
  const epoch = ctx.cluster.epochIfLoaded();
  if (epoch === undefined || !/^\d{1,15}$/.test(sent.trim())) return false;
  return Number(sent) >= epoch;
}

/** Compares in time that depends only on the expected length, not on where characters differ. */
function sameText(given: string | null, expected: string): boolean {
  if (given === null) return false;
  let diff = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) diff |= given.charCodeAt(i) ^ expected.charCodeAt(i);
  return diff === 0;
}

async function getKey(
  ctx: NodeContext,
  id: string,
  path: string,
  slow: () => Response | Promise<Response>,
): Promise<Response> {
  const started = performance.now();
  let key: string;
  try {
    key = keyFromPath(path.slice(4), ctx.limits.maxKeyBytes);
  } catch (err) {
    if (err instanceof RingkvError) return slow();
    throw err;
  }
  const entry = await ctx.engine.get(key);
  if (entry === undefined || entry.value === null) return slow(); // the 404 body, as before
  const res = new Response(entry.value as Uint8Array<ArrayBuffer>, {
    status: 200,
    headers: {
      "content-type": entry.contentType, // Content-Length: Deno sets it for a byte body
      etag: `"${entry.version}"`,
      [VERSION_HEADER]: entry.version,
      [NODE_ID_HEADER]: id,
    },
  });
  ctx.counters.count("GET", "/kv/{key}", 200, (performance.now() - started) / 1000);
  return res;
}

async function batch(ctx: NodeContext, id: string, req: Request): Promise<Response> {
  const started = performance.now();
  let res: Response;
  try {
    const { engine, limits } = ctx;
    const body = await readJsonBody(req, limits.maxBatchBytes, "the batch");
    const results = await runBatch(engine, parseBatchBody(body, limits), limits);
    res = new Response(JSON.stringify({ results }), {
      status: 200,
      headers: { "content-type": "application/json", [NODE_ID_HEADER]: id },
    });
  } catch (err) {
    res = errorAnswer(err as Error, req, ctx);
    res.headers.set(NODE_ID_HEADER, id);
  }
  ctx.counters.count("POST", "/internal/batch", res.status, (performance.now() - started) / 1000);
  return res;
}
