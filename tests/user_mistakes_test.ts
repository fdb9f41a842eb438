/**
 * What a user runs by hand or by mistake is refused or explained (issue 14): usage errors
 * exit 2 with a suggestion, a taken port is named with its remedy, and `deno task node`
 * with a `--data` outside ./data prints the one command that works, which does.
 */
import { assertEquals, assertMatch } from "@std/assert";
import { join } from "@std/path";
import { runToEnd, spawnServer } from "./helpers/process.ts";
import { exists } from "./helpers/paths.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SCRIPTS = {
  node: new URL("../node/main.ts", import.meta.url),
  proxy: new URL("../proxy/main.ts", import.meta.url),
  cluster: new URL("../tasks/cluster.ts", import.meta.url),
  kv: new URL("../tasks/kv.ts", import.meta.url),
};
const ENV = { RINGKV_CLUSTER_SECRET: "mistakes-secret-0123456789" };

/** Splits a POSIX shell line of plain and '...' words (what deno.json and the hints use). */
function words(line: string): string[] {
  const out: string[] = [];
  for (const m of line.matchAll(/(?:'((?:[^']|'\\'')*)'|(\S+))/g)) {
    out.push(m[1] !== undefined ? m[1].replaceAll("'\\''", "'") : m[2]!);
  }
  return out;
}

/** `NAME=v deno run FLAGS script ARGS` as spawn options, run from the repository root. */
function fromCommandLine(line: string) {
  const w = words(line);
  const env: Record<string, string> = { ...ENV };
  while (/^[A-Z_]+=/.test(w[0]!)) {
    const [name, value] = w.shift()!.split("=");
    env[name!] = value!;
  }
  assertEquals(w.splice(0, 2), ["deno", "run"]);
  const script = w.findIndex((x) => x.endsWith("main.ts"));
  return {
    env,
    cwd: ROOT,
    denoArgs: ["run", ...w.slice(0, script)],
    script: join(ROOT, w[script]!),
    args: w.slice(script + 1),
  };
}

Deno.test("usage errors of node, proxy, cluster and kv exit 2 and suggest the flag meant", async () => {
  const cases: [keyof typeof SCRIPTS, string[], string][] = [
    ["node", ["--prot", "7001"], "--port"],
    ["proxy", ["--nodse", "http://127.0.0.1:1"], "--nodes"],
    ["cluster", ["--replicsa", "2"], "--replicas"],
    ["kv", ["get", "k", "--urll", "http://127.0.0.1:1"], "--url"],
    ["kv", ["stauts"], "status"],
  ];
  for (const [name, args, meant] of cases) {
    const r = await runToEnd({ script: SCRIPTS[name], args, env: ENV, timeoutMs: 60_000 });
    assertEquals(r.code, 2, `${name}: ${r.stderr}`);
    assertMatch(r.stderr, new RegExp(`did you mean ${meant}\\?`));
  }
  const range = await runToEnd({ script: SCRIPTS.node, args: ["--port", "99999"], env: ENV });
  assertEquals(range.code, 2, range.stderr);
  const replicas = await runToEnd({
    script: SCRIPTS.cluster,
    args: ["--replicas", "5", "--nodes", "3", "--data", "/nonexistent/never-written"],
    env: ENV,
  });
  assertEquals(replicas.code, 2, replicas.stderr);
  assertMatch(replicas.stderr, /Cannot keep 5 replicas of each key on 3 node\(s\)/);
});

