import { assert, assertEquals, assertRejects } from "@std/assert";
import { until } from "./poll.ts";

Deno.test("until() resolves once the check holds, sync or async", async () => {
  let n = 0;
  await until("n reaches 3", () => ++n >= 3, 5_000, 1);
  assertEquals(n, 3);
  await until("an async check holds", () => Promise.resolve(true));
});

Deno.test("until() fails naming what it waited for once the deadline passes", async () => {
  const err = await assertRejects(() => until("the moon turns blue", () => false, 30, 5));
  assertEquals(err.message, "Timed out after 30 ms waiting until the moon turns blue");
  let seen = 0;
  const last = await assertRejects(() => until(() => `n is 9 (${seen})`, () => ++seen > 1e9, 30));
  assert(/waiting until n is 9 \(\d+\)$/.test(last.message), last.message);
});
