import { assertEquals } from "@std/assert";

Deno.test("the probe, preloaded, writes its samples when the process exits", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-lag-" });
  try {
    const out = `${dir}/lag.json`;
    const main = `${dir}/main.ts`;
    // Holds the thread for 60 ms once: the probe must see a firing at least ~50 ms late.
    await Deno.writeTextFile(
      main,
      "setTimeout(() => { const t = Date.now(); while (Date.now() - t < 60); }, 20);\n" +
        "setTimeout(() => Deno.exit(0), 200);\n",
    );
    const probe = new URL("../tasks/bench/loop_lag.ts", import.meta.url).pathname;
    const run = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", "--no-lock", "--preload", probe, main],
      env: { LOOP_LAG_OUT: out },
    }).output();
    assertEquals(run.code, 0);
    const samples = JSON.parse(await Deno.readTextFile(out)) as [number, number][];
    assertEquals(samples.length > 5, true);
    assertEquals(Math.max(...samples.map(([, lag]) => lag)) >= 40, true);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
