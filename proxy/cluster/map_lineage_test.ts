import { assert } from "@std/assert";
import type { NodeInfo } from "../../shared/wire.ts";
import { initialMap, planAdd, withIncarnation } from "./map_transitions.ts";
import { sameCluster, sameNode } from "./map_lineage.ts";

const node = (id: string, port: number, incarnation?: string): NodeInfo => ({
  id,
  url: `http://127.0.0.1:${port}`,
  weight: 1,
  ...(incarnation === undefined ? {} : { incarnation }),
});
const ours = initialMap([node("n1", 1, "i1"), node("n2", 2, "i2"), node("n3", 3, "i3")], 3, 8);

Deno.test("sameCluster() takes this cluster's later maps: an add, a new incarnation", () => {
  const adding = planAdd(ours, node("n4", 4, "i4"), 0, 0);
  assert(sameCluster(ours, adding));
  assert(sameCluster(ours, { ...withIncarnation(ours, "n3", "i9"), epoch: 40 }));
  // One node, its directory wiped and recorded again by another proxy: the same node.
  const one = initialMap([node("n1", 1, "i1")], 1, 8);
  assert(sameCluster(one, withIncarnation(one, "n1", "i2")));
});

Deno.test("sameCluster() refuses another cluster's map, even naming a node with our id", () => {
  // Found by QA: n3 restarted on another cluster's directory (its n3 at another port).
  const theirs = { ...initialMap([node("n3", 83, "i83")], 1, 8), epoch: 67 };
  assert(!sameCluster(ours, theirs));
  // The same addresses, other directories (a cluster made again where one ran).
  const again = initialMap([node("n1", 1, "j1"), node("n2", 2, "j2")], 3, 8);
  assert(!sameCluster(ours, { ...again, epoch: 9 }));
});

Deno.test("sameNode(): one incarnation at another URL is the same node; without incarnations the URL decides", () => {
  assert(sameNode(node("n1", 1, "i1"), node("n1", 2, "i1")));
  assert(!sameNode(node("n1", 1, "i1"), node("n1", 1, "i2")));
  assert(sameNode(node("n1", 1), node("n1", 1, "i1")));
  assert(!sameNode(node("n1", 1), node("n1", 2)));
  assert(!sameNode(node("n1", 1, "i1"), node("n2", 1, "i1")));
});
