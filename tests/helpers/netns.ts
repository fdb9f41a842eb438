/**
 * A lab of "hosts" for network fault tests: each host is a Linux network namespace with
 * one address on a private bridge (10.213.0.0/24, which exists only inside the lab's own
 * "switch" namespace: nothing is added to this machine's interfaces or routes). Nodes and
 * proxies run in their hosts through their public CLIs (`ip netns exec HOST deno run ...`).
 *
 * Each node listens on 127.0.0.1 inside its host behind a byte relay on the host's
 * address (tests/helpers/relay.ts), which can add a delay each way: a slow link. The test
 * process reaches the lab through a gateway in the "client" host over a Unix socket
 * (Unix sockets cross namespaces), so `proxyUrl()` and `nodeUrl()` work with plain `fetch`.
 *
 * The nemesis: `setFaults()` (partitions, one-way drops, random loss, as nftables rules
 * in every host, see nft_rules.ts), `heal()`, `slow()`, `pause()`/`resume()`, `kill()`/
 * `restart()`, and membership changes through a proxy's admin API. `stop()` ends every
 * process and deletes every namespace (their veths and bridge go with them); `create()`
 * first deletes what a crashed earlier run left (namespaces `rkvnf<pid>-...` and temp
 * directories `ringkv-netns-<pid>-...` of a dead pid, with the processes in them).
 *
 * @module
 */
import { join } from "@std/path";
import { type ServerProcess, spawnServer } from "./process.ts";
import { ADMIN_TOKEN, SECRET } from "./process_cluster.ts";
import { droppedPackets, type Faults, hostRules } from "./nft_rules.ts";
import { forward } from "./relay.ts";
import { exists } from "./paths.ts";

const NODE = new URL("../../node/main.ts", import.meta.url).pathname;
const PROXY = new URL("../../proxy/main.ts", import.meta.url).pathname;
const RELAY = new URL("./relay.ts", import.meta.url).pathname;
const FAMILY = "rkvnf";
const SUBNET = "10.213.0";
const NODE_PORT = 7000;
const ENV = { RINGKV_CLUSTER_SECRET: SECRET, RINGKV_ADMIN_TOKEN: ADMIN_TOKEN };

/** Runs a command to its end; throws with its stderr when it fails. */
async function run(cmd: string[], stdin?: string): Promise<string> {
  const child = new Deno.Command(cmd[0]!, {
    args: cmd.slice(1),
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await child.output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  if (out.code !== 0) throw new Error(`${cmd.join(" ")} failed (${out.code}): ${text(out.stderr)}`);
  return text(out.stdout);
}

/** Why the lab cannot run here (not root, no `ip netns`, no `nft`), or null when it can. */
export async function labUnavailable(): Promise<string | null> {
  if (Deno.build.os !== "linux") return "network namespaces need Linux";
  if (Deno.uid() !== 0) return "network namespaces need root (CI runs .ci/run as root)";
  try {
    await run(["ip", "netns", "list"]);
    await run(["nft", "--version"]);
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound || err instanceof Error)) throw err;
    return `ip netns or nft is unavailable: ${err.message}`;
  }
  return null;
}

/** Deletes namespaces of earlier labs whose process is gone, with what runs in them. */
async function removeLeftovers(): Promise<void> {
  const gone = async (pid: number) =>
    Number.isInteger(pid) && pid !== Deno.pid && !(await exists(`/proc/${pid}`));
  const names = (await run(["ip", "netns", "list"])).split("\n").map((l) => l.split(" ")[0]!);
  for (const ns of names.filter((n) => n.startsWith(FAMILY))) {
    if (await gone(Number(/^rkvnf(\d+)-/.exec(ns)?.[1]))) await deleteNamespace(ns);
  }
  const tmp = Deno.env.get("TMPDIR") ?? "/tmp";
  for await (const entry of Deno.readDir(tmp)) {
    const pid = Number(/^ringkv-netns-(\d+)-/.exec(entry.name)?.[1]);
    if (entry.isDirectory && await gone(pid)) {
      await Deno.remove(join(tmp, entry.name), { recursive: true });
    }
  }
}

