import { assertEquals } from "@std/assert";
import type { ClusterMap, NodeInfo } from "../../shared/wire.ts";
import { initialMap, planAdd } from "../cluster/map_transitions.ts";
import type { Topology, TopologySource } from "../cluster/topology.ts";
import { memberAtHost } from "./proxy_metrics.ts";

const node = (id: string, port: number): NodeInfo => ({
  id,
  url: `http://127.0.0.1:${port}`,
  weight: 1,
});

/** A source whose map the test swaps; only `map` is read. */
function sourceOf(first: ClusterMap) {
  let map = first;
  const source = {
    current: () => ({ map }) as Topology,
    refreshFrom: () => Promise.resolve(),
  } as unknown as TopologySource;
  return { source, swap: (next: ClusterMap) => (map = next) };
}

Deno.test("memberAtHost() names the member at a host of the current map, a joining one included, and follows a new map", () => {
  const stable = initialMap([node("n1", 7001), node("n2", 7002)], 1, 8);
  const { source, swap } = sourceOf(stable);
  const at = memberAtHost(source);
  assertEquals([at("127.0.0.1:7001"), at("127.0.0.1:7002"), at("127.0.0.1:7003")], [
    "n1",
    "n2",
    undefined,
  ]);
  // An add under way: the joining node is named from the map's next ring.
  swap(planAdd(stable, node("n3", 7003), 0, 0));
  assertEquals(at("127.0.0.1:7003"), "n3");
  // n1 moved to another port: its old address is no member's any more.
  swap(initialMap([node("n1", 7101), node("n2", 7002)], 1, 8));
  assertEquals([at("127.0.0.1:7001"), at("127.0.0.1:7101")], [undefined, "n1"]);
});
