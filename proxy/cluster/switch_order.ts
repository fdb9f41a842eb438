/**
 * The order a map that ends a range copy (phase `cleanup`) reaches the nodes. From that map on,
 * moved ranges are served by their new owners; until an old owner holds it, a proxy still on the
 * copying map reads the old owner's copy, which misses what the new owners acknowledged since.
 * So the map goes to every other node first and to the nodes that gain ranges last, and a node
 * whose map copies ranges holds a request routed by a later map until it has that map
 * (node/node_map.ts): no new owner serves the new map before every old owner that answers
 * refuses the copying one (found by a read-only review: a write acknowledged through the
 * rebalancing proxy, then a read through a proxy one map behind answered the value before it).
 *
 * @module
 */
import { diffRings, Ring } from "../../shared/ring.ts";
import type { ClusterMap } from "../../shared/wire.ts";
import { previousNodes } from "./map_transitions.ts";

/**
 * The ids of the nodes that `map` gives ranges they did not hold, when it ends a copy
 * (phase `cleanup`); empty for every other map.
 */
export async function gainersOf(map: ClusterMap): Promise<Set<string>> {
  const rb = map.rebalancing;
  if (rb?.phase !== "cleanup") return new Set();
  const vnodes = map.vnodes > 0 ? map.vnodes : undefined;
  const [before, after] = await Promise.all([
    Ring.build(previousNodes(map), vnodes),
    Ring.build(map.nodes, vnodes),
  ]);
  const gainers = new Set<string>();
  for (const move of diffRings(before, after, Math.max(1, map.replicas))) {
    for (const id of move.to) if (!move.from.includes(id)) gainers.add(id);
  }
  return gainers;
}

/**
 * `urls` of `map`'s nodes in the order they get it: those that gain no range, then those that
 * do (each group all at once); one group for a map that ends no copy.
 */
export async function pushOrder(map: ClusterMap, urls: readonly string[]): Promise<string[][]> {
  const gainers = await gainersOf(map);
  if (gainers.size === 0) return [[...urls]];
  const ids = new Map<string, string>();
  for (const n of [...previousNodes(map), ...map.nodes]) ids.set(n.url, n.id);
  const last = urls.filter((url) => gainers.has(ids.get(url) ?? ""));
  const first = urls.filter((url) => !last.includes(url));
  return [first, last].filter((group) => group.length > 0);
}
