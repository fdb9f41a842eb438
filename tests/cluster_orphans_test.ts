/**
 * `deno task cluster` killed with SIGKILL (no signal to forward) leaves nothing running: its
 * nodes and proxy stop once it is gone, and it stops when its `deno task` is gone. A data
 * directory another process still holds is named with that process, not blamed on a port.
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "@std/path";
import { runToEnd, type ServerProcess, spawnServer } from "./helpers/process.ts";
import { until } from "./helpers/poll.ts";
import { exists } from "./helpers/paths.ts";
import { lockDataDir } from "../shared/data_dir_lock.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLUSTER = new URL("../tasks/cluster.ts", import.meta.url);
const NODE = new URL("../node/main.ts", import.meta.url);
const ENV = { RINGKV_CLUSTER_SECRET: "cluster-orphans-secret-0123456789" };
const SMALL = ["--port", "0", "--node-port", "0", "--nodes", "1"];

/** The pids of `pid`'s children (Linux /proc); none once it has ended. */
async function childrenOf(pid: number): Promise<number[]> {
  const text = await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    return "";
  });
  return text.trim().split(/\s+/).filter((s) => s !== "").map(Number);
}

/** Whether `pid` runs (a zombie has ended: only its parent has not reaped it yet). */
async function running(pid: number): Promise<boolean> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    return "";
  });
  return stat !== "" && !/\) Z /.test(stat);
}

/** SIGKILL to each of `pids` still running: the cleanup after a failed assertion. */
function killAll(pids: Iterable<number>): void {
  for (const pid of pids) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
}

async function allStopped(pids: number[]): Promise<void> {
  for (const pid of pids) {
    await until(`process ${pid} has stopped`, async () => !(await running(pid)), 20_000);
  }
}

Deno.test("deno task cluster killed with SIGKILL takes its nodes and proxy with it; the next start works", async () => {
  const data = await Deno.makeTempDir({ prefix: "ringkv-orphans-" });
  let cluster: ServerProcess | undefined;
  let children: number[] = [];
  try {
    cluster = await spawnServer({ script: CLUSTER, args: [...SMALL, "--data", data], env: ENV });
    children = await childrenOf(cluster.pid);
    assertEquals(children.length, 2, "a node and a proxy");
    Deno.kill(cluster.pid, "SIGKILL"); // its status would wait for the output its children hold
    await allStopped(children);
    await cluster.status;
    // Their locks are free: the same command starts the cluster again.
    cluster = await spawnServer({ script: CLUSTER, args: [...SMALL, "--data", data], env: ENV });
    await cluster.stop();
  } finally {
    killAll(children);
    await cluster?.stop();
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("deno task cluster stops everything when its `deno task` is killed with SIGKILL", async () => {
  const data = await Deno.makeTempDir({ prefix: "ringkv-orphans-" });
  let task: ServerProcess | undefined;
  const seen = new Set<number>();
  try {
    task = await spawnServer({
      script: "cluster",
      denoArgs: ["task", "--quiet"],
      cwd: ROOT,
      args: [...SMALL, "--data", data],
      env: ENV,
    });
    const [cluster] = await childrenOf(task.pid);
    assert(cluster !== undefined, "deno task runs tasks/cluster.ts as its child");
    seen.add(cluster);
    for (const pid of await childrenOf(cluster)) seen.add(pid);
    assertEquals(seen.size, 3, "the task, a node and a proxy");
    // Not task.kill(): its status waits for its output, which the processes under it hold.
    Deno.kill(task.pid, "SIGKILL");
    await allStopped([...seen]);
  } finally {
    killAll(seen);
    await task?.stop();
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("a node follows RINGKV_PARENT_PID only when it is set: without it, it outlives its parent", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-orphans-" });
  const nodes: number[] = [];
  try {
    for (const watched of [true, false]) {
      // bash starts the node in the background and exits: the node is orphaned at once.
      const line = `exec 3>&1 1>/dev/null 2>&1; ${watched ? "RINGKV_PARENT_PID=$$ " : ""}` +
        `"${Deno.execPath()}" run -A "${NODE.pathname}" --id n1 --port 0 ` +
        `--data "${join(dir, `${watched}`)}" 3>&- & echo $! >&3`;
      const bash = await new Deno.Command("bash", {
        args: ["-c", line],
        env: ENV,
        stdout: "piped",
      }).output();
      const pid = Number(new TextDecoder().decode(bash.stdout).trim());
      nodes.push(pid);
      if (watched) {
        await allStopped([pid]);
      } else {
        // The watch polls twice a second: a node still up well after that was not told to stop.
        await until("the node has opened its data", () => exists(join(dir, "false", "wal.jsonl")));
        await new Promise((r) => setTimeout(r, 1_500));
        assert(await running(pid), "a standalone node stopped when its parent went");
      }
    }
  } finally {
    killAll(nodes);
    await allStopped(nodes);
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("deno task cluster on a node directory another process holds names that process, not --node-port", async () => {
  const data = await Deno.makeTempDir({ prefix: "ringkv-orphans-" });
  // As a node left running by a killed task: it holds both its port and its directory.
  const held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const lock = await lockDataDir(join(data, "n1"), "node");
  try {
    const port = String(held.addr.port);
    const r = await runToEnd({
      script: CLUSTER,
      args: ["--port", "0", "--node-port", port, "--nodes", "1", "--data", data],
      env: ENV,
      timeoutMs: 60_000,
      timeoutSignal: "SIGTERM",
    });
    assertEquals(r.code, 1, r.stderr);
    assertMatch(
      r.stderr,
      new RegExp(`^Cannot start the cluster: .*n1: it is in use by node process ${Deno.pid} `),
    );
    assertEquals(r.stderr.includes("--node-port"), false, r.stderr);
    assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
  } finally {
    lock.release();
    held.close();
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("deno task cluster on two node directories other processes hold names both (two nodes restarted by hand)", async () => {
  const data = await Deno.makeTempDir({ prefix: "ringkv-orphans-" });
  const locks = [
    await lockDataDir(join(data, "n1"), "node"),
    await lockDataDir(join(data, "n3"), "node"),
  ];
  try {
    const r = await runToEnd({
      script: CLUSTER,
      args: ["--port", "0", "--node-port", "0", "--nodes", "3", "--data", data],
      env: ENV,
      timeoutMs: 60_000,
      timeoutSignal: "SIGTERM",
    });
    assertEquals(r.code, 1, r.stderr);
    const lines = r.stderr.trim().split("\n");
    assertEquals(lines.length, 2, r.stderr);
    assertMatch(lines[0]!, /n1: it is in use by node process/);
    assertMatch(lines[1]!, /n3: it is in use by node process/);
  } finally {
    for (const lock of locks) lock.release();
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("a node whose RINGKV_PARENT_PID is not its parent says why it stops, not a silent exit 0", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-stray-parent-" });
  try {
    // Pid 1 is never this node's parent: the variable is stale or stray.
    const r = await runToEnd({
      script: NODE,
      args: ["--id", "n1", "--port", "0", "--data", join(dir, "n1")],
      env: { ...ENV, RINGKV_PARENT_PID: "1" },
      timeoutMs: 60_000,
    });
    assertEquals(r.code, 0, r.stderr);
    assertMatch(
      r.stdout + r.stderr,
      /stopping: process 1 \(RINGKV_PARENT_PID\) is no longer this node's parent/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
