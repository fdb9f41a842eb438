import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import { Ring } from "../../shared/ring.ts";
import { estimateKeys, movingShare, replicaShares } from "./key_counts.ts";

const members = (ids: string[]) => ids.map((id) => ({ id, weight: 1 }));

Deno.test("replicaShares() sum to min(replicas, nodes): each point has that many copies", async () => {
  const ring = await Ring.build(members(["a", "b", "c", "d"]), 64);
  for (const r of [1, 2, 3, 4, 5]) {
    const sum = [...replicaShares(ring, r).values()].reduce((x, y) => x + y, 0);
    assertAlmostEquals(sum, Math.min(r, 4), 1e-9);
  }
});

Deno.test("estimateKeys() counts 3 keys on 3 replicas as 3, also with a node down; copies are not keys", async () => {
  const ring = await Ring.build(members(["a", "b", "c"]), 64);
  assertEquals(estimateKeys(ring, 3, new Map([["a", 3], ["b", 3], ["c", 3]])), 3);
  assertEquals(estimateKeys(ring, 3, new Map([["a", 3], ["b", null], ["c", 3]])), 3);
  assertEquals(estimateKeys(ring, 3, new Map([["a", null], ["b", null], ["c", null]])), null);
  const one = Ring.fromPoints([{ point: 0, nodeId: "a" }, { point: 2 ** 31, nodeId: "b" }]);
  // One replica, halves of the space: a's 10 keys and b's 30 are 40 keys.
  assertEquals(estimateKeys(one, 1, new Map([["a", 10], ["b", 30]])), 40);
});

Deno.test("movingShare() of adding a fourth node: about 1/4 of keys with 1 replica, 3/4 with 3", async () => {
  const before = await Ring.build(members(["a", "b", "c"]), 256);
  const after = await Ring.build(members(["a", "b", "c", "d"]), 256);
  assertAlmostEquals(movingShare(before, after, 1), 0.25, 0.05);
  assertAlmostEquals(movingShare(before, after, 3), 0.75, 0.05);
  assertEquals(movingShare(before, before, 3), 0);
  assert(movingShare(after, before, 3) <= 1, "a removal gives each moved key one new owner");
});
