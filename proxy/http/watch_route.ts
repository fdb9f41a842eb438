/**
 * `GET /watch?prefix=P` (`Accept: text/event-stream`): every change under the prefix as
 * Server-Sent Events (docs/api.md, "Watching changes"). Events carry the cursor as `id:`;
 * `Last-Event-ID` resumes after it. A comment line every few seconds keeps idle streams
 * open through proxies; a watcher that does not read is cut off with an explicit event once
 * its unread output passes a bound, and the number of streams is capped (503). New streams
 * of one prefix share one running stream (proxy/watch/watch_group.ts).
 *
 * @module
 */
import { Hono } from "hono";
import { bearerRefusal, wwwAuthenticate } from "../../shared/bearer.ts";
import { RETRY_AFTER_SECONDS } from "../../shared/guard.ts";
import { prefixParam } from "./listing_route.ts";
import { errorResponse, RingkvError } from "../../shared/errors.ts";
import { expiryOf, plainType } from "../../shared/expiry.ts";
import type { KeyPoints } from "../../shared/key_points.ts";
import type { TopologySource } from "../cluster/topology.ts";
import type { ChangeFeed } from "../watch/change_feed.ts";
import { decodeWatchCursor } from "../watch/watch_cursor.ts";
import { EventTexts } from "./event_texts.ts";
import type { WatchEvent } from "../watch/watch_merge.ts";
import { type GroupOptions, WatchGroup, WatchGroups } from "../watch/watch_group.ts";
import { watchStream } from "../watch/watch_stream.ts";

/** Streams a proxy serves at once by default. */
export const DEFAULT_MAX_WATCHERS = 256;
/** Unread output after which a watcher is cut off, in bytes. */
export const MAX_UNREAD_BYTES = 4 << 20;
/** Interval of the keep-alive comment, in ms. */
export const KEEPALIVE_MS = 5000;
/**
 * How long a stream's events wait for more before they are written, in ms: 0, after the turn
 * (a turn merges the nodes' pages of one poll, gathered by proxy/watch/shared_feed.ts).
 */
export const WATCH_FLUSH_MS = 0;

/** What the watch route needs. */
export interface WatchRouteDeps {
  topology: TopologySource;
  feed: Pick<ChangeFeed, "page" | "versionsAt">;
  /** The proxy's memo of keys' ring points, shared with the router. */
  points?: Pick<KeyPoints, "pointOf">;
  clientToken?: string;
  /** The longest key (`--max-key-bytes`): a longer prefix matches nothing, 400 as in listings. */
  maxKeyBytes?: number;
  maxWatchers?: number;
  /** Node long-poll wait, in ms (tests shorten it). */
  waitMs?: number;
  keepaliveMs?: number;
  /** How long events wait for more before they are written ({@link WATCH_FLUSH_MS}). */
  flushMs?: number;
  /** The proxy's wait for a node (`--timeout-ms`): bounds a new stream's start ({@link startLimitMs}). */
  timeoutMs: number;
  /** The events' texts, shared by the streams (tests look at it); one of its own by default. */
  eventTexts?: EventTexts;
}

/**
 * How long the route waits for a new stream to read where it starts in the nodes' logs before
 * it answers 503: a node that does not answer costs one `timeoutMs` (then the stream reads it
 * when it returns), a node on a newer map one more to load that map.
 */
export function startLimitMs(timeoutMs: number): number {
  return 2 * timeoutMs;
}

// ignoreBOM keeps a value's leading U+FEFF: GET returns it, so the event must too.
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const NON_ASCII_BYTE = /[\u0080-\u00ff]/;

