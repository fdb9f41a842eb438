import { assert, assertEquals } from "@std/assert";
import { RingkvError } from "./errors.ts";
import { SweepTimer } from "./sweep_timer.ts";

Deno.test("SweepTimer never runs two sweeps at once, and hands a sweep's RingkvError to failed", async () => {
  const timer = new SweepTimer();
  let running = 0;
  let most = 0;
  let runs = 0;
  const failures: string[] = [];
  timer.start(1, async () => {
    running++;
    most = Math.max(most, running);
    await new Promise((r) => setTimeout(r, 20));
    running--;
    if (++runs === 1) throw new RingkvError("unavailable", "a node is down");
  }, (err) => failures.push(err.message));
  try {
    for (let i = 0; i < 200 && runs < 3; i++) await new Promise((r) => setTimeout(r, 10));
  } finally {
    timer.stop();
  }
  assert(runs >= 3, `${runs} runs`);
  assertEquals([most, failures], [1, ["a node is down"]]);
  await new Promise((r) => setTimeout(r, 30)); // the last run ends by itself
});
