/**
 * The public client API (docs/api.md): `PUT|GET|HEAD|DELETE /kv/{key}`, the batch
 * `POST /kv` and the listing `GET /kv`, each routed through the ring by a {@link Router}.
 *
 * @module
 */
import { sameSecret } from "../../shared/secret.ts";
import { querySearchParams } from "./listing_route.ts";
import { bearerRefusal, wwwAuthenticate } from "../../shared/bearer.ts";
import { Hono } from "hono";
import { ERROR_STATUS, type ErrorCode, errorResponse, RingkvError } from "../../shared/errors.ts";
import { keyFromPath } from "../../shared/keys.ts";
import type { Limits } from "../../shared/limits.ts";
import type { BatchOp, BatchResult } from "../../shared/wire.ts";
import { DEFAULT_CONTENT_TYPE } from "../../shared/wire.ts";
import { handleBatch } from "./batch_route.ts";
import { handleList } from "./listing_route.ts";
import { EXPIRES_AT_HEADER } from "../../shared/expiry.ts";
import { writeQuery } from "./write_query.ts";
import { REQUEST_ID_HEADER } from "../../shared/log.ts";
import { checkedTtl, expiringType, visible } from "./expiry_view.ts";
import type { NodeClient } from "../nodes/node_client.ts";
import type { RequestIds } from "./observe.ts";
import { readBody } from "./request_body.ts";
import { resultByteLength, resultBytes } from "./result_value.ts";
import { type Outcome, Router } from "../routing/router.ts";
import { pathOf } from "../../shared/url_path.ts";
import type { SlotTimers } from "../../shared/slot_timers.ts";

/** What the public routes need. */
export interface PublicRoutesDeps {
  router: Router;
  client: NodeClient;
  limits: Limits;
  /** When set, every /kv route needs `Authorization: Bearer <clientToken>`. */
  clientToken?: string;
  /** Request ids, passed on to the nodes with the ops run for each request. */
  requestIds?: RequestIds;
  /** The body deadlines of PUT and POST /kv (`limits.bodyTimeoutMs`); a timer each when absent. */
  bodyTimers?: SlotTimers;
}

/** Longest `Content-Type` a value may carry. */
export const MAX_CONTENT_TYPE_LENGTH = 256;

/** A stored value's Content-Security-Policy: a document of its own origin that runs nothing. */
export const VALUE_CSP = "default-src 'none'; sandbox";

/** The /kv routes as a Hono app. */
export function createPublicRoutes(deps: PublicRoutesDeps): Hono {
  const app = new Hono();
  const token = deps.clientToken;
  if (token) {
    app.use("/kv/*", (c, next) => {
      const refused = clientRefusal(c.req.raw, token);
      return refused === undefined ? next() : Promise.resolve(refused);
    });
  }
  app.get("/kv", (c) => handleList(deps, c.req.raw));
  app.post("/kv", (c) => handleBatch(deps, c.req.raw));
  app.all("/kv", () => notAllowed("GET, HEAD, POST"));
  app.get("/kv/*", (c) => getKey(deps, c.req.raw));
  app.put("/kv/*", (c) => putKey(deps, c.req.raw));
  app.delete("/kv/*", (c) => deleteKey(deps, c.req.raw));
  app.all("/kv/*", () => notAllowed("GET, HEAD, PUT, DELETE"));
  return app;
}

/** The 401 for a /kv request without the client token, or undefined when it has it. */
export function clientRefusal(req: Request, token: string): Response | undefined {
  const header = req.headers.get("authorization");
  if (sameSecret(header, `Bearer ${token}`)) return undefined; // the common case, no parsing
  const refusal = bearerRefusal(header, token, "client");
  if (refusal === undefined) return undefined;
  return errorResponse(refusal, { "www-authenticate": wwwAuthenticate("client") });
}

function notAllowed(allow: string): Response {
  return errorResponse(
    new RingkvError("method_not_allowed", `Cannot use this method here: allowed are ${allow}`),
    { allow },
  );
}

/** The key of a `/kv/{key}` request, from the raw (still percent-encoded) path. */
export function keyOf(req: Request, limits: Limits): string {
  const path = pathOf(req.url);
  if (!path.startsWith("/kv/")) {
    throw new RingkvError("no_route", `No route for ${req.method} ${path}`);
  }
  return keyFromPath(path.slice(4), limits.maxKeyBytes);
}

/**
 * `headers` with the request's id: an answer built with it is sent as built, while setting it
 * afterwards (observe.ts does for other answers) copies the headers out of Deno.serve's form.
 */
function withRequestId(
  deps: PublicRoutesDeps,
  req: Request,
  headers: Record<string, string>,
): Record<string, string> {
  const id = deps.requestIds?.of(req);
  if (id !== undefined) headers[REQUEST_ID_HEADER] = id;
  return headers;
}

