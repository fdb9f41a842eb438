import { assert, assertEquals, assertRejects, assertThrows } from "@std/assert";
import { KeyPoints } from "./key_points.ts";
import { hashKey, type Point } from "./ring.ts";

/** A hash that counts its calls and answers only when the test releases it. */
function gatedHash() {
  const calls: string[] = [];
  const waiting: (() => void)[] = [];
  const hash = (key: string): Promise<Point> => {
    calls.push(key);
    return new Promise((resolve) => waiting.push(() => resolve(key.length)));
  };
  const release = () => waiting.splice(0).forEach((answer) => answer());
  return { calls, hash, release };
}

Deno.test("KeyPoints.pointOf() hashes a miss with hashKey() by default", async () => {
  const keyPoints = new KeyPoints();
  const miss = keyPoints.pointOf("abc");
  assert(miss instanceof Promise);
  assertEquals(await miss, await hashKey("abc"));
});

Deno.test("KeyPoints.pointOf() returns a number synchronously on a hit", async () => {
  const keyPoints = new KeyPoints();
  const point = await keyPoints.pointOf("users/42");
  const hit = keyPoints.pointOf("users/42");
  assertEquals(typeof hit, "number");
  assertEquals(hit, point);
});

Deno.test("KeyPoints.pointOf() hashes concurrent misses of one key once", async () => {
  const { calls, hash, release } = gatedHash();
  const keyPoints = new KeyPoints({ hash });
  const asks = [keyPoints.pointOf("k1"), keyPoints.pointOf("k1"), keyPoints.pointOf("k22")];
  release();
  assertEquals(await Promise.all(asks), [2, 2, 3]);
  assertEquals(calls, ["k1", "k22"]);
  assertEquals(keyPoints.pointOf("k1"), 2);
  assertEquals(calls.length, 2);
});

Deno.test("KeyPoints forgets the oldest inserted key beyond its capacity", async () => {
  const calls: string[] = [];
  const hash = (key: string) => (calls.push(key), Promise.resolve(key.length));
  const keyPoints = new KeyPoints({ capacity: 2, hash });
  for (const key of ["a", "bb", "ccc"]) await keyPoints.pointOf(key);
  assertEquals(keyPoints.size, 2);
  assertEquals(keyPoints.pointOf("bb"), 2);
  assertEquals(keyPoints.pointOf("ccc"), 3);
  const again = keyPoints.pointOf("a");
  assert(again instanceof Promise, "the oldest key was forgotten");
  assertEquals(await again, 1);
  assertEquals(calls, ["a", "bb", "ccc", "a"]);
  assert(keyPoints.pointOf("bb") instanceof Promise, "re-adding a evicted bb, the oldest");
});

Deno.test("KeyPoints forgets the oldest keys beyond its characters, and never holds one longer than them", async () => {
  const hash = (key: string) => Promise.resolve(key.length);
  const keyPoints = new KeyPoints({ maxChars: 10, hash });
  for (const key of ["aaaa", "bbbb", "cc"]) await keyPoints.pointOf(key);
  assertEquals(keyPoints.size, 3); // 10 characters
  await keyPoints.pointOf("ddd"); // 13: "aaaa" goes
  assertEquals(keyPoints.size, 3);
  assert(keyPoints.pointOf("aaaa") instanceof Promise, "the oldest key was forgotten");
  assertEquals(keyPoints.pointOf("cc"), 2);
  assertEquals(await keyPoints.pointOf("x".repeat(11)), 11); // answered, not remembered
  assert(keyPoints.pointOf("x".repeat(11)) instanceof Promise);
  assertEquals(keyPoints.pointOf("cc"), 2, "a key too long to hold evicted nothing");
});

Deno.test("KeyPoints.pointsOf() answers in order and hashes the misses concurrently", async () => {
  const { calls, hash, release } = gatedHash();
  const keyPoints = new KeyPoints({ hash });
  const first = keyPoints.pointsOf(["x", "yy"]);
  release();
  assertEquals(await first, [1, 2]);
  const second = keyPoints.pointsOf(["yy", "zzz", "x", "zzz", "wwww"]);
  assertEquals(calls, ["x", "yy", "zzz", "wwww"], "both misses started before either finished");
  release();
  assertEquals(await second, [2, 3, 1, 3, 4]);
});

Deno.test("KeyPoints does not remember a failed hash", async () => {
  let fail = true;
  const hash = (key: string) =>
    fail ? Promise.reject(new Error(`cannot hash ${key}`)) : Promise.resolve(7);
  const keyPoints = new KeyPoints({ hash });
  await assertRejects(async () => await keyPoints.pointOf("k"), Error, "cannot hash k");
  fail = false;
  assertEquals(await keyPoints.pointOf("k"), 7);
});

Deno.test("KeyPoints rejects a capacity that is not an integer >= 1", () => {
  for (const capacity of [0, -1, 1.5, NaN]) {
    assertThrows(() => new KeyPoints({ capacity }), Error, `capacity is ${capacity}`);
  }
});
