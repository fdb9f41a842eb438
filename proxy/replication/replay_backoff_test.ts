import { assertEquals } from "@std/assert";
import { ReplayBackoff } from "./replay_backoff.ts";

const failed = { accepted: 0, ingested: 0, current: 0, retry: 2, unsent: 0, notOwned: 0 };

Deno.test("ReplayBackoff waits one probe interval after a replay without progress, then doubles up to its bound", () => {
  const backoff = new ReplayBackoff(1000, 4000);
  assertEquals(backoff.due("n2", 0), true);
  const waits: number[] = [];
  let now = 0;
  for (let i = 0; i < 4; i++) {
    backoff.record("n2", failed, now);
    let wait = 0;
    while (!backoff.due("n2", now + wait)) wait += 250;
    waits.push(wait);
    now += wait;
  }
  assertEquals(waits, [1000, 2000, 4000, 4000]);
  assertEquals(backoff.due("n1", now), true);
});

Deno.test("ReplayBackoff waits after an accept call that failed, and starts afresh after any progress or a clean replay", () => {
  const backoff = new ReplayBackoff(1000);
  backoff.record("n2", { ...failed, retry: 0, unsent: 200 }, 0);
  assertEquals(backoff.due("n2", 500), false);
  backoff.record("n2", { ...failed, accepted: 1 }, 1000);
  assertEquals(backoff.due("n2", 1000), true);
  backoff.record("n2", failed, 2000);
  backoff.record("n2", failed, 3000);
  assertEquals(backoff.due("n2", 4500), false);
  backoff.record("n2", { ...failed, retry: 0 }, 5000);
  assertEquals(backoff.due("n2", 5000), true);
  backoff.record("n2", failed, 6000);
  assertEquals(backoff.due("n2", 6999), false, "the wait starts again at one interval");
  backoff.keepOnly(new Set(["n1"]));
  assertEquals(backoff.due("n2", 6000), true);
});
