/**
 * A node on a proxy's data directory, a proxy on a node's, and `deno task cluster` on either:
 * each stops with exit 1 and one line naming what the directory holds and what to do, and
 * writes nothing there (before, each started and wrote its own files beside the other's).
 */
import { assertEquals, assertMatch } from "@std/assert";
import { join } from "@std/path";
import { runToEnd, type ServerProcess, spawnServer } from "./helpers/process.ts";

const NODE = new URL("../node/main.ts", import.meta.url);
const PROXY = new URL("../proxy/main.ts", import.meta.url);
const CLUSTER = new URL("../tasks/cluster.ts", import.meta.url);
const ENV = { RINGKV_CLUSTER_SECRET: "wrong-kind-test-secret-0123456789" };

/** Every file of `dir` with its size and modification time: what "nothing written" compares. */
async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const info = await Deno.stat(join(dir, entry.name));
    out.push(`${entry.name} ${info.size} ${info.mtime?.getTime()}`);
  }
  return out.sort();
}

/** Runs `script` with `args`; asserts exit 1, one stderr line matching `line`, `dir` untouched. */
async function assertRefused(script: URL, args: string[], dir: string, line: RegExp) {
  const before = await listing(dir);
  const run = await runToEnd({ script, args, env: ENV });
  assertEquals(run.code, 1, run.stderr);
  const lines = run.stderr.trim().split("\n");
  assertEquals(lines.length, 1, run.stderr);
  assertMatch(lines[0]!, line);
  assertEquals(await listing(dir), before, "the refused start wrote to the directory");
}

Deno.test("a node on a proxy's directory, a proxy on a node's, and deno task cluster on either exit 1 and write nothing", async () => {
  const root = await Deno.makeTempDir({ prefix: "ringkv-kind-" });
  const nodeDir = join(root, "n1");
  const proxyDir = join(root, "p1");
  const started: ServerProcess[] = [];
  try {
    const node = await spawnServer({
      script: NODE,
      args: ["--port", "0", "--data", nodeDir],
      env: ENV,
    });
    started.push(node);
    const proxyArgs = ["--port", "0", "--data", proxyDir, "--nodes", node.url];
    started.push(await spawnServer({ script: PROXY, args: proxyArgs, env: ENV }));
    for (const server of started.splice(0).toReversed()) await server.stop();

    await assertRefused(
      NODE,
      ["--port", "0", "--data", proxyDir],
      proxyDir,
      new RegExp(
        `^ringkv node: Cannot use data directory ${proxyDir}: it is a proxy's \\(deno task proxy\\), ` +
          "it holds cluster.json\\. Give this node its own --data, or start a proxy on this one\\.$",
      ),
    );
    await assertRefused(
      PROXY,
      ["--port", "0", "--data", nodeDir, "--nodes", "http://127.0.0.1:9"],
      nodeDir,
      new RegExp(
        `^Cannot use data directory ${nodeDir}: it is a data node's \\(deno task node\\), it holds ` +
          "node.json.*\\. Give this proxy its own --data, or start a node on this one\\.$",
      ),
    );
    for (const dir of [nodeDir, proxyDir]) {
      await assertRefused(
        CLUSTER,
        ["--data", dir, "--port", "0"],
        dir,
        /Give deno task cluster its own --data/,
      );
    }
  } finally {
    for (const server of started.toReversed()) await server.stop();
    await Deno.remove(root, { recursive: true });
  }
});
