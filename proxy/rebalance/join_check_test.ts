import { assertEquals, assertThrows } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import type { ClusterMap, NodeInfo } from "../../shared/wire.ts";
import {
  initialMap,
  planAdd,
  planRemove,
  toCleanup,
  toStable,
} from "../cluster/map_transitions.ts";
import { refuseUnjoinable } from "./join_check.ts";

const URL = "http://10.0.0.9:7001";
const info = (id: string): NodeInfo => ({ id, url: `http://${id}.test`, weight: 1 });
const other = initialMap([info("x1"), info("x2")], 2, 8);
/** This cluster, for the tests where the node's map is not one of this cluster's. */
const mine = initialMap([info("n1"), info("n2")], 2, 8);

function refusal(
  health: { id: string; keys: number; tombstones?: number },
  map: ClusterMap | null,
  ours = mine,
): RingkvError {
  const err = assertThrows(() => refuseUnjoinable(URL, health, map, ours), RingkvError);
  assertEquals(err.code, "conflict");
  return err;
}

Deno.test("refuseUnjoinable() lets a fresh node join: no map, no keys", () => {
  refuseUnjoinable(URL, { id: "n4", keys: 0 }, null, mine);
});

Deno.test("refuseUnjoinable() refuses a member of another cluster, naming its map", () => {
  const err = refusal({ id: "x1", keys: 0 }, other);
  assertEquals(
    err.message,
    `Cannot add node ${URL}: it is a member of a cluster (its map: epoch 1, nodes x1, x2); ` +
      "start it on a new, empty --data directory (or wipe its directory) and add it again",
  );
});

Deno.test("refuseUnjoinable() refuses a node force-removed from this cluster while down, saying so", () => {
  // QA: `kv add` of such a node back said "it is a member of a cluster", as if another one.
  const three = initialMap([info("n1"), info("n2"), info("n3")], 3, 8);
  const ours = toStable(toCleanup(planRemove(three, "n3", 1, 0, true), 0));
  const err = refusal({ id: "n3", keys: 2 }, three, ours);
  assertEquals(
    err.message,
    `Cannot add node ${URL}: it is a member of this cluster from before it was removed while ` +
      "it did not answer (never drained) (its map: epoch 1, nodes n1, n2, n3); " +
      "start it on a new, empty --data directory (or wipe its directory) and add it again",
  );
});

Deno.test("refuseUnjoinable() refuses a node another cluster is adding", () => {
  refusal({ id: "x3", keys: 0 }, planAdd(other, info("x3"), 1, 0));
});

Deno.test("refuseUnjoinable() refuses a node that holds keys, with or without a map", () => {
  const err = refusal({ id: "n4", keys: 3 }, null);
  assertEquals(
    err.message,
    `Cannot add node ${URL}: it holds 3 key(s), which would mix into this cluster; ` +
      "start it on a new, empty --data directory (or wipe its directory) and add it again",
  );
  const removed = toCleanup(planRemove(other, "x2", 1, 0, false, true), 0);
  refusal({ id: "x2", keys: 1 }, removed);
});

Deno.test("refuseUnjoinable() refuses a node that holds only deleted keys (a newer tombstone would win the copy)", () => {
  const err = refusal({ id: "n4", keys: 0, tombstones: 2 }, null);
  assertEquals(
    err.message,
    `Cannot add node ${URL}: it holds 0 key(s) and 2 deleted key(s), which would mix into this cluster; ` +
      "start it on a new, empty --data directory (or wipe its directory) and add it again",
  );
});

Deno.test("refuseUnjoinable() lets a drained node join again: its map is its own removal", () => {
  const copying = planRemove(other, "x2", 1, 0, false, true);
  const after = toStable(toCleanup(copying, 0));
  refuseUnjoinable(URL, { id: "x2", keys: 0 }, copying, after);
  refuseUnjoinable(URL, { id: "x2", keys: 0 }, toCleanup(copying, 0), after);
  // The removal of another node leaves it a member.
  refusal({ id: "x1", keys: 0 }, toCleanup(copying, 0), after);
});

