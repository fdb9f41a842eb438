import { assert, assertEquals } from "@std/assert";
import { QueueDeadlines, Sweep, WaitDeadlines, type Waiter } from "./wait_deadlines.ts";

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

/** A queue's deadlines over `list`, whose waiters before `head()` are answered. */
function queueOf(waits: WaitDeadlines, list: Waiter[]) {
  let head = 0;
  const deadlines = new QueueDeadlines(
    waits,
    () => new Error("late"),
    (d) => list[head = d.expire(list, head)],
  );
  return { deadlines, head: () => head };
}

Deno.test("QueueDeadlines counts a deadline from the node's last answer when later, and answers those past it before the answer first", () => {
  let now = 1000;
  const waits = new WaitDeadlines(500, () => now);
  const { answered, list } = waiters(100, 400, 900);
  const queue = queueOf(waits, list);
  queue.deadlines.answered();
  assertEquals(answered, [100, 400], "past their deadline when the answer came");
  now = 1450;
  assertEquals(queue.deadlines.expire(list, queue.head()), 2, "due 500 ms after the answer");
  now = 1500;
  assertEquals(queue.deadlines.expire(list, queue.head()), 3);
  assertEquals(answered, [100, 400, 900]);
});

Deno.test("QueueDeadlines answers a late batch's waiters, and the queued ones, at their deadlines while it flies", async () => {
  // A clock well past 0: the waiters below began waiting before it started.
  const waits = new WaitDeadlines(1000, () => 10_000 + performance.now());
  const start = waits.now();
  const answered: string[] = [];
  const { promise: both, resolve } = Promise.withResolvers<void>();
  const waiter = (name: string, at: number) => ({
    at,
    reject: () => answered.push(name) === 2 && resolve(),
  });
  const queue = queueOf(waits, [waiter("queued", start - 980)]);
  const fresh = queue.deadlines.watchIfLate([waiter("fresh", waits.now())]);
  assertEquals(fresh, undefined, "waited less than a slot: not late");
  const late = queue.deadlines.watchIfLate([waiter("in flight", start - 990)]);
  assert(late !== undefined);
  await both;
  assertEquals(answered, ["in flight", "queued"]);
  assertEquals(late.cut, 1);
  queue.deadlines.landed(late); // stops the sweep: the test's timer sanitizer would fail it
});
