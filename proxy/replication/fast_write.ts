/**
 * The pure part of the one-round-trip write's failure handling (docs/replication.md, "One round
 * trip for a proxy's next write"): how each replica answered the fast accept, whether the entry
 * can be on none of them, and what the recovery round's prepare quorum says about it.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { nowhere, recoveryCase } from "./fast_write.ts";
 * assertEquals(nowhere(["refused", "stale", "refused"]), true);
 * assertEquals(nowhere(["refused", "failed", "refused"]), false);
 * const e = (ver: string) => ({ k: "k", v: "", ver, h: 1 });
 * assertEquals(recoveryCase(e("b0"), "b0"), "ours");
 * assertEquals(recoveryCase(e("b"), "b0"), "older");
 * assertEquals(recoveryCase(e("c"), "b0"), "newer");
 * ```
 */
import type { Version } from "../../shared/version.ts";
import type { BatchOp, BatchResult, WireEntry } from "../../shared/wire.ts";
import { decide, type KeyAt, killer, restamp } from "./decide.ts";
import { StaleEpochError } from "../nodes/node_client.ts";
import type { WireVote } from "../nodes/paxos_client.ts";

/**
 * How one replica answered an accept: stored it, refused it (a higher promise or version),
 * refused the whole call for a newer cluster map (nothing stored), or no answer (unknown).
 */
export type AcceptAnswer = "accepted" | "refused" | "stale" | "failed";

/** The {@link AcceptAnswer} of one accept call, once it settles. */
export function answerOf(call: Promise<WireVote>): Promise<AcceptAnswer> {
  return call.then(
    (v) => v.ok ? "accepted" : "refused",
    (err) => err instanceof StaleEpochError ? "stale" : "failed",
  );
}

/** Each called replica's answer to one accept, by node id, settled when its call is. */
export type AcceptAnswers = Map<string, Promise<AcceptAnswer>>;

/** The answers of {@link AcceptAnswers} once every call settled. */
export async function settled(answers: AcceptAnswers): Promise<Map<string, AcceptAnswer>> {
  const out = new Map<string, AcceptAnswer>();
  for (const [id, answer] of answers) out.set(id, await answer);
  return out;
}

/**
 * Whether a fast accept at `fast` is on no owner and never will be, from each owner's answer to
 * it and what a recovery prepare's promises held (by node id): an owner that refused it refuses
 * it for good (its promise or version only grows); any other must have answered the recovery's
 * prepare, at a ballot above `fast` (promised, or refused for a higher one), holding an entry
 * older than `fast`: it never stored it and refuses it from now on. An owner that stored it,
 * even under a newer entry since, fails the second test.
 */
export function neverStored(
  fast: Version,
  owners: readonly string[],
  answers: ReadonlyMap<string, AcceptAnswer>,
  promised: ReadonlyMap<string, WireEntry | null>,
): boolean {
  return owners.every((id) => {
    const answer = answers.get(id);
    if (answer === "refused") return true;
    if (answer === "accepted" || answer === "stale") return false;
    const held = promised.get(id);
    return held === null || (held !== undefined && held.ver < fast);
  });
}

/**
 * Whether an accept is on no replica: every replica it was sent to answered, and none stored
 * it. Then it can never be chosen (acceptors only refuse more later) and the write may run again.
 */
export function nowhere(answers: readonly AcceptAnswer[]): boolean {
  return answers.every((a) => a === "refused" || a === "stale");
}

/**
 * What the newest entry of a recovery round's prepare quorum says of the fast accept at `fast`:
 * - `ours`: it is that accept, so the write is in (finish it under the round's ballot);
 * - `older`: the quorum never stored it; once the round's ballot is decided it never can be
 *   chosen (every later quorum meets that majority): the fast decision is accepted at the round's
 *   ballot when that newest is the base, else the operation is applied afresh;
 * - `newer`: another writer's entry is newer; it may carry the fast accept (a read's repair
 *   re-stamps it) or not (the accept was refused where that entry is): unknown, unless
 *   {@link neverStored} says the accept is on no owner (then the write runs as a full round).
 */
