/**
 * The processes of a bench run: data nodes, proxies (several on one port with
 * `--reuse-port`), the bare server, the Hono Map node, nginx, etcd and wrk. Everything lives
 * in the run's temp directory and is stopped by {@link Processes.stopAll}.
 *
 * @module
 */
import { join } from "@std/path";
import { type Child, startChild, stopProcess } from "../children.ts";
import { NODE_ENV, NODE_V8_FLAGS } from "../node_settings.ts";
import { nginxConfig } from "./nginx.ts";
import { parseWrkOutput, wrkArgs, type WrkResult } from "./wrk.ts";

const ROOT = new URL("../../", import.meta.url).pathname;
const ENV_PERMISSION = "--allow-env=RINGKV_*";

/** Tokens every process of the run shares. */
export interface Secrets {
  clusterSecret: string;
  adminToken: string;
}

/** Runs `cmd args` to its end; stdout, stderr and exit code. */
export async function run(cmd: string, args: string[]): Promise<Deno.CommandOutput> {
  return await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
}

/** True when `cmd` can be started (`cmd -v` or `-V` runs). */
export async function hasCommand(cmd: string, flag = "-v"): Promise<boolean> {
  try {
    await run(cmd, [flag]);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

/** A port the OS says is free now (for nginx, which cannot take port 0 and report it). */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

/** Resident set size of a process, in bytes (`ps`: Deno reads /proc only with --allow-all). */
export async function rssOf(pid: number): Promise<number> {
  const out = await run("ps", ["-o", "rss=", "-p", String(pid)]);
  const kb = Number(new TextDecoder().decode(out.stdout).trim());
  if (!out.success || !Number.isFinite(kb) || kb <= 0) {
    throw new Error(`Cannot read the RSS of process ${pid} with ps`);
  }
  return kb * 1024;
}

/** The children of a run, stopped in reverse order. */
export class Processes {
  readonly children: Child[] = [];
  #closed = false;
  #stopping: Promise<void> | undefined;

  constructor(readonly dir: string, readonly secrets: Secrets) {}

  get env(): Record<string, string> {
    return {
      RINGKV_CLUSTER_SECRET: this.secrets.clusterSecret,
      RINGKV_ADMIN_TOKEN: this.secrets.adminToken,
    };
  }

  /**
   * Starts data node `id` (as `deno task cluster` does) on an OS-picked port (or `port`);
   * `extra` adds node flags.
   */
  async node(id: string, port = 0, extra: readonly string[] = []): Promise<Child> {
    const data = join(this.dir, id);
    await Deno.mkdir(data, { recursive: true });
    const args = ["run", "--allow-net=127.0.0.1", `--allow-read=${data}`, `--allow-write=${data}`];
    args.push(ENV_PERMISSION, NODE_V8_FLAGS, join(ROOT, "node/main.ts"));
    args.push("--id", id, "--port", String(port), "--data", data, ...extra);
    return this.#keep(await startChild(id, args, { ...this.env, ...NODE_ENV }));
  }

  /** Starts `count` proxies on one port (reusePort when more than one) over `nodes`. */
  async proxies(nodes: readonly string[], count: number, replicas = 1): Promise<Child[]> {
    const started: Child[] = [];
    let port = count > 1 ? freePort() : 0;
    for (let i = 0; i < count; i++) {
      const data = join(this.dir, `proxy${i}`);
      await Deno.mkdir(data, { recursive: true });
      const args = ["run", "--allow-net", `--allow-read=${data}`, `--allow-write=${data}`];
      if (count > 1) args.push("--unstable-net"); // Deno.serve's reusePort
      args.push(ENV_PERMISSION, join(ROOT, "proxy/main.ts"), "--port", String(port));
      args.push("--data", data, "--replicas", String(replicas));
      // No tombstone purge: its first step drops what a node holds of ranges it does not own,
      // and with one replica the bench loads every key into every node for nginx on purpose.
      args.push("--tombstone-grace-ms", "0");
      args.push(...(i === 0 ? ["--nodes", nodes.join(",")] : ["--join", nodes[0]!]));
      if (count > 1) args.push("--reuse-port");
      const proxy = this.#keep(await startChild(`proxy${i}`, args, this.env));
      port = Number(new URL(proxy.url).port);
      started.push(proxy);
    }
    return started;
  }

  /** Starts the bare Deno.serve reference. */
  async bare(): Promise<Child> {
    const script = join(ROOT, "tasks/bench/bare_server.ts");
    return this.#keep(await startChild("bare", ["run", "--allow-net=127.0.0.1", script], {}));
  }

  /** Starts nginx over `nodes` with its config in `<dir>/nginx`; resolves once it answers. */
  async nginx(nodes: readonly string[]): Promise<Child> {
    const dir = join(this.dir, "nginx");
    await Deno.mkdir(dir, { recursive: true, mode: 0o755 });
    await Deno.chmod(this.dir, 0o755); // workers may run as another user when we are root
    const port = freePort();
    const conf = join(dir, "nginx.conf");
    await Deno.writeTextFile(
      conf,
      nginxConfig({ dir, port, nodes, secret: this.secrets.clusterSecret }),
    );
    const url = `http://127.0.0.1:${port}`;
    const args = ["-p", dir, "-c", conf, "-g", "daemon off;"];
    const child = spawnTool("nginx", "nginx", args, url, { signal: "SIGQUIT" });
    this.#keep(child);
    await waitAnswering(url + "/kv/", child.exited);
    return child;
  }

  /** Starts the minimal Hono Map node, filled with `fills` (`prefix:count:bytes`). */
  async hono(fills: readonly string[]): Promise<Child> {
    const script = join(ROOT, "tasks/bench/hono_map_node.ts");
    const args = ["run", "--allow-net=127.0.0.1", script, ...fills];
    return this.#keep(await startChild("hono", args, {}));
  }

  /** Starts the node GET's contract without ringkv code (serve_floor.ts) over `keys` keys. */
  async floor(keys: number): Promise<Child> {
    const script = join(ROOT, "tasks/bench/serve_floor.ts");
    const args = ["run", "--allow-net=127.0.0.1", script, "serve", "node", String(keys)];
    return this.#keep(await startChild("floor", [...args, this.secrets.clusterSecret], {}));
  }

  /** Takes a child started elsewhere (the etcd members) into the run, to be stopped with it. */
  adopt(child: Child): Child {
    return this.#keep(child);
  }

  /**
   * Stops every child, newest first; any child started later is stopped at once. Every
   * call waits for the same stop (Ctrl-C and the run's `finally` may both ask).
   */
  stopAll(): Promise<void> {
    this.#closed = true;
    this.#stopping ??= (async () => {
      for (const child of this.children.splice(0).reverse()) await child.stop();
    })();
    return this.#stopping;
  }

  /** Stops one child and forgets it. */
  async stop(child: Child): Promise<void> {
    const i = this.children.indexOf(child);
    if (i !== -1) this.children.splice(i, 1);
    await child.stop();
  }

  #keep(child: Child): Child {
    if (this.#closed) {
      // A start that was under way when the run was stopped (Ctrl-C): it must not outlive it.
      child.stop();
      throw new Error(`Cannot start ${child.name}: the bench is stopping`);
    }
    this.children.push(child);
    return child;
  }
}

