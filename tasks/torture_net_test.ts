import { assertEquals, assertThrows } from "@std/assert";
import { ConfigError } from "../shared/config.ts";
import { netArgs, table } from "./torture_net.ts";
import type { RunResult } from "../tests/helpers/net_scenarios.ts";

function run(convergedMs: number, indefinite: number): RunResult {
  const share = { requests: 100, indefinite };
  return {
    kind: "isolate",
    faults: 3,
    seenInForce: 3,
    all: share,
    majority: share,
    calm: share,
    violation: null,
    lost: [],
    diverged: [],
    convergedMs,
  };
}

Deno.test("table() has one cell per column, sums the runs and shows the slowest convergence", () => {
  const lines = table([run(12, 1), run(430, 2)]).split("\n");
  const cells = (line: string) => line.split("|").length;
  assertEquals(lines.map(cells), [cells(lines[0]!), cells(lines[0]!), cells(lines[0]!)]);
  assertEquals(
    lines[2],
    "| isolate | 2 | 200 | 0 | 0 | 0 | 430 ms | 0 | 1.50 % | 1.50 % of 200 | 1.50 % of 200 |",
  );
});

Deno.test("netArgs() reads --runs, --seconds and --kinds, and refuses any other word or a missing value", () => {
  assertEquals(netArgs(["--net", "--runs", "2", "--kinds", "isolate"]), {
    runs: 2,
    seconds: 60,
    kinds: ["isolate"],
  });
  for (const bad of [["--net", "--sedonds", "5"], ["--net", "stray"], ["--net", "--runs"]]) {
    assertThrows(() => netArgs(bad), ConfigError);
  }
  assertThrows(() => netArgs(["--net", "--kinds", "nosuch"]), ConfigError);
});
