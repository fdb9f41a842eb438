import { assert, assertEquals } from "@std/assert";
import { SlotTimers } from "./slot_timers.ts";

/** Resolves with the time `onTimeout` ran, measured by `performance.now()`. */
function fired(): { onTimeout: () => void; at: Promise<number> } {
  let resolve!: (at: number) => void;
  const at = new Promise<number>((r) => (resolve = r));
  return { onTimeout: () => resolve(performance.now()), at };
}

Deno.test("SlotTimers: timeouts started within one slot share it; one started after gets a new one", () => {
  let now = 0;
  const timers = new SlotTimers(50, () => now); // slots of 5 ms
  const a = timers.start(() => {});
  now = 4.9;
  const b = timers.start(() => {});
  now = 5;
  const c = timers.start(() => {});
  assertEquals(a.slot, b.slot);
  assert(a.slot !== c.slot);
  assertEquals(a.slot.armed.size, 2);
  for (const armed of [a, b, c]) timers.stop(armed);
  // The replaced slot's last one out cleared its timer; the current one keeps its (unref'd).
  assertEquals(a.slot.timer, undefined);
  assert(c.slot.timer !== undefined);
  clearTimeout(c.slot.timer);
});

Deno.test("SlotTimers: timeouts started and stopped one after another in a slot share one timer", () => {
  let now = 0;
  const timers = new SlotTimers(10_000, () => now); // slots of 100 ms
  const first = timers.start(() => {});
  timers.stop(first);
  for (let i = 0; i < 50; i++) {
    now += 1;
    const next = timers.start(() => {});
    assertEquals(next.slot, first.slot, "a slot emptied while current still takes timeouts");
    timers.stop(next);
  }
  clearTimeout(first.slot.timer);
});

Deno.test("SlotTimers: a timeout that joins at a slot's very end still gets its whole time, in whole ms", () => {
  for (const timeoutMs of [15, 995, 10_000, 7]) {
    let now = 1000.25;
    const timers = new SlotTimers(timeoutMs, () => now);
    const first = timers.start(() => {});
    const opened = now;
    now = first.slot.ends - 0.001; // the latest start that still joins this slot
    const last = timers.start(() => {});
    assertEquals(last.slot, first.slot);
    assert(Number.isInteger(first.slot.firesAfterMs), `${timeoutMs}: ${first.slot.firesAfterMs}`);
    assert(opened + first.slot.firesAfterMs >= now + timeoutMs, `${timeoutMs}: fires too early`);
    timers.stop(first);
    timers.stop(last);
  }
});

Deno.test("SlotTimers runs every callback still armed, never before its timeout, and none stopped", async () => {
  const timers = new SlotTimers(60);
  const started = performance.now();
  const due = [fired(), fired()];
  const stopped = fired();
  for (const f of due) timers.start(f.onTimeout);
  timers.stop(timers.start(stopped.onTimeout));
  const at = await Promise.all(due.map((f) => f.at));
  // Timers never fire early; a loaded machine only makes them later.
  for (const t of at) assert(t - started >= 59, `ran after ${t - started} ms`);
  const late = await Promise.race([stopped.at, new Promise((r) => setTimeout(() => r("no"), 20))]);
  assertEquals(late, "no");
});

Deno.test("SlotTimers: stopping twice, or after the timeout ran, is harmless", async () => {
  const timers = new SlotTimers(20);
  const f = fired();
  const armed = timers.start(f.onTimeout);
  await f.at;
  timers.stop(armed);
  timers.stop(armed);
  // A new slot after the last one fired works as the first did.
  const again = fired();
  timers.start(again.onTimeout);
  await again.at;
});

Deno.test("SlotTimers: a timeout that joins an emptied slot still fires (the slot's timer holds the process again)", async () => {
  const timers = new SlotTimers(30);
  const started = performance.now();
  timers.stop(timers.start(() => {})); // the slot empties and its timer stops holding the process
  const f = fired();
  const armed = timers.start(f.onTimeout);
  assertEquals(armed.slot.idle, false);
  // Were the timer still unref'd, nothing would keep this test's event loop alive.
  assert((await f.at) - started >= 29);
});

Deno.test("a callback that throws skips no other of its slot; its error is still thrown", async () => {
  const errors: unknown[] = [];
  const onError = (e: ErrorEvent) => {
    e.preventDefault();
    errors.push(e.error);
  };
  globalThis.addEventListener("error", onError);
  try {
    const timers = new SlotTimers(10);
    const ran: string[] = [];
    timers.start(() => {
      ran.push("first");
      throw new Error("boom");
    });
    timers.start(() => ran.push("second"));
    const deadline = Date.now() + 10_000;
    while (ran.length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
    assertEquals(ran, ["first", "second"]);
    assertEquals((errors[0] as Error | undefined)?.message, "boom");
  } finally {
    globalThis.removeEventListener("error", onError);
  }
});
