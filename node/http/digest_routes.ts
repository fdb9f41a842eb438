/**
 * The node's anti-entropy route (docs/internal-api.md, docs/replication.md):
 * `POST /internal/digest {"buckets": [[[start, end], ...], ...]}` answers, per bucket (a
 * list of ranges), the number of entries (tombstones included) and a SHA-1 of their
 * sorted `(key, version)` pairs. Two replicas with the same digest for a bucket hold the
 * same versions of the same keys there; the proxy copies only buckets that differ.
 *
 * @module
 */
import type { Hono } from "hono";
import { RingkvError } from "../../shared/errors.ts";
import type { Range } from "../../shared/ring.ts";
import { INCARNATION_HEADER } from "../../shared/wire.ts";
import type { NodeEngine } from "../engine/engine.ts";
import { checkIncarnation } from "./incarnation_guard.ts";
import { isObject, readRouteJson } from "./node_request_body.ts";
import { type NodeContext, route } from "./node_context.ts";
import { parseRangesJson } from "./wire_entries.ts";

/** Most buckets in one digest call. */
export const MAX_DIGEST_BUCKETS = 1000;

/** One bucket's digest. */
export interface BucketDigest {
  count: number;
  /** Hex SHA-1 of `key \0 version \n` over the bucket's keys in code-unit order. */
  hash: string;
}

const encoder = new TextEncoder();

/** The digest of the entries in `ranges`, as they are now. */
export async function digestOf(
  engine: NodeEngine,
  ranges: readonly Range[],
): Promise<BucketDigest> {
  const keys = engine.scanKeys(ranges).sort();
  let text = "";
  let count = 0;
  for (const key of keys) {
    const entry = engine.peek(key);
    if (entry === undefined) continue;
    text += `${key}\0${entry.version}\n`;
    count++;
  }
  const sum = new Uint8Array(await crypto.subtle.digest("SHA-1", encoder.encode(text)));
  return { count, hash: [...sum].map((b) => b.toString(16).padStart(2, "0")).join("") };
}

/** Registers `POST /internal/digest`. */
export function digestRoutes(app: Hono, ctx: NodeContext): void {
  route(app, "/internal/digest", {
    POST: async (c) => {
      checkIncarnation(c.req.header(INCARNATION_HEADER), ctx, "digest");
      const body = await readRouteJson(c.req.raw, ctx.limits, "the digest request");
      const buckets = isObject(body) ? body.buckets : undefined;
      if (!Array.isArray(buckets)) {
        throw new RingkvError(
          "bad_request",
          'Cannot digest: the body must be {"buckets": [[[start, end], ...], ...]}',
        );
      }
      if (buckets.length > MAX_DIGEST_BUCKETS) {
        throw new RingkvError(
          "batch_too_large",
          `Cannot digest ${buckets.length} buckets: the limit is ${MAX_DIGEST_BUCKETS}`,
        );
      }
      const parsed = buckets.map((b) => parseRangesJson(b));
      const digests = [];
      for (const ranges of parsed) digests.push(await digestOf(ctx.engine, ranges));
      return c.json({ digests });
    },
  });
}
