/**
 * Fake nodes for tests of cluster management: each answers `GET /health` and
 * `GET|PUT /internal/cluster` with the epoch rule of docs/internal-api.md, and nothing
 * else. Reached through the returned `fetch` at `http://<id>.test`.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { createFakeMapNodes } from "./fake_map_nodes.ts";
 * const { fetch } = createFakeMapNodes(["a"]);
 * const res = await fetch("http://a.test/health", {});
 * assert((await res.json()).id === "a");
 * ```
 */
import type { ClusterMap, NodeInfo } from "../../shared/wire.ts";
import type { NodeFetch } from "../../proxy/nodes/node_client.ts";

/** The fake nodes: their stored maps by host, the hosts that are down, and the fetch. */
export interface FakeMapNodes {
  maps: Map<string, ClusterMap | null>;
  down: Set<string>;
  /** The copies a node's `/health` reports, by id (0 when absent). */
  keys: Map<string, number>;
  nodes: NodeInfo[];
  fetch: NodeFetch;
}

function answerMap(stored: ClusterMap | null, map: ClusterMap): Response | null {
  if (stored && map.epoch < stored.epoch) {
    const error = { code: "stale_epoch", message: "newer", epoch: stored.epoch, map: stored };
    return Response.json({ error }, { status: 409 });
  }
  return null;
}

/** Creates fake nodes `http://<id>.test` that hold only a cluster map. */
export function createFakeMapNodes(ids: string[]): FakeMapNodes {
  const maps = new Map<string, ClusterMap | null>(ids.map((id) => [`${id}.test`, null]));
  const down = new Set<string>();
  const keys = new Map<string, number>();
  const fetch = async (target: string, init: RequestInit): Promise<Response> => {
    const req = new Request(target, init);
    const url = new URL(target);
    if (!maps.has(url.host) || down.has(url.host)) throw new TypeError("connection refused");
    const stored = maps.get(url.host)!;
    if (url.pathname === "/health") {
      const id = url.host.split(".")[0]!;
      return Response.json({
        status: "ok",
        id,
        epoch: stored?.epoch ?? 0,
        keys: keys.get(id) ?? 0,
      });
    }
    if (url.pathname !== "/internal/cluster") return new Response(null, { status: 404 });
    if (req.method === "GET") {
      if (stored) return Response.json(stored);
      return Response.json({ error: { code: "not_found", message: "no map" } }, { status: 404 });
    }
    const map = await req.json() as ClusterMap;
    const refused = answerMap(stored, map);
    if (refused) return refused;
    maps.set(url.host, map);
    return Response.json({ epoch: map.epoch });
  };
  const nodes = ids.map((id) => ({ id, url: `http://${id}.test`, weight: 1 }));
  return { maps, down, keys, fetch, nodes };
}
