/**
 * Fake nodes for tests of cluster management: each answers `GET /health`,
 * `GET|PUT /internal/cluster` with the epoch rule of docs/internal-api.md, and the votes on
 * the next map (`POST /internal/cluster/prepare|accept`, and `GET /internal/cluster/vote` that
 * reads one; the nodes' own MapAcceptor), and nothing else. Reached through the returned
 * `fetch` at `http://<id>.test`.
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
import { type ClusterMap, type NodeInfo, sameMap } from "../../shared/wire.ts";
import type { NodeFetch } from "../../proxy/nodes/node_client.ts";
import { baseToLearn, MapAcceptor, memoryVoteStore } from "../../node/paxos/map_acceptor.ts";
import { errorBody, errorResponse, RingkvError } from "../../shared/errors.ts";

/** The fake nodes: their stored maps by host, the hosts that are down, and the fetch. */
export interface FakeMapNodes {
  maps: Map<string, ClusterMap | null>;
  down: Set<string>;
  /** The copies a node's `/health` reports, by id (0 when absent). */
  keys: Map<string, number>;
  nodes: NodeInfo[];
  fetch: NodeFetch;
  /** Each node's vote on the next map, by host. */
  votes: Map<string, MapAcceptor>;
  /** The data-directory incarnation a node's votes report, by id (none when absent). */
  incarnations: Map<string, string>;
  /** Hosts whose calls wait until {@link FakeMapNodes.release} (a paused node). */
  held: Set<string>;
  /** Answers the calls held so far with a refused connection; how many there were. */
  release(): number;
}

function answerMap(stored: ClusterMap | null, map: ClusterMap): Response | null {
  const other = stored !== null && map.epoch === stored.epoch && !sameMap(map, stored);
  if (stored && (map.epoch < stored.epoch || other)) {
    const error = { code: "stale_epoch", message: "newer", epoch: stored.epoch, map: stored };
    return Response.json({ error }, { status: 409 });
  }
  return null;
}

/** The data directory of a fake node whose `incarnations` entry is not set. */
const FAKE_INCARNATION = "ifake";

/** Creates fake nodes `http://<id>.test` that hold only a cluster map. */
export function createFakeMapNodes(ids: string[]): FakeMapNodes {
  const maps = new Map<string, ClusterMap | null>(ids.map((id) => [`${id}.test`, null]));
  const down = new Set<string>();
  const keys = new Map<string, number>();
  const incarnations = new Map<string, string>();
  const held = new Set<string>();
  let waiting: (() => void)[] = [];
  const release = () => {
    const n = waiting.length;
    for (const resolve of waiting) resolve();
    waiting = [];
    return n;
  };
  const votes = new Map(
    [...maps.keys()].map((
      host,
    ) => [host, new MapAcceptor(memoryVoteStore(), () => Promise.resolve(maps.get(host) ?? null))]),
  );
  const fetch = async (target: string, init: RequestInit): Promise<Response> => {
    const req = new Request(target, init);
    const url = new URL(target);
    if (held.has(url.host)) {
      await new Promise<void>((resolve) => waiting.push(resolve));
      throw new TypeError("connection refused");
    }
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
    if (url.pathname === "/internal/cluster/vote") {
      const vote = await votes.get(url.host)!.peek();
      return Response.json({ vote, id: url.host.split(".")[0]! });
    }
    const step = url.pathname.match(/^\/internal\/cluster\/(prepare|accept)$/)?.[1];
    if (step !== undefined) {
      const id = url.host.split(".")[0]!;
      const voter = { id, ...(incarnations.has(id) ? { incarnation: incarnations.get(id) } : {}) };
      const body = await req.json();
      // The base a vote carries is learnt first, by the nodes' own check.
      const self = { id, incarnation: incarnations.get(id) ?? FAKE_INCARNATION };
      try {
        const base = body.base ? baseToLearn(body.base, body.epoch, self, stored) : null;
        if (base !== null) maps.set(url.host, base);
      } catch (err) {
        if (err instanceof RingkvError) return errorResponse(err);
        throw err;
      }
      return await vote(votes.get(url.host)!, step, body, voter);
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
  return { maps, down, keys, fetch, nodes, votes, incarnations, held, release };
}

/** A vote call, answered as node/http/internal_routes.ts does. */
async function vote(
  acceptor: MapAcceptor,
  step: string,
  body: { epoch: number; ballot: string; map?: ClusterMap },
  voter: { id: string; incarnation?: string },
): Promise<Response> {
  try {
    if (step === "prepare") {
      return Response.json({ accepted: await acceptor.prepare(body.epoch, body.ballot), ...voter });
    }
    await acceptor.accept(body.epoch, body.ballot, body.map!);
    return Response.json({ epoch: body.epoch, ...voter });
  } catch (err) {
    if (!(err instanceof RingkvError)) throw err;
    if (err.code !== "stale_epoch") return errorResponse(err);
    // A node's stale_epoch body has the epoch and map at the top (node/http/error_answer.ts).
    const { map, ...extra } = err.extra;
    const body = { ...errorBody(err.code, err.message, extra), epoch: extra.epoch, map };
    return Response.json(body, { status: 409 });
  }
}
