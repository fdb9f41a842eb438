/**
 * The 503s of a quorum round that ended without an answer, each saying what is known of the
 * write: not run, may have taken effect, or has taken effect under another version.
 *
 * @module
 * @example
 * ```ts
 * import { assertMatch } from "@std/assert";
 * import { finishedUnder } from "./round_errors.ts";
 * const err = finishedUnder({ op: "put", key: "k", value: "v" }, "b9");
 * assertMatch(err.message, /under version b9\. The write has taken effect/);
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import type { Version } from "../../shared/version.ts";
import type { BatchOp } from "../../shared/wire.ts";
import type { Gathered } from "./quorum.ts";
import { SecretRefusedError } from "../nodes/node_client.ts";

/** The replicas a round ran on: the key and how many owners it has. */
export interface RoundOn {
  key: string;
  owners: readonly unknown[];
}

export function noQuorum<T>(
  phase: string,
  r: RoundOn,
  need: number,
  got: Gathered<T>,
): RingkvError {
  const why = got.errors.map((e) => e.message).join("; ");
  // Replicas that all refused this proxy's cluster secret: a misconfiguration, not an outage.
  const refused = got.errors.length > 0 && got.errors.every((e) => e instanceof SecretRefusedError);
  if (refused) {
    return new RingkvError(
      "bad_gateway",
      `Cannot ${phase} key "${r.key}": ${got.errors.length} replicas refused this proxy's cluster secret, and ${need} of ${r.owners.length} are needed (${why})`,
    );
  }
  // The gather stops once a quorum is out of reach: replicas still asked are not counted as
  // failed (found by QA: "0 of 2 answered" while one was healthy and one failed).
  return new RingkvError(
    "node_unavailable",
    `Cannot ${phase} key "${r.key}": ${got.good.length} of ${r.owners.length} replicas answered when ${got.errors.length} had failed, and ${need} are needed (${why})`,
  );
}

/** The 503 of a fast write whose recovery could not tell whether it took effect. */
export function unconfirmed(op: BatchOp, why: string): RingkvError {
  return new RingkvError(
    "node_unavailable",
    `Cannot confirm the ${op.op} of key "${op.key}": its one-round-trip accept reached no majority and ${why}. The write may have taken effect; read the key, then retry it if needed (with If-Match on the version read, so that it applies at most once).`,
  );
}

/** The 503 of a fast write that its recovery finished under a new version. */
export function finishedUnder(op: BatchOp, version: Version): RingkvError {
  return new RingkvError(
    "node_unavailable",
    `Cannot confirm the ${op.op} of key "${op.key}" with a version: its one-round-trip accept reached no majority, and its recovery round finished it under version ${version}. The write has taken effect; read the key for its version.`,
  );
}

export function mayHaveApplied<T>(
  op: BatchOp,
  r: RoundOn,
  need: number,
  got: Gathered<T>,
): RingkvError {
  const why = got.errors.map((e) => e.message).join("; ") || "a newer writer got in";
  const took = `${got.good.length} of ${r.owners.length} replicas`;
  return new RingkvError(
    "node_unavailable",
    op.op === "get"
      // A read changes no value: nothing "may have taken effect" (review).
      ? `Cannot read key "${op.key}" at a majority: writing back its newest version reached ${took}, ${need} are needed (${why}). The read changed nothing; retry it.`
      : `Cannot confirm the ${op.op} of key "${op.key}": ${took} accepted it, ${need} are needed (${why}). The write may have taken effect; retry it.`,
  );
}
