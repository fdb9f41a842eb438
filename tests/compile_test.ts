/**
 * `deno task compile` builds three standalone executables that run. Where the standalone
 * runtime cannot be downloaded (no network, no DENORT_BIN), the task says so with exit 3
 * and this test is skipped, with the reason in its name; any other outcome is checked. The
 * task runs with deno.json's permissions, so an `--out` they do not allow fails here too.
 */
import { assertEquals, assertMatch } from "@std/assert";
import { join } from "@std/path";
import { RUNTIME_UNAVAILABLE, TARGETS } from "../tasks/compile.ts";
import { runToEnd } from "./helpers/process.ts";

const SCRIPT = new URL("../tasks/compile.ts", import.meta.url);
const ROOT = new URL("..", import.meta.url).pathname;
const TASK: string = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks.compile;
/** `deno run` and the permissions of deno.json's compile task, as runToEnd takes them. */
const DENO_ARGS = TASK.split(" ").slice(1, TASK.split(" ").indexOf("tasks/compile.ts"));

/** Runs `deno task compile ARGS` as deno.json runs it. */
function compile(args: string[]) {
  return runToEnd({ script: SCRIPT, denoArgs: DENO_ARGS, cwd: ROOT, args, timeoutMs: 300_000 });
}

// A directory of its own, not ./dist: the task once could write nowhere else.
const out = await Deno.makeTempDir({ prefix: "ringkv-dist-" });
const build = await compile(["--out", out]);
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

Deno.test("deno task compile refuses an unknown option or a stray word with exit 2 and its usage", async () => {
  for (const args of [["--bogus"], ["--otu", "x"], ["dist"]]) {
    const r = await compile(args);
    assertEquals(r.code, 2, `${args}: ${r.stderr}`);
    assertMatch(r.stderr, /usage: deno task compile \[--out DIR\]/);
    assertEquals(r.stderr.includes("    at "), false, r.stderr);
  }
});

Deno.test("deno task compile --out a file says so in one line, exit 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-dist-" });
  try {
    const file = join(dir, "taken");
    await Deno.writeTextFile(file, "");
    const r = await compile(["--out", file]);
    assertEquals(r.code, 1, r.stderr);
    assertEquals(
      r.stderr.trim(),
      `Cannot build into ${file}: a file is in its place; give --out another directory`,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
