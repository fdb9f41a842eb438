/**
 * A data directory belongs to one process: a second node, proxy or `task cluster` on it
 * exits before it reads or writes anything there, naming the directory and its holder,
 * and the first keeps every write it acknowledged (issue: "No acknowledged write is lost").
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "@std/path";
import { lockDataDir } from "../shared/data_dir_lock.ts";
import { runToEnd, type ServerProcess, spawnServer } from "./helpers/process.ts";

const NODE = new URL("../node/main.ts", import.meta.url);
const PROXY = new URL("../proxy/main.ts", import.meta.url);
const CLUSTER = new URL("../tasks/cluster.ts", import.meta.url);
const SECRET = "lock-test-secret-0123456789";
const ENV = { RINGKV_CLUSTER_SECRET: SECRET };
const AUTH = { Authorization: `Bearer ${SECRET}` };

function startNode(dir: string, port = 0): Promise<ServerProcess> {
  return spawnServer({ script: NODE, args: ["--port", String(port), "--data", dir], env: ENV });
}

async function put(url: string, key: string, value: string): Promise<number> {
  const res = await fetch(`${url}/kv/${key}`, { method: "PUT", body: value, headers: AUTH });
  await res.body?.cancel();
  return res.status;
}

async function get(url: string, key: string): Promise<[number, string]> {
  const res = await fetch(`${url}/kv/${key}`, { headers: AUTH });
  return [res.status, await res.text()];
}

/** Every file of `dir` with its size and modification time: what "nothing written" compares. */
async function listing(dir: string): Promise<string[]> {
  const out: string[] = [];
  for await (const entry of Deno.readDir(dir)) {
    const info = await Deno.stat(join(dir, entry.name));
    out.push(`${entry.name} ${info.size} ${info.mtime?.getTime()}`);
  }
  return out.sort();
}

/** The files the process has open that were unlinked under it (Linux's "(deleted)"). */
async function deletedOpenFiles(pid: number): Promise<string[]> {
  const out: string[] = [];
  for await (const fd of Deno.readDir(`/proc/${pid}/fd`)) {
    const target = await Deno.readLink(`/proc/${pid}/fd/${fd.name}`).catch(() => "");
    if (target.endsWith("(deleted)")) out.push(target);
  }
  return out;
}

Deno.test("a second node on a live node's directory and port exits without touching its log", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-lock-" });
  let node = await startNode(dir);
  try {
    assertEquals(await put(node.url, "k1", "one"), 201);
    const before = await listing(dir);
    const second = await runToEnd({
      script: NODE,
      args: ["--port", String(node.port), "--data", dir],
      env: ENV,
    });
    assertEquals(second.code, 1);
    assertMatch(
      second.stderr,
      new RegExp(`data directory ${dir}: it is in use by node process ${node.pid}`),
    );
    assertEquals(await listing(dir), before, "the failed start wrote to the directory");
    if (await Deno.stat("/proc/self/fd").then(() => true, () => false)) {
      assertEquals(await deletedOpenFiles(node.pid), [], "the live node's files were unlinked");
    }
    assertEquals(await put(node.url, "k2", "two"), 201);
    await node.kill("SIGKILL");
    node = await startNode(dir);
    assertEquals(await get(node.url, "k1"), [200, "one"]);
    assertEquals(await get(node.url, "k2"), [200, "two"]);
  } finally {
    await node.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a second node on a live node's directory with a free port does not run beside it", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-lock-" });
  const node = await startNode(dir);
  try {
    assertEquals(await put(node.url, "k", "v"), 201);
    const before = await listing(dir);
    const second = await runToEnd({ script: NODE, args: ["--port", "0", "--data", dir], env: ENV });
    assertEquals(second.code, 1);
    assert(!second.stdout.includes("listening"), second.stdout);
    assertMatch(second.stderr, /in use by node process/);
    assertEquals(await listing(dir), before);
    assertEquals(await get(node.url, "k"), [200, "v"]);
  } finally {
    await node.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a second proxy on a live proxy's directory exits and names the holder", async () => {
  const root = await Deno.makeTempDir({ prefix: "ringkv-lock-" });
  const node = await startNode(join(root, "n1"));
  const proxyDir = join(root, "proxy");
  const args = ["--port", "0", "--data", proxyDir, "--nodes", node.url];
  const proxy = await spawnServer({ script: PROXY, args, env: ENV });
  try {
    const before = await listing(proxyDir);
    const second = await runToEnd({ script: PROXY, args, env: ENV });
    assertEquals(second.code, 1);
    assertMatch(second.stderr, new RegExp(`in use by proxy process ${proxy.pid}`));
    assertEquals(await listing(proxyDir), before);
    const res = await fetch(`${proxy.url}/kv/x`, { method: "PUT", body: "y" });
    await res.body?.cancel();
    assertEquals(res.status, 201);
  } finally {
    await proxy.stop();
    await node.stop();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("deno task cluster on a directory in use exits before it writes a token or starts a node", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-lock-" });
  const held = await lockDataDir(dir, "deno task cluster");
  try {
    const before = await listing(dir);
    const second = await runToEnd({ script: CLUSTER, args: ["--data", dir, "--port", "0"] });
    assertEquals(second.code, 1);
    assertMatch(second.stderr, new RegExp(`in use by deno task cluster process ${Deno.pid}`));
    assertEquals(await listing(dir), before);
  } finally {
    held.release();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a node whose port is taken exits before it locks, reads or writes its own directory", async () => {
  const root = await Deno.makeTempDir({ prefix: "ringkv-lock-" });
  const dir = join(root, "mine");
  const first = await startNode(dir);
  assertEquals(await put(first.url, "k", "v"), 201);
  await first.stop();
  const other = await startNode(join(root, "other")); // holds a port
  try {
    const before = await listing(dir);
    const again = await runToEnd({
      script: NODE,
      args: ["--port", String(other.port), "--data", dir],
      env: ENV,
    });
    assertEquals(again.code, 1);
    assertMatch(again.stderr, new RegExp(`${other.port}`));
    assertEquals(await listing(dir), before, "the failed start wrote to its directory");
  } finally {
    await other.stop();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a proxy whose first start fails leaves no directory and no lock behind (QA: its lock file stayed)", async () => {
  const root = await Deno.makeTempDir({ prefix: "ringkv-lock-" });
  try {
    // A port the OS just gave and took back: nothing listens there.
    const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = closed.addr.port;
    closed.close();
    const proxyDir = join(root, "new", "proxy");
    const args = ["--port", "0", "--data", proxyDir, "--nodes", `http://127.0.0.1:${port}`];
    const r = await runToEnd({ script: PROXY, args, env: ENV });
    assertEquals(r.code, 1, r.stderr);
    assertMatch(r.stderr, /did not give its cluster map/);
    assertEquals([...Deno.readDirSync(root)].map((e) => e.name), []);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
