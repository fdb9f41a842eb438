/**
 * `deno task compile` builds three standalone executables that run. Where the standalone
 * runtime cannot be downloaded (no network, no DENORT_BIN), the task says so with exit 3
 * and this test is skipped, with the reason in its name; any other outcome is checked.
 */
import { assertEquals, assertMatch } from "@std/assert";
import { join } from "@std/path";
import { RUNTIME_UNAVAILABLE, TARGETS } from "../tasks/compile.ts";
import { runToEnd } from "./helpers/process.ts";

const out = await Deno.makeTempDir({ prefix: "ringkv-dist-" });
const build = await runToEnd({
  script: new URL("../tasks/compile.ts", import.meta.url),
  args: ["--out", out],
  timeoutMs: 300_000,
});
const unavailable = build.code === RUNTIME_UNAVAILABLE;
if (unavailable) await Deno.remove(out, { recursive: true });

Deno.test({
  name: unavailable
    ? "deno task compile (skipped: the standalone runtime could not be downloaded here)"
    : "deno task compile builds the proxy, the node and the CLI, and each runs",
  ignore: unavailable,
  async fn() {
    try {
      assertEquals(build.code, 0, build.stderr);
      for (const t of TARGETS) {
        const help = await new Deno.Command(join(out, t.name), { args: ["--help"] }).output();
        assertEquals(help.code, 0, `${t.name} --help`);
        assertMatch(new TextDecoder().decode(help.stdout), /usage: deno task/);
      }
    } finally {
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test("deno task compile reports a missing standalone runtime as such (exit 3), not as a crash", () => {
  if (!unavailable) return assertEquals(build.code, 0, build.stderr);
  assertMatch(build.stderr, /could not download the standalone runtime \(denort\)/);
});
