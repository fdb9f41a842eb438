/**
 * Whether a URL given to `POST /cluster/nodes` may be sent the cluster secret: only once it has
 * proved it holds the same one (its answer to `GET /health?challenge=`). A mistyped URL, or a
 * server someone with the admin token points the proxy at, would otherwise receive the secret
 * with the add's first call, and with it every node's data (docs/security.md, "Adding a node").
 *
 * @module
 * @example
 * ```ts
 * import { assertThrows } from "@std/assert";
 * import { refuseUnproven } from "./proof_check.ts";
 * refuseUnproven("http://10.0.0.4:7001", "same"); // it proved the secret: fine
 * assertThrows(() => refuseUnproven("http://10.0.0.4:7001", "unanswered"));
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import type { SecretCheck } from "../nodes/node_admin.ts";

const NOTHING_SENT = "nothing was sent to it with the cluster secret";
const SAME_SECRET = "start it with the cluster secret of the other nodes (RINGKV_CLUSTER_SECRET)";

/** Throws unless `check` (the node's answer to a challenge) is `same`; the error names `url`. */
export function refuseUnproven(url: string, check: SecretCheck): void {
  const cannot = `Cannot add node ${url}`;
  switch (check) {
    case "same":
      return;
    case "other":
      throw new RingkvError(
        "conflict",
        `${cannot}: it refuses this cluster's secret: its answer to GET /health?challenge= ` +
          `proves another cluster secret than this proxy's (${NOTHING_SENT}); ${SAME_SECRET}, ` +
          `or check that ${url} is the node you meant`,
      );
    case "none":
      throw new RingkvError(
        "conflict",
        `${cannot}: it has no cluster secret (its GET /health?challenge= says so), so it ` +
          `cannot prove it belongs to this cluster and would take calls from anyone ` +
          `(${NOTHING_SENT}); ${SAME_SECRET}`,
      );
    case "unanswered":
      throw new RingkvError(
        "bad_gateway",
        `${cannot}: it did not prove it holds this cluster's secret (its GET /health ` +
          `answered without the proof a challenge asks for: not a ringkv node, or one older ` +
          `than this proxy) (${NOTHING_SENT}); check that ${url} is a ringkv node of this ` +
          `version, and ${SAME_SECRET}`,
      );
    case "unwanted":
      throw new RingkvError(
        "conflict",
        `${cannot}: it refuses this cluster's secret: it has a cluster secret and this ` +
          "proxy none, so it would refuse every call; give this proxy and every node the same " +
          "one (RINGKV_CLUSTER_SECRET), or start this node without one",
      );
  }
}