Deno.test("a node and a proxy given a cluster secret with a space exit 2 before they start, naming it", async () => {
  const env = { RINGKV_CLUSTER_SECRET: "two words" };
  const dir = await Deno.makeTempDir({ prefix: "ringkv-secret-" });
  try {
    for (const script of [SCRIPTS.node, SCRIPTS.proxy]) {
      const args = ["--port", "0", "--host", "127.0.0.1", "--data", join(dir, "d")];
      const r = await runToEnd({ script, args, env, timeoutMs: 60_000 });
      assertEquals(r.code, 2, r.stderr);
      assertMatch(
        r.stderr,
        /Cannot use --cluster-secret \(or RINGKV_CLUSTER_SECRET\): it contains/,
      );
    }
    assertEquals([...Deno.readDirSync(dir)], []); // refused before anything was written
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * Runs `deno task cluster` until it ends; one that is still running at the deadline (it
 * started a cluster it should have refused) gets SIGTERM, which stops its children too.
 */
async function clusterToEnd(args: string[], env: Record<string, string>) {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", SCRIPTS.cluster.pathname, ...args],
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGTERM"), 60_000);
  try {
    const { code, stderr } = await child.output();
    return { code, stderr: new TextDecoder().decode(stderr) };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("deno task cluster refuses a token or secret a Bearer header cannot carry: exit 2, one line, nothing written", async () => {
  const root = await Deno.makeTempDir({ prefix: "ringkv-cluster-token-" });
  const ports = ["--port", "0", "--node-port", "0", "--nodes", "1"];
  try {
    const cases = [
      [{ RINGKV_CLUSTER_SECRET: "x y" }, /^Cannot use RINGKV_CLUSTER_SECRET: it contains/],
      [{ RINGKV_ADMIN_TOKEN: "x y" }, /^Cannot use RINGKV_ADMIN_TOKEN: it contains/],
      [{ RINGKV_ADMIN_TOKEN: "p\u00e4sswort" }, /^Cannot use RINGKV_ADMIN_TOKEN: it contains/],
      [
        { RINGKV_CLIENT_TOKEN: "same-1234", RINGKV_ADMIN_TOKEN: "same-1234" },
        /^Cannot use the same value for RINGKV_ADMIN_TOKEN and RINGKV_CLIENT_TOKEN/,
      ],
    ] as const;
    for (const [i, [env, message]] of cases.entries()) {
      const data = join(root, `d${i}`);
      const r = await clusterToEnd([...ports, "--data", data], env);
      assertEquals(r.code, 2, r.stderr);
      assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
      assertMatch(r.stderr, message);
      assertEquals(r.stderr.includes(Object.values(env)[0]!), false, r.stderr);
      assertEquals(await exists(data), false, `${data} was created`);
    }
    const edited = join(root, "edited"); // a hand-edited data/admin-token with a space inside
    await Deno.mkdir(edited);
    await Deno.writeTextFile(join(edited, "admin-token"), "x y\n");
    const r = await clusterToEnd([...ports, "--data", edited], {});
    assertEquals(r.code, 2, r.stderr);
    assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
    assertMatch(r.stderr, /^Cannot use .*edited\/admin-token: it contains/);
    assertEquals([...Deno.readDirSync(edited)].map((e) => e.name), ["admin-token"]);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("a port another process holds is named, with --port N or stopping it as the remedy", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-mistakes-" });
  const first = await spawnServer({
    script: SCRIPTS.node,
    args: ["--port", "0", "--data", join(dir, "a")],
    env: ENV,
  });
  try {
    const cases = [["node", []], ["proxy", ["--nodes", first.url]]] as const;
    for (const [name, args] of cases) {
      const r = await runToEnd({
        script: SCRIPTS[name],
        args: [
          ...args,
          "--port",
          String(first.port),
          "--data",
          join(dir, name),
        ],
        env: ENV,
        timeoutMs: 60_000,
      });
      assertEquals(r.code, 1, r.stderr);
      assertMatch(
        r.stderr,
        new RegExp(`127\\.0\\.0\\.1:${first.port}: the address is already in use .*--port N.*stop`),
      );
    }
  } finally {
    await first.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/** Runs a task's line with `args`; it must refuse and print the command that works. */
async function refusedWithCommand(taskLine: string, args: string[]): Promise<string> {
  const refused = await runToEnd({ ...fromCommandLine(taskLine), args, timeoutMs: 60_000 });
  assertEquals(refused.code, 1, refused.stderr);
  assertEquals(refused.stderr.includes("--allow-write flag"), false, refused.stderr);
  const command = /run from the repository root:\n {2}(.+)\n/.exec(refused.stderr)?.[1];
  assertEquals(typeof command, "string", refused.stderr);
  return command!;
}

Deno.test("deno task node/proxy --data outside ./data print the one command that works, and it does", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-mistakes-" });
  const tasks = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks;
  const data = (role: string) => join(dir, role, "it's here");
  const started = [];
  try {
    const nodeArgs = ["--port", "0", "--data", data("node")];
    started.push(
      await spawnServer(fromCommandLine(await refusedWithCommand(tasks.node, nodeArgs))),
    );
    const proxyArgs = ["--port", "0", "--data", data("proxy"), "--nodes", started[0]!.url];
    const proxyLine = await refusedWithCommand(tasks.proxy, proxyArgs);
    started.push(await spawnServer(fromCommandLine(proxyLine)));
    for (const role of ["node", "proxy"]) {
      assertEquals((await Deno.stat(join(data(role), "ringkv.lock"))).isFile, true);
    }
    const res = await fetch(`${started[1]!.url}/kv/k`, { method: "PUT", body: "v" });
    assertEquals(res.status, 201, await res.text());
  } finally {
    for (const s of started.reverse()) await s.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a proxy says which map it starts from and refuses --nodes of another cluster than its --data holds", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-mistakes-" });
  const running = [];
  const proxyArgs = (nodes: string) => ["--port", "0", "--data", join(dir, "p"), "--nodes", nodes];
  try {
    for (const id of ["a1", "b1"]) {
      running.push(
        await spawnServer({
          script: SCRIPTS.node,
          args: ["--id", id, "--port", "0", "--data", join(dir, id)],
          env: ENV,
        }),
      );
    }
    const [a, b] = running;
    const first = await spawnServer({ script: SCRIPTS.proxy, args: proxyArgs(a!.url), env: ENV });
    await first.stop();
    assertMatch(first.stdoutLines.join("\n"), /cluster map new, of the --nodes: epoch 1, .*a1 /);
    const again = await spawnServer({ script: SCRIPTS.proxy, args: proxyArgs(a!.url), env: ENV });
    await again.stop();
    assertMatch(again.stdoutLines.join("\n"), /cluster map stored in .*\/p: epoch 1, .*a1 /);

    const other = await runToEnd({
      script: SCRIPTS.proxy,
      args: proxyArgs(b!.url),
      env: ENV,
      timeoutMs: 60_000,
    });
    assertEquals(other.code, 2, other.stderr);
    assertMatch(other.stderr, /\/p holds the map of another cluster \(epoch 1: a1 http/);
    assertMatch(other.stderr, /\(node b1\).*another --data directory/);

    const fewer = await runToEnd({
      script: SCRIPTS.proxy,
      args: [
        ...proxyArgs(b!.url).map((a) => a === join(dir, "p") ? join(dir, "p3") : a),
        "--replicas",
        "3",
      ],
      env: ENV,
      timeoutMs: 60_000,
    });
    assertEquals(fewer.code, 2, fewer.stderr);
    assertMatch(fewer.stderr, /keeping 3 replicas of each key on 1 node\(s\).*--force/);
  } finally {
    for (const p of running.reverse()) await p.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

/**
 * A server started from a printed shell `line` by `sh` itself, so `${VAR:?...}` words expand as
 * they would for the operator (`exec env`: the line may start with `NAME=value` words, and the
 * pid stopped is deno's). spawnServer's own deno and script words land in `$0...`, unused.
 */
function spawnShellLine(line: string, env: Record<string, string>) {
  return spawnServer({ script: "", wrapper: ["sh", "-c", `exec env ${line}`], env, cwd: ROOT });
}

Deno.test("a proxy and a node refused a --data outside ./data print no token, and the printed command starts them with the tokens from the environment", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-mistakes-" });
  const tasks = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks;
  const tokens = {
    RINGKV_ADMIN_TOKEN: "admin-token-never-printed-0123",
    RINGKV_CLUSTER_SECRET: "cluster-secret-never-printed-0123",
  };
  const started = [];
  try {
    const nodeArgs = ["--port", "0", "--data", join(dir, "n"), "--cluster-secret"];
    const nodeLine = await refusedWithCommand(tasks.node, [
      ...nodeArgs,
      tokens.RINGKV_CLUSTER_SECRET,
    ]);
    started.push(await spawnShellLine(nodeLine, tokens));
    const proxyArgs = [
      "--admin-token",
      tokens.RINGKV_ADMIN_TOKEN,
      `--cluster-secret=${tokens.RINGKV_CLUSTER_SECRET}`,
      ...["--port", "0", "--data", join(dir, "p"), "--nodes", started[0]!.url],
    ];
    const refused = await runToEnd({ ...fromCommandLine(tasks.proxy), args: proxyArgs });
    assertEquals(refused.code, 1, refused.stderr);
    for (const token of Object.values(tokens)) {
      assertEquals(refused.stderr.includes(token), false, refused.stderr);
    }
    assertMatch(refused.stderr, /--admin-token, --cluster-secret not shown: .*RINGKV_ADMIN_TOKEN/);
    const proxyLine = /run from the repository root:\n {2}(.+)\n/.exec(refused.stderr)![1]!;
    started.push(await spawnShellLine(proxyLine, tokens));
    const admin = { authorization: `Bearer ${tokens.RINGKV_ADMIN_TOKEN}` };
    const cluster = await fetch(`${started[1]!.url}/cluster`, { headers: admin });
    assertEquals(cluster.status, 200, await cluster.text()); // the admin token arrived
    const put = await fetch(`${started[1]!.url}/kv/k`, { method: "PUT", body: "v" });
    assertEquals(put.status, 201, await put.text()); // and the secret the node expects
  } finally {
    for (const s of started.reverse()) await s.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

const SHM = "/dev/shm";
const hasShm = await exists(SHM);

Deno.test({
  name:
    "deno task node --data /dev/shm/DIR says Deno needs --allow-all there and prints a command that works",
  ignore: !hasShm,
  async fn() {
    const tasks = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks;
    const data = join(SHM, `ringkv-mistakes-${crypto.randomUUID()}`);
    let node;
    try {
      const refused = await runToEnd({
        ...fromCommandLine(tasks.node),
        args: ["--port", "0", "--data", data],
        timeoutMs: 60_000,
      });
      assertEquals(refused.code, 1, refused.stderr);
      assertMatch(refused.stderr, /only when it runs with --allow-all.*directory elsewhere/);
      assertEquals(refused.stderr.includes("    at "), false, refused.stderr);
      assertEquals(await exists(data), false);
      const line = /run from the repository root:\n {2}(.+)\n/.exec(refused.stderr)![1]!;
      assertMatch(line, / deno run --allow-all /);
      node = await spawnShellLine(line, ENV);
      assertEquals((await Deno.stat(join(data, "ringkv.lock"))).isFile, true);
    } finally {
      await node?.stop();
      await Deno.remove(data, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("deno task cluster --data under /dev, /proc or /sys (or a symlink there) exits 1 with one line: Deno needs --allow-all, use another directory", async () => {
  const tasks = JSON.parse(await Deno.readTextFile(join(ROOT, "deno.json"))).tasks;
  const w = words(tasks.cluster);
  const denoArgs = w.slice(1, w.indexOf("tasks/cluster.ts"));
  const dir = await Deno.makeTempDir({ prefix: "ringkv-mistakes-" });
  const link = join(dir, "shm");
  await Deno.symlink(hasShm ? SHM : "/proc", link);
  try {
    const name = `ringkv-mistakes-${crypto.randomUUID()}`;
    for (const data of [join(SHM, name), join(link, name), "/proc/ringkv"]) {
      const r = await runToEnd({
        script: SCRIPTS.cluster,
        denoArgs,
        args: ["--data", data, "--port", "0", "--node-port", "0", "--nodes", "1"],
        timeoutMs: 60_000,
        timeoutSignal: "SIGTERM",
      });
      assertEquals(r.code, 1, r.stderr);
      assertEquals(r.stderr.trim().split("\n").length, 1, r.stderr);
      assertMatch(
        r.stderr,
        /^Cannot use .* as --data: .*only when it runs with --allow-all.*elsewhere/,
      );
    }
    assertEquals(await exists(join(SHM, name)), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