export function recoveryCase(best: WireEntry | null, fast: Version): "ours" | "older" | "newer" {
  if (best === null || best.ver < fast) return "older";
  return best.ver === fast ? "ours" : "newer";
}

/**
 * The outcomes of one-round-trip writes that the proxy counts, with what each means
 * (`ringkv_proxy_fast_writes_total{outcome}`, docs/operations.md). A write reaches one of
 * `decided`, `refused`, `stale`, `condition`, `capped`, `floored`, `lagging`, `expiring`, `purgeable` or
 * `recovered`; a recovered one then
 * `repaired`, or rounds of `ours`/`older`/`newer` (then perhaps `nowhere`), ending in `restamped` or `unconfirmed` when
 * it is answered with a 503.
 */
export const FAST_OUTCOMES = {
  decided: "the fast accept was taken by a majority: one round trip",
  refused: "refused by every replica (a newer promise): the write ran as a full round",
  stale: "refused by every replica for a newer cluster map: retried under it",
  condition: "its condition failed, or a DELETE found nothing, on the record: a full round",
  capped: "the writer id was full (19 fast writes in a row): a full round",
  lagging: "an owner was not up or had hints pending in this proxy's view: a full round",
  floored:
    "an owner's restart floor (/health promiseFloor) is above the fast ballot, or unknown since a call to it failed: a full round",
  expiring: "the key's TTL ends within the margin (FAST_EXPIRY_MARGIN_MS): a full round",
  purgeable:
    "the record is a tombstone decided 30 s ago or more, half the shortest tombstone grace (it may be purged): a full round",
  recovered: "on no known majority: sent to recovery",
  repaired: "recovery: a read quorum's newest was the fast entry, resent to a majority",
  ours: "recovery round: the quorum's newest entry was the fast accept",
  older: "recovery round: the quorum's newest was older, the fast decision accepted at its ballot",
  newer:
    "recovery round: another writer's entry was newer (503 'may have taken effect' or nowhere)",
  nowhere:
    "recovery round: newer, but every owner refused the fast accept or never stored it: a full round",
  restamped: "recovery re-stamped the fast entry: 503 'has taken effect', without a version",
  unconfirmed: "every 503 'may have taken effect' of a recovery (newer ones included)",
} as const;

/** A count per {@link FAST_OUTCOMES} entry. */
export type FastCounts = Record<keyof typeof FAST_OUTCOMES, number>;

/** All counts at zero. */
export function newFastCounts(): FastCounts {
  const out = {} as FastCounts;
  for (const k of Object.keys(FAST_OUTCOMES) as (keyof FastCounts)[]) out[k] = 0;
  return out;
}

/**
 * A fast write's decision: its answer and entry at the fast ballot, the base version, and how
 * each owner answered the fast accept.
 */
export interface FastDecision {
  result: BatchResult;
  entry: WireEntry;
  base: Version;
  answered: ReadonlyMap<string, AcceptAnswer>;
}

/**
 * What a recovery round at `ballot` accepts, and the write's answer once that is decided
 * (undefined: the fast entry re-stamped, answered 503 "has taken effect"). When the quorum's
 * newest is the base `b`, nothing was chosen between `b` and `ballot`: the fast decision, made
 * while `b` was current, is accepted re-stamped and answered at `ballot` (so a watcher sees the
 * fast entry and this one with one value, never a second outcome of the same write).
 */
export function recoveryPlan(
  kind: "ours" | "older",
  op: BatchOp,
  best: WireEntry | null,
  mine: FastDecision,
  ballot: Version,
  r: KeyAt,
  now: number,
): { entry: WireEntry; answer?: BatchResult; restamp: boolean } {
  if (kind === "ours") return { entry: restamp(best!, ballot), restamp: true };
  if (best?.ver === mine.base) {
    const answer = { ...mine.result, version: ballot };
    return { entry: restamp(mine.entry, ballot), answer, restamp: false };
  }
  const next = decide(op, best, ballot, r, now);
  if (next.entry !== undefined) return { entry: next.entry, answer: next.result, restamp: false };
  const answer = next.result.status !== 404 ? { ...next.result, version: ballot } : next.result;
  return { entry: killer(r, best, ballot), answer, restamp: true };
}