/** The one outcome of a single-key call, or its error. */
async function runOne(deps: PublicRoutesDeps, op: BatchOp, req: Request): Promise<BatchResult> {
  deps.requestIds?.tag([op], req);
  const outcome: Outcome = await deps.router.runOne(op);
  if (outcome instanceof RingkvError) throw outcome;
  return outcome;
}

/** `GET|HEAD /kv/{key}` (Hono mounts it; the app's front calls it for a plain GET). */
export async function getKey(deps: PublicRoutesDeps, req: Request): Promise<Response> {
  const key = keyOf(req, deps.limits);
  // Read before the key's value is, so a malformed one is a 400 whatever the key holds.
  const ifMatchHeader = req.headers.get("if-match");
  const ifMatch = ifMatchHeader === null ? undefined : parseIfMatch(ifMatchHeader, true);
  const r = visible(await runOne(deps, { op: "get", key }, req), Date.now());
  if (r.status !== 200 && r.status !== 404) throw resultError(r, key);
  // RFC 9110 13.2.2: If-Match before everything else, 412 also for an absent key.
  if (ifMatch !== undefined && !ifMatchHolds(ifMatch, r)) {
    throw readPreconditionFailed(key, r, ifMatch);
  }
  if (r.status === 404) throw new RingkvError("not_found", `Key "${key}" does not exist`);
  const etag = `"${r.version}"`;
  // The writer chose the Content-Type: a text/html or SVG value opened in a browser would run
  // its script on the proxy's origin, beside the web page and its admin token (review). As a
  // sandboxed document with no sources it runs nothing and reads no storage of the origin; on a
  // 304 too, which refreshes a copy a browser cached without them.
  const headers = withRequestId(deps, req, {
    etag,
    "content-security-policy": VALUE_CSP,
    "x-content-type-options": "nosniff",
  });
  // Kept on a 304 too: like Expires, it says how long the client's copy stays good.
  if (r.expiresAt !== undefined) {
    headers[EXPIRES_AT_HEADER] = new Date(r.expiresAt).toISOString();
  }
  const inm = req.headers.get("if-none-match");
  // RFC 9110 15.4.5: a 304 sends the validators, not the representation's metadata.
  if (inm !== null && etagListMatches(inm, etag)) {
    return new Response(null, { status: 304, headers });
  }
  headers["content-type"] = r.contentType ?? DEFAULT_CONTENT_TYPE;
  // Text goes out as the string the node sent: Deno encodes it natively, no bytes made in JS.
  if (req.method !== "HEAD") {
    return new Response(r.text ?? resultBytes(r), { status: 200, headers });
  }
  // Deno.serve says a GET body's Content-Length itself (one header fewer to build per GET); a
  // HEAD has no body to count.
  headers["content-length"] = String(resultByteLength(r));
  return new Response(null, { status: 200, headers });
}

/** `PUT /kv/{key}` (Hono mounts it; the app's front calls it for a plain PUT). */
export async function putKey(deps: PublicRoutesDeps, req: Request): Promise<Response> {
  const key = keyOf(req, deps.limits);
  const contentType = req.headers.get("content-type") ?? DEFAULT_CONTENT_TYPE;
  if (contentType.length > MAX_CONTENT_TYPE_LENGTH) {
    throw new RingkvError(
      "invalid_header",
      `Cannot store key "${key}": its Content-Type is ${contentType.length} characters, the limit is ${MAX_CONTENT_TYPE_LENGTH}`,
    );
  }
  const conditions = writeConditions(req.headers);
  // Any query is read (`?ttl` with no value is a 400, `%74tl` is `ttl`); most PUTs have none.
  const ttl = req.url.includes("?") ? writeQuery(querySearchParams(req.url), "put", key) : null;
  const seconds = checkedTtl(contentType, ttl, key);
  const body = await readBody(
    req,
    deps.limits.maxValueBytes,
    "value_too_large",
    `the value of key "${key}"`,
    deps.bodyTimers ?? deps.limits.bodyTimeoutMs,
  );
  const r = await runOne(deps, {
    op: "put",
    key,
    value: body.toBase64(),
    // The TTL counts from when the value has arrived, not from the request's first byte.
    contentType: expiringType(contentType, seconds, Date.now()),
    ...conditions,
  }, req);
  if (r.status === 200 || r.status === 201) {
    // As Response.json would answer, from a string: Deno sends it without encoding it in JS.
    const headers = withRequestId(deps, req, {
      "content-type": "application/json",
      etag: `"${r.version}"`,
    });
    return new Response(`{"version":${JSON.stringify(r.version)}}`, { status: r.status, headers });
  }
  throw r.status === 412 ? preconditionFailed("set", key, r, conditions) : resultError(r, key);
}

