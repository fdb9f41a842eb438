import { assertEquals } from "@std/assert";
import { type MapPhase, ringMove } from "./ring_move.ts";

const at = (epoch: number, phase: MapPhase | undefined, ring: string[]) => ({ epoch, phase, ring });

Deno.test("ringMove() carries a watch across one node added or removed with replicas", () => {
  const abc = ["a", "b", "c"];
  assertEquals(ringMove(at(1, "stable", abc), at(1, "stable", abc), 3), { kind: "same" });
  assertEquals(ringMove(at(1, "stable", abc), at(3, "cleanup", [...abc, "d"]), 3), {
    kind: "moved",
  });
  assertEquals(ringMove(at(2, "copying", [...abc, "d"]), at(3, "cleanup", abc), 2), {
    kind: "moved",
  });
  // One whole rebalancing, and the next one started (its ring not yet switched).
  assertEquals(ringMove(at(1, "stable", abc), at(5, "copying", [...abc, "d"]), 3), {
    kind: "moved",
  });
});

Deno.test("ringMove() refuses one replica and more than one node in or out, saying which", () => {
  const one = ringMove(at(1, "stable", ["a", "b"]), at(3, "cleanup", ["a", "b", "c"]), 1);
  assertEquals(one.kind, "refused");
  assertEquals(one.kind === "refused" && one.reason.includes("joined: c"), true);
  const two = ringMove(at(1, "copying", ["a", "b", "c"]), at(3, "cleanup", ["a", "c", "d"]), 3);
  assertEquals(two.kind === "refused" && two.reason.includes("joined: d; left: b"), true);
  // A map whose ring is the same keeps going even with one replica.
  assertEquals(ringMove(at(1, "stable", ["a"]), at(2, "stable", ["a"]), 1), { kind: "same" });
});

Deno.test("ringMove() refuses when two ring switches fit between the maps, even on the same ring", () => {
  const abc = ["a", "b", "c"];
  // d added (epochs 2-4), then removed (5-7): the ring is abc again.
  const back = ringMove(at(1, "stable", abc), at(7, "stable", abc), 3);
  assertEquals(back.kind, "refused");
  assertEquals(back.kind === "refused" && back.reason.includes("epoch 1, stable"), true);
  // From d's copying step: its switch (3) and d's removal switch (6).
  assertEquals(ringMove(at(2, "copying", abc), at(6, "cleanup", abc), 3).kind, "refused");
  // An older proxy's cursor (phase unknown) is taken as copying: the earliest next switch.
  const abcd = [...abc, "d"];
  assertEquals(ringMove(at(1, undefined, abc), at(5, "cleanup", abcd), 3).kind, "refused");
  assertEquals(ringMove(at(1, "stable", abc), at(5, "cleanup", abcd), 3).kind, "moved");
});
