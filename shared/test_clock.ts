/**
 * A test-only clock offset: `RINGKV_TEST_CLOCK_OFFSET_MS` (an integer, at most a week either
 * way) shifts the wall clock a node or a proxy stamps versions with, so fault tests can run
 * a process whose clock is skewed (docs/replication.md, "Clock skew"). It is not a flag and
 * not for production: an operator fixes skew with NTP.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { testClockOffset } from "./test_clock.ts";
 * assertEquals(testClockOffset({ RINGKV_TEST_CLOCK_OFFSET_MS: "-3600000" }), -3_600_000);
 * assertEquals(testClockOffset({}), 0);
 * ```
 */
import { ConfigError } from "./config.ts";

/** The environment variable that sets the offset. */
export const TEST_CLOCK_ENV = "RINGKV_TEST_CLOCK_OFFSET_MS";
const WEEK_MS = 7 * 24 * 3_600_000;

/** The offset in ms (0 when unset); a bad value is a ConfigError naming the variable. */
export function testClockOffset(env: Readonly<Record<string, string | undefined>>): number {
  const text = env[TEST_CLOCK_ENV];
  if (text === undefined || text === "") return 0;
  const n = Number(text);
  if (!Number.isInteger(n) || Math.abs(n) > WEEK_MS) {
    throw new ConfigError(
      `Cannot use ${TEST_CLOCK_ENV}="${text}": it must be an integer of ms within ±${WEEK_MS}`,
    );
  }
  return n;
}

/** `Date.now` shifted by `offsetMs` (Date.now itself when 0). */
export function offsetClock(offsetMs: number): () => number {
  return offsetMs === 0 ? Date.now : () => Date.now() + offsetMs;
}
