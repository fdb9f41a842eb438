/**
 * Whether a joining node takes the keys and values this cluster holds. A node started with a
 * smaller `--max-value-bytes` or `--max-key-bytes` refuses the range copy's ingest (413) at
 * every retry: its add would never end, and writes of large values to the keys moving to it
 * would answer 503 until it did.
 *
 * @module
 * @example
 * ```ts
 * import { assertThrows } from "@std/assert";
 * import { refuseSmallerLimits } from "./limits_check.ts";
 * const ours = { maxKeyBytes: 1024, maxValueBytes: 1048576 };
 * refuseSmallerLimits("http://10.0.0.4:7001", ours, ours); // the same limits: fine
 * const small = { maxKeyBytes: 1024, maxValueBytes: 1000 };
 * assertThrows(() => refuseSmallerLimits("http://10.0.0.4:7001", small, ours));
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import type { NodeLimits } from "../nodes/node_admin.ts";

/**
 * The largest key and value this cluster can hold: what this proxy takes (`ours`), but no more
 * than what its largest-limited member takes (a value is stored only where a node took it).
 * A member that does not say (down, or from before nodes said) leaves `ours`.
 */
export function clusterLimits(
  ours: NodeLimits,
  members: readonly (NodeLimits | undefined)[],
): NodeLimits {
  if (members.length === 0 || members.some((m) => m === undefined)) return ours;
  const known = members as readonly NodeLimits[];
  return {
    maxValueBytes: Math.min(ours.maxValueBytes, Math.max(...known.map((m) => m.maxValueBytes))),
    maxKeyBytes: Math.min(ours.maxKeyBytes, Math.max(...known.map((m) => m.maxKeyBytes))),
  };
}

/**
 * Throws 409 `conflict` when the node at `url` takes shorter keys or smaller values than
 * `ours` (the cluster's, {@link clusterLimits}); `theirs` undefined (a node that does not
 * say) passes.
 */
export function refuseSmallerLimits(
  url: string,
  theirs: NodeLimits | undefined,
  ours: NodeLimits,
): void {
  if (theirs === undefined) return;
  const flags = [
    ["--max-value-bytes", "values up to", theirs.maxValueBytes, ours.maxValueBytes],
    ["--max-key-bytes", "keys up to", theirs.maxKeyBytes, ours.maxKeyBytes],
  ] as const;
  for (const [flag, what, node, proxy] of flags) {
    if (node >= proxy) continue;
    throw new RingkvError(
      "conflict",
      `Cannot add node ${url}: it takes ${what} ${node} bytes and this cluster ${proxy}, so the copy of larger ones to it would be refused and the add would never end; start it with ${flag} ${proxy}`,
    );
  }
}