/** The `/watch` route as a Hono app. */
export function createWatchRoute(deps: WatchRouteDeps): Hono {
  const app = new Hono();
  let open = 0;
  const texts = deps.eventTexts ?? new EventTexts((e) => JSON.stringify(eventJson(e)));
  const opts: GroupOptions = {
    eventData: (e) => texts.of(e),
    keepaliveMs: deps.keepaliveMs ?? KEEPALIVE_MS,
    maxUnreadBytes: MAX_UNREAD_BYTES,
    flushMs: deps.flushMs ?? WATCH_FLUSH_MS,
  };
  // New streams of one prefix share one merge (proxy/watch/watch_group.ts).
  const groups = new WatchGroups(
    (prefix) => (signal, started) => watchStream(deps, prefix, undefined, signal, started),
    opts,
  );
  app.get("/watch", async (c) => {
    const req = c.req.raw;
    if (deps.clientToken) {
      const refusal = bearerRefusal(
        req.headers.get("authorization") ?? undefined,
        deps.clientToken,
        "client",
      );
      if (refusal !== undefined) {
        return errorResponse(refusal, { "www-authenticate": wwwAuthenticate("client") });
      }
    }
    if (!acceptsEventStream(req.headers.get("accept") ?? "")) {
      throw new RingkvError("not_acceptable", "Cannot watch: send Accept: text/event-stream");
    }
    const prefix = prefixParam(req.url, deps.maxKeyBytes ?? Infinity, "watch");
    const last = req.headers.get("last-event-id");
    const cursor = last === null || last === "" ? undefined : decodeWatchCursor(last);
    const headers = {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
      "x-accel-buffering": "no",
    };
    // Hono serves HEAD from this GET route and drops the body unread: a stream started for
    // it would hold its slot, and poll the nodes, for good.
    if (req.method === "HEAD") return new Response(null, { headers });
    const max = deps.maxWatchers ?? DEFAULT_MAX_WATCHERS;
    if (open >= max) {
      const full = new RingkvError(
        "unavailable",
        `Cannot watch: ${open} watch streams are open, the limit is ${max}; retry later`,
      );
      return errorResponse(full, { "retry-after": String(RETRY_AFTER_SECONDS) });
    }
    open++;
    const left = () => {
      // With no stream open, no text will be written again soon: none is held.
      if (--open === 0) texts.clear();
    };
    // A resumed stream has its own position: it runs its own merge, in a group of one.
    const group = cursor === undefined ? groups.live(prefix) : new WatchGroup(
      (signal, started) => watchStream(deps, prefix, cursor, signal, started),
      opts,
    );
    const body = group.join(req.signal, left);
    // The headers say the stream is open (docs/api.md): a write sent after them must be logged
    // after the positions the stream starts from, so those are read first.
    const limit = startLimitMs(deps.timeoutMs);
    try {
      await startedWithin(group.started, limit);
    } catch (err) {
      await body.cancel();
      if (!(err instanceof RingkvError)) throw err;
      return errorResponse(err, { "retry-after": String(RETRY_AFTER_SECONDS) });
    }
    return new Response(body, { headers });
  });
  app.all(
    "/watch",
    () =>
      errorResponse(
        new RingkvError(
          "method_not_allowed",
          "Cannot use this method on /watch: allowed are GET, HEAD",
        ),
        {
          allow: "GET, HEAD",
        },
      ),
  );
  return app;
}

/** Waits for a stream's start, up to `ms`; rejects with why it did not start, if it did not. */
async function startedWithin(started: Promise<void>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const why = `the stream did not read the nodes' log positions within ${ms} ms`;
      reject(new RingkvError("unavailable", `Cannot watch: ${why}; retry later`));
    }, ms);
  });
  try {
    await Promise.race([started, late]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Whether an `Accept` header asks for `text/event-stream` (named, with a weight above 0;
 * a wildcard such as `text/*` does not: a watch is asked for by name).
 */
export function acceptsEventStream(accept: string): boolean {
  for (const range of accept.split(",")) {
    const [type, ...params] = range.split(";").map((p) => p.trim().toLowerCase());
    if (type !== "text/event-stream") continue;
    const q = params.find((p) => p.startsWith("q="));
    if (q === undefined || Number(q.slice(2)) > 0) return true;
  }
  return false;
}

/** The JSON of a change event: key, version, and the value as text, base64 or deleted. */
export function eventJson(e: WatchEvent): Record<string, unknown> {
  if (e.value === null) return { key: e.key, version: e.version, deleted: true };
  const at = expiryOf(e.contentType);
  const out: Record<string, unknown> = {
    key: e.key,
    version: e.version,
    contentType: plainType(e.contentType ?? "application/octet-stream"),
  };
  // An ASCII value is its own UTF-8: atob's bytes as text, without the decoder (~2 µs per event).
  const raw = atob(e.value);
  try {
    out.value = NON_ASCII_BYTE.test(raw) ? utf8.decode(Uint8Array.fromBase64(e.value)) : raw;
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    out.valueBase64 = e.value;
  }
  if (at !== undefined) out.expiresAt = new Date(at).toISOString();
  return out;
}
