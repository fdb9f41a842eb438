import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { hasCommand, runWrk } from "../tasks/bench/processes.ts";
import { wrkScript } from "../tasks/bench/wrk.ts";

const hasWrk = await hasCommand("wrk");

/** The ids of running wrk processes aimed at `port`. */
async function wrksOn(port: number): Promise<string> {
  const out = await new Deno.Command("pgrep", {
    // wrk's own command line, by name or path.
    args: ["-f", `^(\\S*/)?wrk .*127\\.0\\.0\\.1:${port}`],
    stdout: "piped",
  }).output();
  return new TextDecoder().decode(out.stdout).trim();
}

Deno.test({
  name: "runWrk() reads wrk's own CPU, and stopping it stops wrk too (Linux)",
  ignore: !hasWrk || Deno.build.os !== "linux",
  async fn() {
    const server = Deno.serve(
      { hostname: "127.0.0.1", port: 0, onListen() {} },
      () => new Response("v"),
    );
    const dir = await Deno.makeTempDir({ prefix: "ringkv-wrk-" });
    try {
      const url = `http://127.0.0.1:${server.addr.port}`;
      const script = join(dir, "get.lua");
      await Deno.writeTextFile(
        script,
        wrkScript({ prefix: "k", keys: 10, putRatio: 0, valueBytes: 1 }),
      );
      const r = await runWrk(url, script, { connections: 2, threads: 1, seconds: 1 });
      assert(r.requests > 0);
      assert(r.cpuSeconds !== undefined && r.cpuSeconds > 0, `wrk's CPU: ${r.cpuSeconds}`);
      const stop = new AbortController();
      const long = runWrk(url, script, { connections: 2, threads: 1, seconds: 30 }, stop.signal)
        .then(() => "finished", (err: Error) => err);
      // wrk is running (bounded wait), then the bench stops it.
      const deadline = Date.now() + 10_000;
      while ((await wrksOn(server.addr.port)) === "" && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
      assert((await wrksOn(server.addr.port)) !== "", "wrk never started");
      stop.abort();
      // wrk goes within a few seconds of the stop, long before its 30 s (bounded wait).
      let left = await wrksOn(server.addr.port);
      for (let i = 0; i < 100 && left !== ""; i++) {
        await new Promise((resolve) => setTimeout(resolve, 50));
        left = await wrksOn(server.addr.port);
      }
      assertEquals(left, "", "wrk still runs after the bench stopped it");
      assert((await long) instanceof Error, "a stopped run must fail, not report numbers");
    } finally {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