/**
 * Spawns a tool that is not Deno (nginx, etcd), its output inherited or dropped (a tool
 * that logs to a file); its `stop` sends `signal`, then SIGKILL if it still runs 5 s later.
 */
export function spawnTool(
  name: string,
  cmd: string,
  args: string[],
  url: string,
  o: { signal?: Deno.Signal; output?: "inherit" | "null" } = {},
): Child {
  const signal = o.signal ?? "SIGTERM";
  const output = o.output ?? "inherit";
  const process = new Deno.Command(cmd, { args, stdin: "null", stdout: output, stderr: output })
    .spawn();
  const exited = process.status.then((s) => s.code);
  const stop = () => stopProcess(process, exited, signal, 5000);
  return { name, url, pid: process.pid, exited, stop };
}

/** Polls `url` until it answers at all (any status), or the process exits, or 10 s pass. */
async function waitAnswering(url: string, exited: Promise<number>): Promise<void> {
  let gone = false;
  exited.then(() => (gone = true));
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && !gone) {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1000) });
      await res.body?.cancel();
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`nginx did not answer on ${url} (see ${url} config in the run's directory)`);
}

/** Runs wrk with a Lua script file; the parsed result, wrk's own CPU seconds included. */
export async function runWrk(
  url: string,
  script: string,
  o: { connections: number; threads: number; seconds: number },
  signal?: AbortSignal,
): Promise<WrkResult> {
  const args = wrkArgs(url, script, o);
  const out = await new Deno.Command("wrk", { args, stdout: "piped", stderr: "piped", signal })
    .output();
  const text = new TextDecoder().decode(out.stdout);
  if (!out.success) {
    throw new Error(`wrk failed (${out.code}): ${new TextDecoder().decode(out.stderr)}${text}`);
  }
  return parseWrkOutput(text);
}
