import { assertEquals } from "@std/assert";
import { nextTurn, TurnBudget } from "./turn_budget.ts";

Deno.test("TurnBudget.spent() holds once the slice's time is used, and yield() starts a new slice", async () => {
  let now = 100;
  const budget = new TurnBudget(2, () => now, () => Promise.resolve());
  assertEquals(budget.spent(), false);
  now = 101.9;
  assertEquals(budget.spent(), false);
  now = 102;
  assertEquals(budget.spent(), true);
  await budget.yield();
  assertEquals([budget.spent(), budget.yields], [false, 1]);
  now = 105;
  budget.restart();
  assertEquals(budget.spent(), false);
});

Deno.test("nextTurn() lets a timer due now run first (a microtask would not)", async () => {
  let fired = false;
  setTimeout(() => fired = true, 0);
  await Promise.resolve();
  assertEquals(fired, false);
  // A timer set before is due first: the loop turned.
  for (let i = 0; i < 50 && !fired; i++) await nextTurn();
  assertEquals(fired, true);
});

Deno.test("nextTurn() lets a socket's answer in between slices of busy work", async () => {
  const stop = new AbortController();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, signal: stop.signal, onListen: () => {} },
    () => new Response("ok"),
  );
  try {
    const url = `http://127.0.0.1:${server.addr.port}/`;
    let answered = false;
    const call = fetch(url, { signal: AbortSignal.timeout(10_000) })
      .then((r) => r.text()).then(() => answered = true);
    // 1 ms slices with a yield between: the answer must come within the bounded slices.
    let slices = 0;
    for (; slices < 2000 && !answered; slices++) {
      const start = performance.now();
      while (performance.now() - start < 1);
      await nextTurn();
    }
    await call;
    assertEquals(answered, true);
  } finally {
    stop.abort();
    await server.finished;
  }
});
