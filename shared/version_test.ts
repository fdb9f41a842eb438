import { assert, assertEquals, assertThrows } from "@std/assert";
import { compareVersions, formatVersion, HybridClock, isVersion, parseVersion } from "./version.ts";

Deno.test("HybridClock.next() is strictly increasing within one millisecond", () => {
  const clock = new HybridClock("n1", () => 1000);
  const stamps = Array.from({ length: 100 }, () => clock.next());
  for (let i = 1; i < stamps.length; i++) assert(stamps[i - 1]! < stamps[i]!);
  assertEquals(parseVersion(stamps[99]!), { wall: 1000, counter: 99, writer: "n1" });
});

Deno.test("HybridClock.next() stays increasing when the wall clock goes backwards", () => {
  let now = 5000;
  const clock = new HybridClock("n1", () => now);
  const a = clock.next();
  now = 4000;
  const b = clock.next();
  assert(compareVersions(a, b) < 0);
});

Deno.test("HybridClock.nextAfter() is newer than a version from a clock far ahead", () => {
  const ahead = new HybridClock("zz", () => 9_000_000).next();
  const clock = new HybridClock("aa", () => 1000);
  const mine = clock.nextAfter(ahead);
  assert(compareVersions(ahead, mine) < 0);
  assert(compareVersions(ahead, clock.next()) < 0);
});

Deno.test("HybridClock rolls the counter over into the next millisecond", () => {
  const clock = new HybridClock("n1", () => 7);
  clock.observe(formatVersion(7, 0xffff, "n1"));
  assertEquals(parseVersion(clock.next()), { wall: 8, counter: 0, writer: "n1" });
});

Deno.test("versions order by wall, then counter, then writer", () => {
  assert(formatVersion(1, 5, "b") < formatVersion(2, 0, "a"));
  assert(formatVersion(2, 1, "a") < formatVersion(2, 2, "a"));
  assert(formatVersion(2, 2, "a") < formatVersion(2, 2, "b"));
  assertEquals(compareVersions(formatVersion(3, 3, "x"), formatVersion(3, 3, "x")), 0);
});

Deno.test("isVersion() accepts stamps and rejects anything else", () => {
  assert(isVersion(new HybridClock("p_1").next()));
  for (const bad of ["", "1-2-3", "0000000003e8-0000-", "0000000003e8-0000-a b", 'W/"x"']) {
    assert(!isVersion(bad), bad);
  }
});

Deno.test("HybridClock refuses a writer id that would break the format", () => {
  assertThrows(() => new HybridClock("a-b"), Error, "Cannot create a clock");
});
