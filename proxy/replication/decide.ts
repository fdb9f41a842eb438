/**
 * What a single-key operation does to the newest entry a majority holds (pure): the answer and
 * the entry to accept, as a CASPaxos round applies it (docs/replication.md).
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { decide, newest } from "./decide.ts";
 * const at = { key: "k", point: 1 };
 * const current = newest([{ k: "k", v: "a", ver: "b1", h: 1 }, null]);
 * const put = decide({ op: "put", key: "k", value: "b", ifMatch: "b0" }, current, "b2", at, 0);
 * assertEquals(put.result, { status: 412, version: "b1" });
 * assertEquals(put.entry, undefined);
 * ```
 */
import { isExpired } from "../../shared/expiry.ts";
import type { Point } from "../../shared/ring.ts";
import type { Version } from "../../shared/version.ts";
import {
  type BatchOp,
  type BatchResult,
  DEFAULT_CONTENT_TYPE,
  type WireEntry,
} from "../../shared/wire.ts";

/** Where a decision's entry goes: the key and its ring point. */
export interface KeyAt {
  key: string;
  point: Point;
}

/** The newest of some entries (null: none). */
export function newest(entries: readonly (WireEntry | null)[]): WireEntry | null {
  let best: WireEntry | null = null;
  for (const e of entries) if (e !== null && (best === null || e.ver > best.ver)) best = e;
  return best;
}

export function readResult(e: WireEntry | null): BatchResult {
  if (e === null) return { status: 404 };
  if (e.v === null) return { status: 404, version: e.ver };
  return { status: 200, version: e.ver, value: e.v, contentType: e.t ?? DEFAULT_CONTENT_TYPE };
}

/**
 * What `op` does to `current` (the newest entry of a majority): the answer and the new entry.
 * An entry whose TTL ran out by `now` (this proxy's clock) counts as absent.
 */
export function decide(
  op: BatchOp,
  current: WireEntry | null,
  ballot: Version,
  r: KeyAt,
  now: number,
): { result: BatchResult; entry?: WireEntry } {
  const expired = current !== null && current.v !== null && isExpired(current.t, now);
  if (op.op === "delete" && op.expire) return expireDecision(op, current, expired, ballot, r);
  const live = current !== null && current.v !== null && !expired;
  const failed = { result: live ? { status: 412, version: current!.ver } : { status: 412 } };
  if (op.ifMatch !== undefined && (!live || current!.ver !== op.ifMatch)) return failed;
  if (op.ifNoneMatch === "*" && live) return failed;
  if (op.op === "get") return { result: readResult(current) };
  if (op.op === "delete") {
    if (!live) {
      return { result: current === null ? { status: 404 } : { status: 404, version: current.ver } };
    }
    return {
      result: { status: 204, version: ballot },
      entry: { k: r.key, v: null, ver: ballot, h: r.point },
    };
  }
  const entry = {
    k: r.key,
    v: op.value ?? "",
    t: op.contentType ?? DEFAULT_CONTENT_TYPE,
    ver: ballot,
    h: r.point,
  };
  return { result: { status: live ? 200 : 201, version: ballot }, entry };
}

/** The TTL reaper's delete: a tombstone only if the entry expired and still has `ifMatch`. */
function expireDecision(
  op: BatchOp,
  current: WireEntry | null,
  expired: boolean,
  ballot: Version,
  r: KeyAt,
): { result: BatchResult; entry?: WireEntry } {
  if (!expired || current!.ver !== op.ifMatch) {
    return { result: current === null ? { status: 412 } : { status: 412, version: current.ver } };
  }
  return {
    result: { status: 204, version: ballot },
    entry: { k: r.key, v: null, ver: ballot, h: r.point },
  };
}

export function restamp(e: WireEntry, ballot: Version): WireEntry {
  return { ...e, ver: ballot };
}

/** A tombstone at `ballot` where the quorum holds nothing, else `best` re-stamped. */
export function killer(r: KeyAt, best: WireEntry | null, ballot: Version): WireEntry {
  return best === null ? { k: r.key, v: null, ver: ballot, h: r.point } : restamp(best, ballot);
}