Deno.test("refuseUnjoinable() refuses a node drained from another cluster, naming both maps", () => {
  // Its map (epoch 3) is newer than ours (epoch 1): pushed ours, it would answer with its own,
  // which the proxy adopts (found by QA: the proxy then served the other cluster).
  const drained = toCleanup(planRemove(other, "x2", 1, 0, false, true), 0);
  const err = refusal({ id: "x2", keys: 0 }, drained);
  assertEquals(
    err.message,
    `Cannot add node ${URL}: it was drained from another cluster (its map: epoch 3, nodes x1, x2; ` +
      "this cluster's: epoch 1); " +
      "start it on a new, empty --data directory (or wipe its directory) and add it again",
  );
  // An older map of another cluster: no node in common.
  refusal({ id: "x2", keys: 0 }, drained, { ...mine, epoch: 9 });
});

Deno.test("refuseUnjoinable() tells clusters at the same addresses apart by incarnation", () => {
  const at = (incarnation: string) => (id: string) => ({ ...info(id), incarnation });
  const old = initialMap(["n1", "n2", "n3"].map(at("i-old")), 2, 8);
  const drained = toCleanup(planRemove(old, "n3", 1, 0, false, true), 0);
  const now = { ...initialMap(["n1", "n2"].map(at("i-new")), 2, 8), epoch: 9 };
  refusal({ id: "n3", keys: 0 }, drained, now);
  refuseUnjoinable(URL, { id: "n3", keys: 0 }, drained, { ...now, nodes: old.nodes });
});

Deno.test("refuseUnjoinable() lets a drained node of this cluster join again after its peers moved to other URLs", () => {
  // Found by review: n1 and n2 restarted on other ports (same --data, same incarnations).
  const at = (port: number) => (id: string) => ({
    ...info(id),
    url: `http://h:${port}${id}`,
    incarnation: `i-${id}`,
  });
  const before = initialMap(["n1", "n2", "n3"].map(at(70)), 1, 8);
  const drained = toCleanup(planRemove(before, "n3", 1, 0, false, true), 0);
  const moved = { ...toStable(drained), epoch: 7, nodes: ["n1", "n2"].map(at(80)) };
  refuseUnjoinable(URL, { id: "n3", keys: 0 }, drained, moved);
  // Without incarnations the URLs decide: then it is refused (a wipe lets it join).
  const bare = (m: ClusterMap) => ({ ...m, nodes: m.nodes.map(({ incarnation: _, ...n }) => n) });
  refusal({ id: "n3", keys: 0 }, bare(drained), bare(moved));
});

Deno.test("refuseUnjoinable() lets the joining node of a cancelled add of this cluster join again, to be emptied first; not another cluster's", () => {
  const adding = planAdd(mine, info("n3"), 0, 0);
  const cancelled = { ...adding, epoch: 3, rebalancing: null };
  assertEquals(refuseUnjoinable(URL, { id: "n3", keys: 40 }, adding, cancelled), true);
  assertEquals(refuseUnjoinable(URL, { id: "n4", keys: 0 }, null, cancelled), false);
  // The add still running (ours is the same map) or finished (n3 a member): refused.
  refusal({ id: "n3", keys: 40 }, adding, adding);
  refusal({ id: "n3", keys: 40 }, adding, toStable(toCleanup(adding, 0)));
  // Another cluster's add of a node with that id: refused.
  const theirs = planAdd(other, info("n3"), 0, 0);
  refusal({ id: "n3", keys: 0 }, theirs, cancelled);
  // It got the cancel's map, and its proxy died before dropping its keys (review): emptied.
  assertEquals(refuseUnjoinable(URL, { id: "n3", keys: 9656 }, cancelled, cancelled), true);
  assertEquals(refuseUnjoinable(URL, { id: "n3", keys: 9656 }, mine, cancelled), true);
  // Another cluster's map that does not count it: refused.
  refusal({ id: "n3", keys: 10 }, other, cancelled);
});
