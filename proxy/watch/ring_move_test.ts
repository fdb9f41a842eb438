import { assertEquals } from "@std/assert";
import { ringMove } from "./ring_move.ts";

Deno.test("ringMove() carries a watch across one node added or removed with replicas", () => {
  assertEquals(ringMove(["a", "b", "c"], ["a", "b", "c"], 3), { kind: "same" });
  assertEquals(ringMove(["a", "b", "c"], ["a", "b", "c", "d"], 3), { kind: "moved" });
  assertEquals(ringMove(["a", "b", "c", "d"], ["a", "c", "d"], 2), { kind: "moved" });
});

Deno.test("ringMove() refuses one replica and more than one node in or out, saying which", () => {
  const one = ringMove(["a", "b"], ["a", "b", "c"], 1);
  assertEquals(one.kind, "refused");
  assertEquals(one.kind === "refused" && one.reason.includes("joined: c"), true);
  const two = ringMove(["a", "b", "c"], ["a", "c", "d"], 3);
  assertEquals(two.kind === "refused" && two.reason.includes("joined: d; left: b"), true);
  // A map whose ring is the same keeps going even with one replica.
  assertEquals(ringMove(["a"], ["a"], 1), { kind: "same" });
});