/** `DELETE /kv/{key}` (Hono mounts it; the app's front calls it for a plain DELETE). */
export async function deleteKey(deps: PublicRoutesDeps, req: Request): Promise<Response> {
  const key = keyOf(req, deps.limits);
  if (req.url.includes("?")) writeQuery(querySearchParams(req.url), "delete", key);
  const conditions = writeConditions(req.headers);
  const r = await runOne(deps, { op: "delete", key, ...conditions }, req);
  if (r.status === 204) {
    const headers = withRequestId(deps, req, { etag: `"${r.version}"` });
    return new Response(null, { status: 204, headers });
  }
  if (r.status === 404) {
    throw new RingkvError("not_found", `Cannot delete key "${key}": it does not exist`);
  }
  throw r.status === 412 ? preconditionFailed("delete", key, r, conditions) : resultError(r, key);
}

/** `If-Match: "<version>"` and `If-None-Match: *` of a write; 400 for anything else. */
export function writeConditions(headers: Headers): { ifMatch?: string; ifNoneMatch?: "*" } {
  const out: { ifMatch?: string; ifNoneMatch?: "*" } = {};
  const ifMatch = headers.get("if-match");
  if (ifMatch !== null) out.ifMatch = parseIfMatch(ifMatch, false);
  const ifNoneMatch = headers.get("if-none-match")?.trim();
  if (ifNoneMatch !== undefined) {
    if (ifNoneMatch !== "*") {
      throw new RingkvError(
        "invalid_header",
        `Cannot use If-None-Match ${ifNoneMatch} on a write: only If-None-Match: * (the key must not exist) is supported`,
      );
    }
    out.ifNoneMatch = "*";
  }
  return out;
}

/**
 * The version an `If-Match` header names: one ETag, its quotes optional; `*` (any existing
 * version) only where `star` allows it, on reads. Anything else is a 400.
 */
export function parseIfMatch(header: string, star: boolean): string {
  const value = header.trim();
  if (star && value === "*") return "*";
  const quoted = /^"([^"]+)"$/.exec(value)?.[1];
  const bare = /^[^\s",*]+$/.test(value) ? value : undefined;
  if (quoted === undefined && bare === undefined) {
    const also = star ? " or If-Match: *" : " (If-Match: * is not supported on writes)";
    throw new RingkvError(
      "invalid_header",
      `Cannot use If-Match ${value}: give one ETag, If-Match: "<version>"${also}`,
    );
  }
  return (quoted ?? bare)!;
}

/** Whether a read's result `r` (200 or 404) holds the version `ifMatch` asks for. */
function ifMatchHolds(ifMatch: string, r: BatchResult): boolean {
  return r.status === 200 && (ifMatch === "*" || ifMatch === r.version);
}

function readPreconditionFailed(key: string, r: BatchResult, ifMatch: string): RingkvError {
  const exists = r.status === 200;
  const wanted = ifMatch === "*"
    ? "If-Match: * asked for it to exist"
    : `If-Match asked for version ${ifMatch}`;
  const state = exists ? `its version is ${r.version}` : "it does not exist";
  return new RingkvError(
    "precondition_failed",
    `Cannot read key "${key}": ${wanted}, ${state}`,
    exists && r.version ? { version: r.version } : {},
  );
}

function etagListMatches(header: string, etag: string): boolean {
  return header.split(",").some((t) => {
    const tag = t.trim().replace(/^W\//, "");
    return tag === "*" || tag === etag;
  });
}

function preconditionFailed(
  verb: string,
  key: string,
  r: BatchResult,
  conditions: { ifMatch?: string; ifNoneMatch?: "*" },
): RingkvError {
  const state = r.version ? `its version is ${r.version}` : "it does not exist";
  // With both headers, If-Match may have held: then If-None-Match: * is the one that failed.
  const matchFailed = conditions.ifMatch !== undefined && conditions.ifMatch !== r.version;
  const wanted = matchFailed || conditions.ifNoneMatch === undefined
    ? `If-Match asked for version ${conditions.ifMatch}`
    : "If-None-Match: * asked for it to be absent";
  return new RingkvError(
    "precondition_failed",
    `Cannot ${verb} key "${key}": ${wanted}, ${state}`,
    {
      ...(r.version ? { version: r.version } : {}),
    },
  );
}

/** The error for a node's per-op answer that is neither success nor a plain miss. */
export function resultError(r: BatchResult, key: string): RingkvError {
  const code = r.error?.code;
  if (code !== undefined && code in ERROR_STATUS) {
    return new RingkvError(code as ErrorCode, r.error!.message);
  }
  return new RingkvError(
    "bad_gateway",
    `Cannot use the node's answer for key "${key}": status ${r.status}`,
  );
}
