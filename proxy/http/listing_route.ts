/**
 * `GET /kv?prefix=&limit=&cursor=&values=true`: keys in key order across every node,
 * paginated with an opaque cursor (proxy/routing/listing.ts merges the nodes' pages). With
 * `values=true` the values are read from each key's owner, like `GET /kv/{key}`; a
 * value that is UTF-8 comes back as a string, any other as `{"base64": "..."}`.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import { utf8Length } from "../../shared/keys.ts";
import { callValueBytes, type Limits } from "../../shared/limits.ts";
import { DEFAULT_CONTENT_TYPE } from "../../shared/wire.ts";
import { decodeCursor, encodeCursor, listLive } from "../routing/listing.ts";
import type { PublicRoutesDeps } from "./public_routes.ts";
import { resultByteLength, resultText } from "./result_value.ts";
import { visible } from "./expiry_view.ts";
import type { Topology } from "../cluster/topology.ts";
import { quorumOf } from "../replication/quorum.ts";
import type { NodeRef } from "../nodes/node_client.ts";

/** Most keys whose values are read in one round when `values=true`. */
const VALUE_CHUNK = 100;

/**
 * Keys to read in a listing's next round of values: as many as fit `roundBytes` at the largest
 * value of the last round (at most twice as many as it read), or at the value limit before any.
 * 100 values of 1 MiB in one round made one node answer of 130 MiB per replica, which timed out.
 */
export function nextValueChunk(
  last: { keys: number; largest: number } | undefined,
  roundBytes: number,
  maxValueBytes: number,
): number {
  const largest = last === undefined ? maxValueBytes : Math.max(last.largest, 1);
  const fit = Math.floor(roundBytes / largest);
  const grown = last === undefined ? VALUE_CHUNK : 2 * last.keys;
  return Math.max(1, Math.min(VALUE_CHUNK, fit, grown));
}

/** A listing request, checked. */
export interface ListQuery {
  prefix: string;
  limit: number;
  after: string | undefined;
  values: boolean;
}

/** One item of a listing with values. */
export interface ListItem {
  key: string;
  value: string | { base64: string };
  contentType: string;
  version: string;
  /** When a key with a TTL expires (ISO 8601, as `Expires-At` and watch events say it). */
  expiresAt?: string;
}

/** Handles `GET /kv`. */
export async function handleList(deps: PublicRoutesDeps, req: Request): Promise<Response> {
  const q = parseListQuery(req.url, deps.limits);
  const page = await deps.router.withTopology((topo) => {
    const unreached = new Set<string>();
    const scan = { maxPage: deps.limits.maxListLimit };
    return listLive(nodeIdsOf(topo), q.after, q.limit, async (id, after, size) => {
      try {
        return await deps.client.keys(nodeRef(topo, id), topo.map.epoch, {
          prefix: q.prefix,
          after,
          limit: size,
        }, deps.requestIds?.of(req));
      } catch (err) {
        if (!(err instanceof RingkvError) || err.code !== "node_unavailable") throw err;
        if (unreached.size >= listableWithout(topo)) throw err;
        // Its keys are on the other replicas, each acknowledged version on one at least.
        unreached.add(id);
        return { entries: [], more: false };
      }
    }, scan);
  });
  const keys = page.entries.map((e) => e.k);
  // The last key read: a page cut short by deleted keys goes on after them.
  const cursor = page.more && page.passed !== undefined ? encodeCursor(page.passed) : null;
  if (!q.values) return Response.json({ keys, cursor });
  const { items, stoppedAfter } = await readValues(deps, keys, deps.limits.maxBatchBytes);
  return Response.json({
    items,
    cursor: stoppedAfter !== undefined ? encodeCursor(stoppedAfter) : cursor,
  });
}

/** The raw query of `url` (after `?`, before `#`), read by index: its host is the client's. */
function rawQuery(url: string): string {
  const start = url.indexOf("?");
  if (start === -1) return "";
  const hash = url.indexOf("#", start);
  return url.slice(start + 1, hash === -1 ? undefined : hash);
}

/** The query of `url` without parsing the rest of it (its host is the client's to choose). */
export function querySearchParams(url: string): URLSearchParams {
  return new URLSearchParams(rawQuery(url));
}

/**
 * The value of query parameter `name` in `url` (undefined when absent), for `what`. 400 when it
 * is not percent-encoded UTF-8, as for a key (URLSearchParams would read `%ff` as U+FFFD), or
 * when it is given twice (which one was meant is unknown, as for a PUT's `ttl`).
 */
export function strictQueryParam(url: string, name: string, what: string): string | undefined {
  let first: string | undefined;
  for (const part of rawQuery(url).split("&")) {
    const eq = part.indexOf("=");
    if (formDecode(eq === -1 ? part : part.slice(0, eq)) !== name) continue;
    const value = formDecode(eq === -1 ? "" : part.slice(eq + 1));
    if (value === undefined) {
      throw new RingkvError(
        "bad_request",
        `Cannot ${what}: the ${name}'s percent-encoding is invalid or does not decode to UTF-8`,
      );
    }
    if (first !== undefined) {
      throw new RingkvError(
        "bad_request",
        `Cannot ${what}: the ${name} is given twice; give it once`,
      );
    }
    first = value;
  }
  return first;
}

/**
 * The `prefix` of `url`'s query ("" when none), for `what` (a listing, a watch), checked as
 * {@link strictQueryParam} does; 400 too when it is longer than the longest key (such a prefix
 * matches nothing).
 */
