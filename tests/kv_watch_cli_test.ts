import { assert, assertEquals } from "@std/assert";
import { TestCluster } from "./helpers/process_cluster.ts";
import { runToEnd } from "./helpers/process.ts";

const KV = new URL("../tasks/kv.ts", import.meta.url);

Deno.test("deno task kv: put --ttl 1s expires the key, and kv watch prints the put and the expiry", async () => {
  const cluster = await TestCluster.create();
  const cwd = await Deno.makeTempDir({ prefix: "ringkv-cli-" });
  const env = { RINGKV_URL: "" };
  let child: Deno.ChildProcess | undefined;
  try {
    const proxy = await cluster.startAll(1);
    env.RINGKV_URL = proxy.url;
    child = new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", KV.pathname, "watch", "w/"],
      cwd,
      env,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const lines: string[] = [];
    const reading = child.stdout.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (chunk) => void lines.push(...chunk.split("\n")) }),
    );
    const kv = (...args: string[]) =>
      runToEnd({ script: KV, args, env, cwd, timeoutMs: 60_000, denoArgs: ["run", "-A"] });
    const bad = await kv("put", "w/a", "x", "--ttl", "0s");
    assertEquals(bad.code, 2, bad.stderr);
    // The watcher may still be connecting: write until it has printed a put.
    const deadline = Date.now() + 30_000;
    let version = "";
    while (!lines.some((l) => l.startsWith("put w/a "))) {
      assert(Date.now() < deadline, `kv watch printed: ${lines.join("|")}`);
      const put = await kv("put", "w/a", "brief", "--ttl", "1s");
      assertEquals(put.code, 0, put.stderr);
      version = put.stdout.trim();
      await new Promise((r) => setTimeout(r, 200));
    }
    while (!lines.some((l) => l.startsWith("del w/a "))) {
      assert(Date.now() < deadline, `kv watch printed: ${lines.join("|")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert(lines.some((l) => l === `put w/a ${version} "brief"`), lines.join("|"));
    assertEquals((await kv("get", "w/a")).code, 1);
    child.kill("SIGTERM");
    await child.status;
    await reading;
    await child.stderr.cancel();
    child = undefined;
  } finally {
    if (child !== undefined) {
      child.kill("SIGKILL");
      await child.status;
    }
    await cluster.stop();
    await Deno.remove(cwd, { recursive: true });
  }
});
