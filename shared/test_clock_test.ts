import { assert, assertEquals, assertThrows } from "@std/assert";
import { offsetClock, testClockOffset } from "./test_clock.ts";
import { ConfigError } from "./config.ts";

Deno.test("testClockOffset() reads an integer offset, 0 when unset or empty", () => {
  assertEquals(testClockOffset({ RINGKV_TEST_CLOCK_OFFSET_MS: "3600000" }), 3_600_000);
  assertEquals(testClockOffset({ RINGKV_TEST_CLOCK_OFFSET_MS: "" }), 0);
  assertEquals(testClockOffset({}), 0);
});

Deno.test("testClockOffset() refuses a non-integer or an offset beyond a week", () => {
  for (const bad of ["1h", "1.5", String(8 * 24 * 3_600_000)]) {
    assertThrows(
      () => testClockOffset({ RINGKV_TEST_CLOCK_OFFSET_MS: bad }),
      ConfigError,
      "RINGKV_TEST_CLOCK_OFFSET_MS",
    );
  }
});

Deno.test("offsetClock() shifts Date.now by the offset", () => {
  assertEquals(offsetClock(0), Date.now);
  const skewed = offsetClock(-3_600_000)();
  assert(Math.abs(skewed + 3_600_000 - Date.now()) < 1000);
});
