/**
 * Real processes on data directories they cannot use:
 * - a file system that is already read-only (a tmpfs mounted `ro` by the test; root only,
 *   skipped with a message otherwise): the data-directory lock, a node, a proxy and
 *   `deno task cluster` stop with exit 1 and one line naming what they tried, the
 *   directory, the OS error and what to do (before: an uncaught stack trace);
 * - a snapshot, log or acceptor.json (the CASPaxos promise watermark) that cannot be read
 *   (here a directory where the file belongs, so a real read fails with EISDIR; EIO itself
 *   is tested over the fake disk): the node stops with exit 1 and one line naming the file
 *   and the error, and never starts empty or voting without its promises.
 */
import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { join } from "@std/path";
import { DataDirUnusableError, lockDataDir } from "../shared/data_dir_lock.ts";
import { runToEnd, spawnServer } from "./helpers/process.ts";

const NODE = new URL("../node/main.ts", import.meta.url);
const PROXY = new URL("../proxy/main.ts", import.meta.url);
const CLUSTER = new URL("../tasks/cluster.ts", import.meta.url);
const ENV = { RINGKV_CLUSTER_SECRET: "unusable-test-secret-0123456789" };

async function run(cmd: string, args: string[]): Promise<boolean> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" }).output();
    return out.success;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    return false;
  }
}

/** Mounts an empty read-only tmpfs at `dir`; false when this machine does not let us. */
function mountReadOnly(dir: string): Promise<boolean> {
  return run("mount", ["-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", dir]);
}

const probe = await Deno.makeTempDir();
const mountable = await mountReadOnly(probe) && await run("umount", [probe]);
await Deno.remove(probe, { recursive: true });
if (!mountable) console.log("unusable_data_dir_test: read-only cases skipped, mounting needs root");

/** The process's stderr is one line (no stack trace) that matches every pattern. */
function assertOneLine(stderr: string, patterns: RegExp[]): void {
  const lines = stderr.trim().split("\n");
  assertEquals(lines.length, 1, stderr);
  for (const pattern of patterns) assertMatch(lines[0]!, pattern);
}

/**
 * A node on `nodeData`, and a proxy and `deno task cluster` on `data`, each stop with exit 1 and
 * one line matching every pattern of `what`; returns the node's run.
 */
async function assertEachRefuses(nodeData: string, data: string, what: RegExp[]) {
  const node = await runToEnd({
    script: NODE,
    args: ["--port", "0", "--data", nodeData],
    env: ENV,
  });
  assertEquals(node.code, 1, node.stderr);
  assertOneLine(node.stderr, [/^ringkv node: /, ...what]);
  const proxy = await runToEnd({
    script: PROXY,
    args: ["--port", "0", "--data", data, "--nodes", "http://127.0.0.1:9"],
    env: ENV,
  });
  assertEquals(proxy.code, 1, proxy.stderr);
  assertOneLine(proxy.stderr, what);
  const cluster = await runToEnd({ script: CLUSTER, args: ["--data", data, "--port", "0"] });
  assertEquals(cluster.code, 1, cluster.stderr);
  assertOneLine(cluster.stderr, what);
  return node;
}

Deno.test({
  name:
    "read-only file system: the lock, a node, a proxy and deno task cluster stop with exit 1 and one line saying what to do",
  ignore: !mountable,
  async fn() {
    const root = await Deno.makeTempDir({ prefix: "ringkv-ro-" });
    const ro = join(root, "ro");
    await Deno.mkdir(ro);
    let mounted = false;
    try {
      assert(await mountReadOnly(ro), "mount failed");
      mounted = true;
      const err = await assertRejects(() => lockDataDir(ro, "node"), DataDirUnusableError);
      assertEquals((err.cause as { code?: string }).code, "EROFS");
      const what = [/Cannot lock data directory .*\/ro/, /Read-only file system/, /remount it/];
      const node = await assertEachRefuses(join(ro, "n1"), ro, what);
      assert(!node.stdout.includes("listening"), node.stdout);
    } finally {
      if (mounted) await run("umount", [ro]);
      await Deno.remove(root, { recursive: true });
    }
  },
});

Deno.test("--data naming a regular file: a node, a proxy and deno task cluster stop with exit 1 and one line, no stack trace", async () => {
  const root = await Deno.makeTempDir({ prefix: "ringkv-file-data-" });
  try {
    const file = join(root, "not-a-dir");
    await Deno.writeTextFile(file, "mine");
    const what = [
      /Cannot lock data directory .*not-a-dir \(creating the directory\): File exists/,
      /it is a file, not a directory: give this process another --data\.$/,
    ];
    await assertEachRefuses(file, file, what);
    assertEquals(await Deno.readTextFile(file), "mine");
    assertEquals([...Deno.readDirSync(root)].map((e) => e.name), ["not-a-dir"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** The file's bytes, or null when there is none (acceptor.json exists after a first vote). */
async function readIfAny(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    return null;
  }
}

Deno.test("a node whose snapshot, log or acceptor.json cannot be read stops with exit 1 and one line naming the file, never empty", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-unreadable-" });
  const args = ["--port", "0", "--data", dir];
  try {
    const node = await spawnServer({ script: NODE, args, env: ENV });
    const res = await fetch(`${node.url}/kv/a`, {
      method: "PUT",
      body: "one",
      headers: { Authorization: `Bearer ${ENV.RINGKV_CLUSTER_SECRET}` },
    });
    await res.body?.cancel();
    assertEquals(res.status, 201);
    assertEquals((await node.stop()).code, 0); // a clean stop writes the snapshot
    for (const file of ["snapshot.json", "wal.jsonl", "acceptor.json"]) {
      const path = join(dir, file);
      const saved = await readIfAny(path);
      if (saved !== null) await Deno.remove(path);
      await Deno.mkdir(path); // a read of it fails as a failing disk's would, with an OS error
      try {
        const { code, stdout, stderr } = await runToEnd({ script: NODE, args, env: ENV });
        assertEquals(code, 1, stderr);
        assertOneLine(stderr, [
          new RegExp(`^ringkv node: Cannot load the data directory: reading ${file} failed`),
          /Is a directory \(os error 21\)/,
        ]);
        assert(!stdout.includes("listening"), stdout);
      } finally {
        await Deno.remove(path);
        if (saved !== null) await Deno.writeFile(path, saved);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
