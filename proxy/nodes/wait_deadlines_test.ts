import { assert, assertEquals } from "@std/assert";
import { Sweep, WaitDeadlines } from "./wait_deadlines.ts";

function waiters(...ats: number[]) {
  const answered: number[] = [];
  return { answered, list: ats.map((at) => ({ at, reject: () => answered.push(at) })) };
}

Deno.test("WaitDeadlines.expire() answers the waiters whose timeout has run since they began waiting, from `from` on", () => {
  let now = 1000;
  const deadlines = new WaitDeadlines(500, () => now);
  const { answered, list } = waiters(100, 400, 500, 501, 900);
  assertEquals(deadlines.expire(list, 1, () => new Error("late")), 3);
  assertEquals(answered, [400, 500], "not the one before `from`, nor one still in time");
  now = 1400;
  assertEquals(deadlines.expire(list, 3, () => new Error("late")), 5);
  assertEquals(answered, [400, 500, 501, 900]);
});

Deno.test("WaitDeadlines.isLate() holds for a waiter that waited more than a slot (a tenth of the timeout)", () => {
  let now = 0;
  const deadlines = new WaitDeadlines(500, () => now);
  now = 50;
  assert(!deadlines.isLate({ at: 0, reject: () => {} }));
  now = 50.5;
  assert(deadlines.isLate({ at: 0, reject: () => {} }));
  assertEquals(deadlines.dueOf({ at: 7, reject: () => {} }), 507);
  assertEquals(deadlines.dueOf(undefined), Infinity);
});

Deno.test("Sweep runs by the earliest time asked for, again when it says so, and never once stopped", async () => {
  const runs: number[] = [];
  const start = performance.now();
  const { promise: twice, resolve } = Promise.withResolvers<void>();
  const sweep = new Sweep(() => {
    runs.push(performance.now() - start);
    if (runs.length === 2) resolve();
    return runs.length === 1 ? start + 30 : Infinity;
  }, performance.now.bind(performance));
  sweep.by(start + 200);
  sweep.by(start + 10); // earlier: replaces the first
  sweep.by(start + 100); // later: changes nothing
  await twice;
  assertEquals(runs.length, 2);
  assert(runs[0]! >= 9 && runs[1]! >= 29, runs.join());
  sweep.by(performance.now() + 10);
  sweep.stop(); // the test's timer sanitizer fails it if the timer were left armed
});
