/**
 * The whole proxy app as proxy/main.ts serves it: the data path ({@link createProxyApp})
 * with the admin routes (cluster, ring) and the ops routes (metrics, stats) mounted. Tests
 * that want the production app build it here too, so they cannot drift from main.ts.
 *
 * @module
 */
import { createAdminRoutes } from "./admin_routes.ts";
import { createOpsRoutes, type OpsDeps } from "./ops_routes.ts";
import { createProxyApp, type ProxyApp, type ProxyDeps } from "./proxy_app.ts";
import type { ProxyMetrics } from "./proxy_metrics.ts";
import type { ClusterState } from "../cluster/map_view.ts";
import type { NodeAdmin } from "../nodes/node_admin.ts";
import type { NodeFetch } from "../nodes/node_client.ts";
import type { Rebalancer } from "../rebalance/rebalancer.ts";

/** What {@link assembleProxy} needs: the data path's deps plus the cluster's management parts. */
export interface AssembleDeps extends Omit<ProxyDeps, "topology" | "admin" | "metrics"> {
  state: ClusterState;
  admin: NodeAdmin;
  rebalancer: Rebalancer;
  metrics: ProxyMetrics;
  /** Without one, every admin call is refused (403). */
  adminToken?: string;
  /** The fetch of the ops routes' node scrapes (main.ts: counted in the metrics); default `fetch`. */
  adminFetch?: NodeFetch;
  startedAt?: OpsDeps["startedAt"];
  memory?: OpsDeps["memory"];
}

/** Builds the proxy app with its admin and ops routes. */
export function assembleProxy(deps: AssembleDeps): ProxyApp {
  const { state, rebalancer, admin, adminToken, metrics, limits } = deps;
  const adminApp = createAdminRoutes({
    state,
    rebalancer,
    admin,
    adminToken,
    bodyTimeoutMs: limits.bodyTimeoutMs,
    replication: deps.replication,
  });
  adminApp.route(
    "/",
    createOpsRoutes({
      state,
      rebalancer,
      metrics,
      fetch: deps.adminFetch ?? deps.fetch,
      timeoutMs: deps.timeoutMs,
      clusterSecret: deps.clusterSecret,
      adminToken,
      maxKeyBytes: limits.maxKeyBytes,
      startedAt: deps.startedAt,
      memory: deps.memory,
      replication: deps.replication,
    }),
  );
  return createProxyApp({ ...deps, topology: state, admin: adminApp, metrics });
}
