import { assertEquals, assertThrows } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import type { ClusterMap, NodeInfo } from "../../shared/wire.ts";
import { initialMap, planAdd, planRemove, toCleanup } from "../cluster/map_transitions.ts";
import { refuseUnjoinable } from "./join_check.ts";

const URL = "http://10.0.0.9:7001";
const info = (id: string): NodeInfo => ({ id, url: `http://${id}.test`, weight: 1 });
const other = initialMap([info("x1"), info("x2")], 2, 8);

function refusal(health: { id: string; keys: number }, map: ClusterMap | null): RingkvError {
  const err = assertThrows(() => refuseUnjoinable(URL, health, map), RingkvError);
  assertEquals(err.code, "conflict");
  return err;
}

Deno.test("refuseUnjoinable() lets a fresh node join: no map, no keys", () => {
  refuseUnjoinable(URL, { id: "n4", keys: 0 }, null);
});

Deno.test("refuseUnjoinable() refuses a member of another cluster, naming its map", () => {
  const err = refusal({ id: "x1", keys: 0 }, other);
  assertEquals(
    err.message,
    `Cannot add node ${URL}: it is a member of a cluster (its map: epoch 1, nodes x1, x2); ` +
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

Deno.test("refuseUnjoinable() lets a drained node join again: its map is its own removal", () => {
  const copying = planRemove(other, "x2", 1, 0, false, true);
  refuseUnjoinable(URL, { id: "x2", keys: 0 }, copying);
  refuseUnjoinable(URL, { id: "x2", keys: 0 }, toCleanup(copying, 0));
  // The removal of another node leaves it a member.
  refusal({ id: "x1", keys: 0 }, toCleanup(copying, 0));
});
