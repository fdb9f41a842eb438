import { assertEquals, assertThrows } from "@std/assert";
import { ConfigError } from "../shared/config.ts";
import { tortureArgs } from "./torture.ts";

Deno.test("tortureArgs() reads --minutes, 5 by default, and --help", () => {
  assertEquals(tortureArgs([]), 5);
  assertEquals(tortureArgs(["--minutes", "0.5"]), 0.5);
  assertEquals(tortureArgs(["--help"]), "help");
  assertEquals(tortureArgs(["--minutes", "2", "-h"]), "help");
});

Deno.test("tortureArgs() refuses a mistyped flag or a bad --minutes instead of running", () => {
  // `deno task torture --help` and `--sedd 3` once started a 5-minute run that ignored them.
  assertThrows(() => tortureArgs(["--sedd", "3"]), ConfigError, "Unknown argument --sedd");
  assertThrows(() => tortureArgs(["extra"]), ConfigError, "Unknown argument extra");
  for (const bad of [[], ["0"], ["-1"], ["abc"], [""]]) {
    assertThrows(() => tortureArgs(["--minutes", ...bad]), ConfigError, "Cannot use --minutes");
  }
});