export function prefixParam(url: string, maxKeyBytes: number, what: string): string {
  const first = strictQueryParam(url, "prefix", what);
  if (first !== undefined && utf8Length(first) > maxKeyBytes) {
    throw new RingkvError(
      "bad_request",
      `Cannot ${what}: the prefix is longer than the longest key (${maxKeyBytes} bytes)`,
    );
  }
  return first ?? "";
}

/** A query component decoded as a form does (`+` is a space); undefined when not UTF-8. */
function formDecode(text: string): string | undefined {
  try {
    return decodeURIComponent(text.replaceAll("+", " "));
  } catch {
    return undefined;
  }
}

/**
 * The values of `keys` from their owners, skipping keys deleted meanwhile; stops early
 * (and says after which key) once `budget` bytes of values are in hand.
 */
async function readValues(
  deps: PublicRoutesDeps,
  keys: readonly string[],
  budget: number,
): Promise<{ items: ListItem[]; stoppedAfter?: string }> {
  const items: ListItem[] = [];
  let bytes = 0;
  let last: { keys: number; largest: number } | undefined;
  // A round reads about what one node answer carries (the nodes stop each answer there too).
  const roundBytes = callValueBytes(deps.limits);
  for (let start = 0; start < keys.length; start += last.keys) {
    const size = nextValueChunk(last, roundBytes, deps.limits.maxValueBytes);
    const chunk = keys.slice(start, start + size);
    last = { keys: chunk.length, largest: 0 };
    const outcomes = await deps.router.run(chunk.map((key) => ({ op: "get" as const, key })));
    for (let i = 0; i < chunk.length; i++) {
      const outcome = outcomes[i]!;
      if (outcome instanceof RingkvError) throw outcome;
      const r = visible(outcome, Date.now());
      if (r.status !== 200) continue;
      const text = resultText(r); // null: binary, so `value` is the base64
      const item: ListItem = {
        key: chunk[i]!,
        value: text ?? { base64: r.value ?? "" },
        contentType: r.contentType ?? DEFAULT_CONTENT_TYPE,
        version: r.version ?? "",
      };
      if (r.expiresAt !== undefined) item.expiresAt = new Date(r.expiresAt).toISOString();
      items.push(item);
      const valueBytes = resultByteLength(r);
      bytes += valueBytes;
      last.largest = Math.max(last.largest, valueBytes);
      const isLast = start + i === keys.length - 1;
      if (bytes >= budget && !isLast) return { items, stoppedAfter: chunk[i]! };
    }
  }
  return { items };
}

function badQuery(what: string): RingkvError {
  return new RingkvError("bad_request", `Cannot list keys: ${what}`);
}

/** Checks the query of `GET /kv` (at `url`); 400 for anything out of range or repeated. */
export function parseListQuery(url: string, limits: Limits): ListQuery {
  const prefix = prefixParam(url, limits.maxKeyBytes, "list keys");
  const params = querySearchParams(url);
  // The first of two would win silently: a page of the wrong size or from the wrong place.
  const repeated = ["limit", "cursor", "values"].find((name) => params.getAll(name).length > 1);
  if (repeated !== undefined) throw badQuery(`${repeated} is given twice; give it once`);
  const rawLimit = params.get("limit");
  const limit = rawLimit === null ? limits.defaultListLimit : Number(rawLimit);
  if (
    (rawLimit !== null && !/^\d+$/.test(rawLimit)) || limit < 1 || limit > limits.maxListLimit
  ) {
    throw badQuery(`limit "${rawLimit}" is not a whole number from 1 to ${limits.maxListLimit}`);
  }
  const cursor = params.get("cursor");
  const after = cursor === null || cursor === ""
    ? undefined
    : decodeCursor(cursor, limits.maxKeyBytes);
  const rawValues = params.get("values");
  // Empty (`values=`, `values`) is refused as an empty limit or force is: it says neither.
  if (rawValues !== null && !["true", "false", "1", "0"].includes(rawValues)) {
    throw badQuery(`values "${rawValues}" is not true, false, 1 or 0`);
  }
  const values = rawValues === "true" || rawValues === "1";
  return { prefix, limit, after, values };
}

/**
 * How many nodes a listing may go without: an acknowledged version is on a quorum of its key's
 * replicas, so with fewer than a quorum of nodes unreached every one is still on a node that
 * answers, and the newest version of each key wins the merge. None with one replica, and none
 * during a rebalancing (a key moving to a new node is not counted on its new replicas yet).
 */
export function listableWithout(topo: Topology): number {
  if (topo.nextRing !== null) return 0;
  const replicas = Math.min(topo.map.replicas, topo.ring.nodeIds.length);
  return replicas < 2 ? 0 : quorumOf(replicas) - 1;
}

/** Every node that can hold keys: the current ring's and, during a rebalancing, the next's. */
function nodeIdsOf(topo: Topology): string[] {
  return [...new Set([...topo.ring.nodeIds, ...(topo.nextRing?.nodeIds ?? [])])];
}

/** Node `id` with the incarnation the map records (a node back on a wiped directory refuses). */
function nodeRef(topo: Topology, id: string): NodeRef {
  const url = topo.nodeUrl(id);
  if (url === undefined) {
    throw new RingkvError(
      "unavailable",
      `Cannot list keys on node ${id}: it has no URL in cluster map epoch ${topo.map.epoch}`,
    );
  }
  const incarnation = topo.incarnationOf?.(id);
  return incarnation === undefined ? { id, url } : { id, url, incarnation };
}