async function deleteNamespace(ns: string): Promise<void> {
  const pids = (await run(["ip", "netns", "pids", ns])).split("\n").filter((p) => p !== "");
  for (const pid of pids) {
    try {
      Deno.kill(Number(pid), "SIGKILL");
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
  }
  await run(["ip", "netns", "del", ns]);
}

/** A node or proxy of the lab. */
export interface LabProcess {
  /** Its host (namespace) name, also its node id or proxy name. */
  host: string;
  /** The URL other hosts use (`http://10.213.0.x:port`). */
  url: string;
  /** The URL this test process uses (through the gateway). */
  local: string;
  proc: ServerProcess;
}

/** Hosts, processes and nemesis of one lab. */
export class NetLab {
  readonly addresses: Record<string, string> = {};
  readonly nodes = new Map<string, LabProcess & { relay: ServerProcess; innerPort: number }>();
  readonly proxies = new Map<string, LabProcess>();
  #namespaces: string[] = [];
  #forwards: { close: () => void }[] = [];
  #gateway?: ServerProcess;
  #paused = new Set<number>();
  /** No pooled connections: one a process closed while idle would fail the next check. */
  readonly #client = Deno.createHttpClient({ poolMaxIdlePerHost: 0 });

  private constructor(readonly prefix: string, readonly dir: string) {}

  /** Makes the switch and the client host; call `stop()` in `finally`. */
  static async create(): Promise<NetLab> {
    await removeLeftovers();
    const prefix = `${FAMILY}${Deno.pid}-${crypto.randomUUID().slice(0, 4)}`;
    const lab = new NetLab(prefix, await Deno.makeTempDir({ prefix: `ringkv-netns-${Deno.pid}-` }));
    try {
      const sw = await lab.#namespace("sw");
      await run(["ip", "-n", sw, "link", "add", "br0", "type", "bridge"]);
      await run(["ip", "-n", sw, "link", "set", "br0", "up"]);
      await lab.addHost("client");
      lab.#gateway = await lab.#spawn("client", {
        script: RELAY,
        args: ["gateway", join(lab.dir, "gateway.sock")],
      });
    } catch (err) {
      await lab.stop();
      throw err;
    }
    return lab;
  }

  async #namespace(host: string): Promise<string> {
    const ns = `${this.prefix}-${host}`;
    await run(["ip", "netns", "add", ns]);
    this.#namespaces.push(ns);
    await run(["ip", "-n", ns, "link", "set", "lo", "up"]);
    return ns;
  }

  /** Adds a host joined to the bridge; returns its address. */
  async addHost(host: string): Promise<string> {
    const index = Object.keys(this.addresses).length + 2;
    if (index > 250) throw new Error(`Cannot add host ${host}: the lab's /24 is full`);
    const ns = await this.#namespace(host);
    const sw = `${this.prefix}-sw`;
    const address = `${SUBNET}.${index}`;
    await run([
      "ip",
      "-n",
      sw,
      "link",
      "add",
      `v${index}`,
      "type",
      "veth",
      "peer",
      "eth0",
      "netns",
      ns,
    ]);
    await run(["ip", "-n", sw, "link", "set", `v${index}`, "master", "br0", "up"]);
    await run(["ip", "-n", ns, "addr", "add", `${address}/24`, "dev", "eth0"]);
    await run(["ip", "-n", ns, "link", "set", "eth0", "up"]);
    this.addresses[host] = address;
    return address;
  }

  #spawn(host: string, o: { script: string; args: string[]; env?: Record<string, string> }) {
    return spawnServer({ ...o, wrapper: ["ip", "netns", "exec", `${this.prefix}-${host}`] });
  }

  #local(target: string): string {
    const f = forward(join(this.dir, "gateway.sock"), target);
    this.#forwards.push(f);
    return f.url;
  }

  /** Starts node `id` in its own host (made on first start), or restarts it on its data. */
  async startNode(id: string, extraEnv: Record<string, string> = {}, delayMs = 300) {
    const known = this.nodes.get(id);
    const address = this.addresses[id] ?? await this.addHost(id);
    const proc = await this.#spawn(id, {
      script: NODE,
      args: ["--id", id, "--port", String(known?.innerPort ?? 0), "--data", join(this.dir, id)],
      env: { ...ENV, ...extraEnv },
    });
    if (known) return this.nodes.set(id, { ...known, proc }).get(id)!;
    const relay = await this.#spawn(id, {
      script: RELAY,
      args: ["tcp", `${address}:${NODE_PORT}`, `127.0.0.1:${proc.port}`, String(delayMs)],
    });
    const url = `http://${address}:${NODE_PORT}`;
    const node = { host: id, url, local: this.#local(`${address}:${NODE_PORT}`), proc, relay };
    this.nodes.set(id, { ...node, innerPort: proc.port });
    return this.nodes.get(id)!;
  }

  /** Starts proxy `name` in its own host with extra args (`--nodes`, `--join`, ...). */
  async startProxy(name: string, args: string[], extraEnv: Record<string, string> = {}) {
    const address = this.addresses[name] ?? await this.addHost(name);
    const proc = await this.#spawn(name, {
      script: PROXY,
      args: ["--host", address, "--port", "0", "--data", join(this.dir, name), ...args],
      env: { ...ENV, ...extraEnv },
    });
    const proxy = {
      host: name,
      url: proc.url,
      local: this.#local(`${address}:${proc.port}`),
      proc,
    };
    this.proxies.set(name, proxy);
    return proxy;
  }

  /** `fetch` for checks (10 s timeout, a fresh connection each time). */
  fetch(url: string, init: RequestInit = {}): Promise<Response> {
    return fetch(url, { signal: AbortSignal.timeout(10_000), ...init, client: this.#client });
  }

  /** Puts `faults` in force on every host at once (replacing the earlier ones). */
  async setFaults(faults: Faults): Promise<void> {
    await Promise.all(
      Object.keys(this.addresses).map((h) =>
        run(
          ["ip", "netns", "exec", `${this.prefix}-${h}`, "nft", "-f", "-"],
          hostRules(h, faults, this.addresses),
        )
      ),
    );
  }

  /** Packets the rules in force have dropped on every host since {@link setFaults} put them there. */
  async droppedPackets(): Promise<number> {
    // The whole ruleset: a host added since the faults were set (n4+) has no table yet.
    const counts = await Promise.all(
      Object.keys(this.addresses).map(async (h) =>
        droppedPackets(
          await run(["ip", "netns", "exec", `${this.prefix}-${h}`, "nft", "list", "ruleset"]),
        )
      ),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /** Lifts every network fault. */
  heal(): Promise<void> {
    return this.setFaults({});
  }

  /** Makes node `id`'s link slow (its relay's delay each way) or fast again. */
  slow(id: string, on: boolean): void {
    Deno.kill(this.nodes.get(id)!.relay.pid, on ? "SIGUSR1" : "SIGUSR2");
  }

  /** SIGSTOPs a node or proxy. */
  pause(name: string): void {
    const pid = this.#proc(name).pid;
    Deno.kill(pid, "SIGSTOP");
    this.#paused.add(pid);
  }

  /** SIGCONTs a paused node or proxy. */
  resume(name: string): void {
    const pid = this.#proc(name).pid;
    Deno.kill(pid, "SIGCONT");
    this.#paused.delete(pid);
  }

  /** SIGKILLs a node and waits for its exit. */
  async kill(id: string): Promise<void> {
    await this.nodes.get(id)!.proc.kill("SIGKILL");
  }

  #proc(name: string): ServerProcess {
    const p = this.nodes.get(name)?.proc ?? this.proxies.get(name)?.proc;
    if (p === undefined) throw new Error(`Cannot signal ${name}: the lab has no such process`);
    return p;
  }

  /** Stops every process, deletes every namespace (with its veth and bridge) and the dir. */
  async stop(): Promise<void> {
    for (const pid of this.#paused) Deno.kill(pid, "SIGCONT");
    this.#forwards.forEach((f) => f.close());
    const procs = [
      ...[...this.proxies.values()].map((p) => p.proc),
      ...[...this.nodes.values()].flatMap((n) => [n.proc, n.relay]),
      ...(this.#gateway ? [this.#gateway] : []),
    ];
    await Promise.allSettled(procs.map((p) => p.stop()));
    for (const ns of this.#namespaces.reverse()) await deleteNamespace(ns);
    await Deno.remove(this.dir, { recursive: true });
    this.#client.close();
  }
}
