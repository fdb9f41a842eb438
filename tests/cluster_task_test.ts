/**
 * `deno task cluster` as a first-time user gets it wrong: a stray word or a port that does
 * not exist is a usage error before anything starts, a node port in use names the task's
 * own flag, and a proxy that dies is reported (exit 1) instead of a quiet "Stopped".
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "@std/path";
import { runToEnd, type ServerProcess, spawnServer } from "./helpers/process.ts";
import { until } from "./helpers/poll.ts";
import { exists } from "./helpers/paths.ts";
import { denoCommand } from "../shared/startup_hint.ts";

/** How the task prints the Deno of its restart lines (this test's own binary, or npx). */
const DENO = denoCommand(Deno.execPath());

const CLUSTER = new URL("../tasks/cluster.ts", import.meta.url);
const ENV = { RINGKV_CLUSTER_SECRET: "cluster-task-secret-0123456789" };

/**
 * Runs `deno task cluster` until it ends; one still running at the deadline (it started a
 * cluster it should have refused) gets SIGTERM, which stops its children too.
 */
function clusterToEnd(args: string[], env: Record<string, string> = {}) {
  return runToEnd({
    script: CLUSTER,
    args,
    env: { ...ENV, ...env },
    timeoutMs: 60_000,
    timeoutSignal: "SIGTERM",
  });
}

