import { assert, assertEquals } from "@std/assert";
import { formatVersion, isVersion } from "../../shared/version.ts";
import { ballotAfter, decisionOf, OwnDecisions } from "./own_ballots.ts";

Deno.test("ballotAfter is the next version in order, only for the writer's own ballots", () => {
  const mine = formatVersion(1_700_000_000_000, 3, "p0a1b2c3d4e5f");
  const next = ballotAfter(mine, "p0a1b2c3d4e5f")!;
  assert(isVersion(next) && next > mine);
  // No well-formed version of any writer lies between the two (smallest character: "0").
  for (const writer of ["p0a1b2c3d4e5f", "p0a1b2c3d4e5e", "p0a1b2c3d4e5g", "A", "z", "_"]) {
    for (const counter of [2, 3, 4]) {
      const v = formatVersion(1_700_000_000_000, counter, writer);
      assert(!(v > mine && v < next), `${v} lies between ${mine} and ${next}`);
    }
  }
  assertEquals(ballotAfter(next, "p0a1b2c3d4e5f"), next + "0");
  assertEquals(ballotAfter(formatVersion(1, 0, "pother"), "p0a1b2c3d4e5f"), undefined);
  assertEquals(ballotAfter(formatVersion(1, 0, "p0a1b2c3d4e5f1"), "p0a1b2c3d4e5f"), undefined);
  const full = formatVersion(1, 0, "p0a1b2c3d4e5f".padEnd(32, "0"));
  assertEquals(ballotAfter(full, "p0a1b2c3d4e5f"), undefined, "no room for one more 0");
});

Deno.test("OwnDecisions recalls a decision only under its epoch and replica set, and keeps the newest keys", () => {
  const own = new OwnDecisions({ maxKeys: 2 });
  own.remember("a", { ver: "v1", live: true, epoch: 1, owners: "n1 n2 n3" });
  assertEquals(own.recall("a", 1, "n1 n2 n3")?.ver, "v1");
  assertEquals(own.recall("a", 2, "n1 n2 n3"), undefined);
  assertEquals(own.recall("a", 1, "n1 n2 n4"), undefined);
  own.forget("a");
  assertEquals([own.size, own.bytes], [0, 0]);
  own.remember("a", { ver: "v1", live: true, epoch: 1, owners: "n" });
  own.remember("b", { ver: "v1", live: true, epoch: 1, owners: "n" });
  own.remember("a", { ver: "v2", live: false, epoch: 1, owners: "n" });
  own.remember("c", { ver: "v1", live: true, epoch: 1, owners: "n" });
  assertEquals([own.recall("a", 1, "n")?.ver, own.recall("b", 1, "n"), own.size], [
    "v2",
    undefined,
    2,
  ]);
});

Deno.test("OwnDecisions stays under its byte bound with long keys", () => {
  const own = new OwnDecisions({ maxBytes: 64 * 1024 });
  for (let i = 0; i < 1000; i++) {
    own.remember(`${i}`.padEnd(1024, "x"), { ver: "v", live: true, epoch: 1, owners: "n" });
  }
  assert(own.bytes <= 64 * 1024, `${own.bytes} bytes`);
  assert(own.size >= 20 && own.size < 40, `${own.size} keys`);
  assert(own.has("999".padEnd(1024, "x")) && !own.has("0".padEnd(1024, "x")));
});

Deno.test("OwnDecisions pauses fast writes for a sample when more than one in 4 failed", () => {
  const own = new OwnDecisions();
  own.remember("a", { ver: "v1", live: true, epoch: 1, owners: "n" });
  for (let i = 0; i < 256; i++) own.outcome(i % 5 === 0); // 52 of 256 failed: fine
  assertEquals(own.recall("a", 1, "n")?.ver, "v1");
  for (let i = 0; i < 256; i++) own.outcome(i % 3 === 0); // 86 of 256: too many
  for (let i = 0; i < 256; i++) assertEquals(own.recall("a", 1, "n"), undefined);
  assertEquals(own.recall("a", 1, "n")?.ver, "v1", "back after the pause");
});

Deno.test("decisionOf keeps a live entry's expiry and nothing of a tombstone's", () => {
  const live = { k: "k", v: "", t: "text/plain; ringkv-expires=5000", ver: "v", h: 1 };
  assertEquals(decisionOf(live, 3, "n"), {
    ver: "v",
    live: true,
    expiresAt: 5000,
    epoch: 3,
    owners: "n",
  });
  assertEquals(decisionOf({ ...live, v: null }, 3, "n"), {
    ver: "v",
    live: false,
    epoch: 3,
    owners: "n",
  });
});