Deno.test("deno task cluster refuses a stray word or a port that does not exist: exit 2, nothing written", async () => {
  const root = await Deno.makeTempDir({ prefix: "ringkv-cluster-task-" });
  try {
    const cases: [string[], RegExp][] = [
      [["-port", "0"], /^Cannot read "-port": deno task cluster takes only --options/],
      [["--port", "99999"], /^Cannot use --port 99999: it must be 0 to 65535/],
      [["--node-port", "65535", "--nodes", "3"], /^Cannot use --node-port 65535: .* 0 to 65533/],
      [["--replicas", "5"], /^Cannot keep 5 replicas .*; give --nodes 5 or --replicas 3$/],
      // QA: it said "give --nodes 1 or --replicas 3", and --nodes 1 fails the same way.
      [["--replicas", "0"], /^Cannot keep 0 replicas .* --replicas must be 1 to --nodes \(3\)$/],
      // QA: the proxy failed on "another process listens on port" that was the task's own node.
      [
        ["--port", "47402", "--node-port", "47400"],
        /^Cannot use --port 47402: node n3 gets that port \(--node-port 47400 gives the nodes ports 47400 to 47402\); give another --port or --node-port$/,
      ],
    ];
    for (const [i, [args, message]] of cases.entries()) {
      const data = join(root, `d${i}`);
      const r = await clusterToEnd([...args, "--data", data]);
      assertEquals(r.code, 2, r.stderr);
      assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
      assertMatch(r.stderr.trim(), message);
      assertEquals(await exists(data), false, `${data} was created`);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("deno task cluster with a node port in use names --node-port, and a file in a node's place", async () => {
  const root = await Deno.makeTempDir({ prefix: "ringkv-cluster-task-" });
  const held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = String(held.addr.port);
    const taken = await clusterToEnd(["--port", "0", "--node-port", port, "--data", root]);
    assertEquals(taken.code, 1, taken.stderr);
    assertMatch(
      taken.stderr,
      /Cannot start the cluster: n1 exited .*--node-port N moves the nodes/,
    );
    const data = join(root, "file");
    await Deno.mkdir(data);
    await Deno.writeTextFile(join(data, "n1"), "not a directory");
    const file = await clusterToEnd(["--port", "0", "--node-port", "0", "--data", data]);
    assertEquals(file.code, 1, file.stderr);
    assertMatch(file.stderr, /Cannot start the cluster: .*n1 is a file, not a directory/);
  } finally {
    held.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("deno task cluster refuses an empty admin-token or cluster-secret file instead of running without it", async () => {
  // QA: an emptied data/admin-token started a proxy with no admin token (every admin call
  // 403, the welcome showing a blank token); an empty data/cluster-secret, nodes with none.
  const root = await Deno.makeTempDir({ prefix: "ringkv-cluster-task-" });
  try {
    for (const file of ["admin-token", "cluster-secret"]) {
      const data = join(root, file);
      await Deno.mkdir(data);
      await Deno.writeTextFile(join(data, file), "\n");
      const r = await runToEnd({
        script: CLUSTER,
        args: ["--port", "0", "--node-port", "0", "--nodes", "1", "--data", data],
        // An empty variable is no token: the file is read.
        env: { RINGKV_CLUSTER_SECRET: "", RINGKV_ADMIN_TOKEN: "" },
        timeoutMs: 60_000,
        timeoutSignal: "SIGTERM",
      });
      assertEquals(r.code, 2, r.stderr);
      assertMatch(r.stderr, new RegExp(`^Cannot use ${data}/${file}: it is empty`));
      assertEquals([...Deno.readDirSync(data)].map((e) => e.name), [file], `${data} was written`);
    }
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** The pids of `pid`'s children with `needle` in their command line (Linux /proc). */
async function childPids(pid: number, needle: string): Promise<number[]> {
  const text = await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`);
  const pids = text.trim().split(/\s+/).filter((s) => s !== "").map(Number);
  const found: number[] = [];
  for (const child of pids) {
    const cmdline = await Deno.readTextFile(`/proc/${child}/cmdline`).catch((err) => {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
      return "";
    });
    if (cmdline.includes(needle)) found.push(child);
  }
  return found;
}

Deno.test("deno task cluster whose proxy is killed says so, stops its nodes and exits 1", async () => {
  const data = await Deno.makeTempDir({ prefix: "ringkv-cluster-task-" });
  let cluster: ServerProcess | undefined;
  try {
    cluster = await spawnServer({
      script: CLUSTER,
      args: ["--port", "0", "--node-port", "0", "--nodes", "1", "--data", data],
      env: ENV,
    });
    const [proxy] = await childPids(cluster.pid, "proxy/main.ts");
    const [node] = await childPids(cluster.pid, "node/main.ts");
    assert(proxy !== undefined && node !== undefined, "no proxy or node child found");
    Deno.kill(proxy, "SIGKILL");
    const status = await cluster.status;
    assertEquals(status.code, 1, cluster.stderrLines.join("\n"));
    assert(
      cluster.stderrLines.some((l) =>
        /^\[proxy\] exited with code 137: stopping the nodes/.test(l)
      ),
      cluster.stderrLines.join("\n"),
    );
    await until(`node ${node} has exited`, async () => !(await exists(`/proc/${node}`)));
  } finally {
    await cluster?.stop();
    await Deno.remove(data, { recursive: true });
  }
});

/** The status of GET `url` with no token, or undefined while nothing answers there. */
async function statusWithoutToken(url: string): Promise<number | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(2_000) });
    await res.body?.cancel();
    return res.status;
  } catch {
    return undefined;
  }
}

Deno.test("deno task cluster given RINGKV_CLUSTER_SECRET prints a node restart line that keeps the node's secret", async () => {
  // QA: the line read the secret with $(cat data/cluster-secret), a file the task writes only
  // when it makes the secret; run as printed, the node came back with none, its API open.
  const data = await Deno.makeTempDir({ prefix: "ringkv-cluster-task-" });
  let cluster: ServerProcess | undefined;
  let restarted: Deno.ChildProcess | undefined;
  try {
    cluster = await spawnServer({
      script: CLUSTER,
      args: ["--port", "0", "--node-port", "0", "--nodes", "1", "--data", data],
      env: ENV,
    });
    const [node] = await childPids(cluster.pid, "node/main.ts");
    assert(node !== undefined, "no node child found");
    Deno.kill(node, "SIGKILL");
    const lines = cluster.stderrLines;
    const said = () => lines.join("\n");
    await until(said, () => lines.some((l) => l.includes(`${DENO} run`)));
    const printed = lines.find((l) => l.includes(`${DENO} run`))!;
    const line = printed.replace(`${DENO} `, `exec ${Deno.execPath()} `);
    const port = /--port (\d+)/.exec(line)?.[1];
    assert(port !== undefined, line);
    const { RINGKV_CLUSTER_SECRET: _, ...without } = Deno.env.toObject();
    restarted = new Deno.Command("bash", {
      args: ["-c", line],
      env: { ...without, ...ENV },
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const url = `http://127.0.0.1:${port}/internal/cluster`;
    // Up once it answers other than 503 (still loading its data).
    const up = async () => ![undefined, 503].includes(await statusWithoutToken(url));
    await until(said, up, 30_000);
    assertEquals(await statusWithoutToken(url), 401, line);
    restarted.kill("SIGTERM");
    await restarted.status;
    restarted = undefined;
    // In a shell without the variable, the line stops instead of starting an open node.
    const unset = await new Deno.Command("bash", {
      args: ["-c", line],
      env: without,
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "piped",
      signal: AbortSignal.timeout(30_000),
    }).output();
    assertEquals(unset.code !== 0, true);
    assertMatch(new TextDecoder().decode(unset.stderr), /RINGKV_CLUSTER_SECRET: set it as/);
  } finally {
    if (restarted !== undefined) {
      restarted.kill("SIGKILL");
      await restarted.status;
    }
    await cluster?.stop();
    await Deno.remove(data, { recursive: true });
  }
});

/** Runs a printed shell line with `env` and returns curl's status code (appended with -w). */
async function statusOf(line: string, env: Record<string, string>): Promise<string> {
  const bash = new Deno.Command("bash", {
    args: ["-c", `${line} -s -o /dev/null -w '%{http_code}'`],
    env,
    stdin: "null",
    stdout: "piped",
    signal: AbortSignal.timeout(30_000),
  });
  return new TextDecoder().decode((await bash.output()).stdout);
}

Deno.test("deno task cluster with RINGKV_CLIENT_TOKEN prints curl lines that send it, and they work", async () => {
  const data = await Deno.makeTempDir({ prefix: "ringkv-cluster-task-" });
  const env = { ...ENV, RINGKV_CLIENT_TOKEN: "client-token-0123456789" };
  let cluster: ServerProcess | undefined;
  try {
    const bad = await clusterToEnd(["--data", join(data, "bad")], { RINGKV_CLIENT_TOKEN: "a b" });
    assertEquals(bad.code, 2, bad.stderr);
    assertMatch(bad.stderr, /^Cannot use RINGKV_CLIENT_TOKEN: it contains/);
    cluster = await spawnServer({
      script: CLUSTER,
      args: ["--port", "0", "--node-port", "0", "--nodes", "1", "--data", data],
      env,
    });
    const lines = cluster.stdoutLines;
    await until("the welcome is printed", () => lines.includes("Ctrl-C stops everything."));
    const tried = lines.slice(lines.indexOf("Try:") + 1);
    const codes = [];
    for (const line of tried.filter((l) => l.trim().startsWith("curl"))) {
      codes.push(await statusOf(line, env));
    }
    assertEquals(codes, ["201", "200", "200", "200"], tried.join("\n"));
    // The kv line names this cluster's URL and token file (QA: kv called 8080 for ever).
    const kv = tried.find((l) => l.includes(" kv status"));
    assert(kv !== undefined, tried.join("\n"));
    await Deno.mkdir(join(data, "elsewhere"));
    const ran = await new Deno.Command("bash", {
      args: ["-c", kv.trim()],
      cwd: join(data, "elsewhere"), // it works from any directory
      env: { ...env, RINGKV_ADMIN_TOKEN: "", RINGKV_URL: "" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
      signal: AbortSignal.timeout(60_000),
    }).output();
    const out = new TextDecoder().decode(ran.stdout);
    const err = new TextDecoder().decode(ran.stderr);
    assertEquals(ran.code, 0, `${kv}\n${out}\n${err}`);
    assertMatch(out, /epoch/, out);
    assertEquals(lines.some((l) => l.includes("warning:")), false, lines.join("\n"));
    // A node's directory holds every value: for the owner only.
    assertEquals((await Deno.stat(join(data, "n1"))).mode! & 0o777, 0o700);
  } finally {
    await cluster?.stop();
    await Deno.remove(data, { recursive: true });
  }
});

/** Whether this machine has IPv6 loopback (some containers do not). */
function hasIpv6(): boolean {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
}

Deno.test({
  name: "deno task cluster --host :: (every address) starts, and prints and maps URLs one can call",
  ignore: !hasIpv6(),
  fn: async () => {
    const data = await Deno.makeTempDir({ prefix: "ringkv-cluster-task-" });
    let cluster: ServerProcess | undefined;
    try {
      cluster = await spawnServer({
        script: CLUSTER,
        args: ["--host", "::", "--port", "0", "--node-port", "0", "--nodes", "1", "--data", data],
        env: ENV,
      });
      const out = cluster.stdoutLines;
      await until("the welcome is printed", () => out.includes("Ctrl-C stops everything."));
      const all = [...out, ...cluster.stderrLines].join("\n");
      // The wildcard is where they listen, not an address to call: the map and the curl lines
      // name loopback.
      assert(!all.includes("[::]:"), all);
      assertMatch(all, /nodes n1 http:\/\/\[::1\]:\d+/);
      // Without RINGKV_CLIENT_TOKEN, /kv is open to the network: the welcome says so.
      assertMatch(all, /warning: .*every machine that reaches port \d+ .*RINGKV_CLIENT_TOKEN/);
      const tried = out.slice(out.indexOf("Try:") + 1).filter((l) => l.trim().startsWith("curl"));
      const codes = [];
      for (const line of tried) codes.push(await statusOf(line, ENV));
      assertEquals(codes, ["201", "200", "200", "200"], tried.join("\n"));
    } finally {
      await cluster?.stop();
      await Deno.remove(data, { recursive: true });
    }
  },
});

Deno.test("a --host that does not resolve stops the node and the proxy with one line each, no stack trace", async () => {
  const root = await Deno.makeTempDir({ prefix: "ringkv-cluster-task-" });
  const host = "nosuchhost.invalid";
  try {
    const cluster = await clusterToEnd([
      ...["--host", host, "--port", "0", "--node-port", "0", "--nodes", "1"],
      ...["--data", join(root, "c")],
    ]);
    assertEquals(cluster.code, 1, cluster.stderr);
    assertMatch(
      cluster.stderr,
      /^\[n1\] ringkv node: Cannot start the node on nosuchhost\.invalid:0: /,
    );
    assertMatch(cluster.stderr, /Give --host an address of this machine/);
    // QA: the task added "--node-port N moves the nodes to ports N, N+1, ..." to any node that
    // failed to start; that translates a node's "--port N" advice, which a bad --host is not.
    assertEquals(cluster.stderr.includes("--node-port"), false, cluster.stderr);
    assertEquals(/Uncaught| {4}at /.test(cluster.stderr), false, cluster.stderr);
    const proxy = await runToEnd({
      script: new URL("../proxy/main.ts", import.meta.url),
      args: [
        "--host",
        host,
        "--port",
        "0",
        "--data",
        join(root, "p"),
        "--nodes",
        "http://127.0.0.1:1",
      ],
      env: { ...ENV, RINGKV_ADMIN_TOKEN: "admin-token-0123456789" },
      timeoutMs: 60_000,
    });
    assertEquals(proxy.code, 1, proxy.stderr);
    assertMatch(proxy.stderr, /^Cannot start the proxy on nosuchhost\.invalid:0: .*Give --host/);
    assertEquals(proxy.stderr.trim().split("\n").length, 1, proxy.stderr);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

/** The pids of `pid`'s children (Linux /proc); empty once it has none or has ended. */
async function allChildren(pid: number): Promise<number[]> {
  const text = await Deno.readTextFile(`/proc/${pid}/task/${pid}/children`).catch((err) => {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    return "";
  });
  return text.trim().split(/\s+/).filter((s) => s !== "").map(Number);
}

/** `signal` (SIGKILL: the cleanup after a failed assertion) to `pid` if it still runs. */
function killIfRunning(pid: number, signal: Deno.Signal = "SIGKILL"): void {
  try {
    Deno.kill(pid, signal);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err; // it has exited
  }
}

/**
 * Starts `deno task cluster` on a new `--data` and, once its first node is spawned (the cluster
 * still starting), sends `signal` to the task, and first to its nodes with `toNodes` (a
 * terminal's Ctrl-C reaches the whole process group); waits until the task and every node it
 * spawned have exited. The task's exit and output.
 */
/** Whether process `pid` has ended (gone, or a zombie its parent has yet to reap). */
async function hasEnded(pid: number): Promise<boolean> {
  try {
    const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
    return stat.slice(stat.lastIndexOf(")") + 2).startsWith("Z");
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return true;
    throw err;
  }
}

async function signalWhileStarting(signal: Deno.Signal, toNodes: boolean) {
  const data = await Deno.makeTempDir({ prefix: "ringkv-cluster-task-" });
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLUSTER.pathname, "--port", "0", "--node-port", "0", "--data", data],
    env: ENV,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const output = child.output();
  const seen = new Set<number>();
  let ended = false; // its pid may be reused once it has been reaped
  try {
    await until("the first node is spawned", async () => {
      for (const pid of await allChildren(child.pid)) seen.add(pid);
      return seen.size > 0;
    });
    if (toNodes) {
      for (const pid of seen) killIfRunning(pid, signal);
      // The nodes' exit reaches the task before its own signal does (as CI once saw).
      for (const pid of seen) await until(`node ${pid} has ended`, () => hasEnded(pid));
      await new Promise((resolve) => setTimeout(resolve, 200)); // for the task to see it
    }
    child.kill(signal);
    const { code, signal: killedBy, stdout, stderr } = await output;
    ended = true;
    for (const pid of seen) {
      await until(`node ${pid} has exited`, async () => !(await exists(`/proc/${pid}`)));
    }
    const decoder = new TextDecoder();
    const left = [...Deno.readDirSync(data)].map((e) => e.name).sort();
    return {
      code,
      killedBy,
      stdout: decoder.decode(stdout),
      stderr: decoder.decode(stderr),
      left,
    };
  } finally {
    for (const pid of ended ? seen : [...seen, child.pid]) killIfRunning(pid);
    await output.catch(() => {});
    await Deno.remove(data, { recursive: true });
  }
}

Deno.test("deno task cluster given SIGTERM while its nodes start stops the ones started, leaving none, and takes back what its first start wrote", async () => {
  // QA: signalled alone (the signal did not reach the nodes), it printed "Stopped. Run the same
  // command again to come back with all the data." and left the tokens, n1-n3 and the lock.
  const { code, killedBy, stdout, stderr, left } = await signalWhileStarting("SIGTERM", false);
  assertEquals(killedBy, null, "the task handled the signal");
  assertEquals(code, 0, stderr);
  assert(stdout.includes("Stopped while starting"), stdout);
  assertEquals(left, [], "a first start stopped by a signal leaves the empty directory empty");
});

Deno.test("deno task cluster stopped by Ctrl-C while its nodes start (the signal reaches them too) says it stopped and exits 0, not a failed start", async () => {
  const { code, stdout, stderr, left } = await signalWhileStarting("SIGINT", true);
  assertEquals(code, 0, stderr);
  assert(!stderr.includes("Cannot start"), stderr);
  assert(stdout.includes("Stopped while starting"), stdout);
  assertEquals(left, [], "a first start stopped by a signal leaves the empty directory empty");
});

Deno.test("deno task cluster whose first start fails (the proxy's port is taken) leaves nothing in --data; a later failed start keeps the data", async () => {
  const root = await Deno.makeTempDir({ prefix: "ringkv-cluster-task-" });
  const held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = String(held.addr.port);
    const missing = join(root, "new");
    const first = await clusterToEnd(["--port", port, "--node-port", "0", "--data", missing]);
    assertEquals(first.code, 1, first.stderr);
    assertEquals(await exists(missing), false, "a directory this start made is removed");
    const empty = join(root, "empty");
    await Deno.mkdir(empty);
    const again = await clusterToEnd(["--port", port, "--node-port", "0", "--data", empty]);
    assertEquals(again.code, 1, again.stderr);
    assertEquals([...Deno.readDirSync(empty)], [], "an empty directory given is left empty");
    // A directory with a cluster's data in it keeps all of it.
    await Deno.mkdir(join(empty, "n1"));
    await Deno.writeTextFile(join(empty, "n1", "keep"), "data");
    const used = await clusterToEnd(["--port", port, "--node-port", "0", "--data", empty]);
    assertEquals(used.code, 1, used.stderr);
    assertEquals(await Deno.readTextFile(join(empty, "n1", "keep")), "data");
    assert(
      await exists(join(empty, "n2")),
      "the failed start's own files stay in a used directory",
    );
  } finally {
    held.close();
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("deno task cluster on a relative --data prints a node restart line that works from any directory", async () => {
  // QA: the line read ./data/cluster-secret and gave --data ./data/n1: run elsewhere, the node
  // started with no secret on a new empty directory, and the proxy answered 404 for its keys.
  const root = await Deno.makeTempDir({ prefix: "ringkv-cluster-task-" });
  const [home, elsewhere] = [join(root, "home"), join(root, "elsewhere")];
  await Deno.mkdir(home);
  await Deno.mkdir(elsewhere);
  let cluster: ServerProcess | undefined;
  let restarted: Deno.ChildProcess | undefined;
  try {
    cluster = await spawnServer({
      script: CLUSTER,
      args: ["--port", "0", "--node-port", "0", "--nodes", "1", "--data", "./data"],
      env: { RINGKV_CLUSTER_SECRET: "" }, // an empty variable is none: the task makes the file
      cwd: home,
    });
    const put = await fetch(`${cluster.url}/kv/kept`, { method: "PUT", body: "value" });
    assertEquals(put.status, 201, await put.text());
    const [node] = await childPids(cluster.pid, "node/main.ts");
    assert(node !== undefined, "no node child found");
    Deno.kill(node, "SIGKILL");
    const lines = cluster.stderrLines;
    const said = () => lines.join("\n");
    await until(said, () => lines.some((l) => l.includes(`${DENO} run`)));
    const printed = lines.find((l) => l.includes(`${DENO} run`))!;
    assertMatch(printed, new RegExp(`cat ${home}/data/cluster-secret\\).* --data ${home}/data/n1`));
    const line = printed.replace(`${DENO} `, `exec ${Deno.execPath()} `);
    const { RINGKV_CLUSTER_SECRET: _, ...without } = Deno.env.toObject();
    restarted = new Deno.Command("bash", {
      args: ["-c", line],
      cwd: elsewhere,
      env: without,
      clearEnv: true,
      stdin: "null",
      stdout: "null",
      stderr: "null",
    }).spawn();
    const get = async () => {
      const res = await fetch(`${cluster!.url}/kv/kept`);
      return [res.status, await res.text()] as const;
    };
    // Its keys answer 503 until the node is back, then its value: never a 404.
    await until(said, async () => (await get())[0] !== 503, 30_000);
    assertEquals(await get(), [200, "value"]);
    const port = /--port (\d+)/.exec(line)![1];
    assertEquals(await statusWithoutToken(`http://127.0.0.1:${port}/internal/cluster`), 401);
    assertEquals([...Deno.readDirSync(elsewhere)], [], "the node wrote where the line was run");
  } finally {
    if (restarted !== undefined) {
      restarted.kill("SIGTERM");
      await restarted.status;
    }
    await cluster?.stop();
    await Deno.remove(root, { recursive: true });
  }
});
