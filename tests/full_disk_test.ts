/**
 * A real node on a real full disk: its data directory is a small tmpfs this test mounts
 * (CI runs as root; elsewhere the test is skipped with a message). The node fills it,
 * turns read-only (`/health` 503, `ringkv_node_writable 0`, writes 503, reads served),
 * takes writes again once space is freed, and after a SIGKILL comes back with every
 * acknowledged write and none of the refused ones. With 3 replicas, the proxy shows the
 * full node as read-only and keeps taking writes. When the node's own log fills the disk,
 * nothing is freed by hand: the node compacts it in the room of `snapshot.reserve` and takes
 * writes again by itself, alone and with three nodes sharing one small file system.
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { ADMIN, type ClusterNode, clusterView, ProcessCluster } from "./helpers/process_cluster.ts";
import { type ServerProcess, spawnServer } from "./helpers/process.ts";

const MAIN = new URL("../node/main.ts", import.meta.url);
const VALUE = "x".repeat(50 * 1024);
const MAX_PUTS = 60;

async function run(cmd: string, args: string[]): Promise<boolean> {
  try {
    const { success } = await new Deno.Command(cmd, { args, stdout: "null", stderr: "null" })
      .output();
    return success;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    return false;
  }
}

/** Whether this machine lets us mount a tmpfs (root, and a kernel that allows it). */
async function canMount(): Promise<boolean> {
  const dir = await Deno.makeTempDir();
  try {
    if (!(await run("mount", ["-t", "tmpfs", "-o", "size=64k", "tmpfs", dir]))) return false;
    return await run("umount", [dir]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const mountable = await canMount();
if (!mountable) console.log("full_disk_test: skipped, mounting a tmpfs needs root");

async function put(url: string, key: string, body = VALUE): Promise<number> {
  const res = await fetch(`${url}/kv/${key}`, { method: "PUT", body });
  await res.body?.cancel();
  return res.status;
}

/** Mounts a tmpfs of `size` on `dir` (made if missing); unmount it with `umount`. */
async function mountTmpfs(dir: string, size: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true });
  assert(await run("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", dir]), "mount failed");
}

/** A value of `bytes` bytes that starts with `n:` (so a read tells which write it saw). */
function numbered(n: number, bytes: number): string {
  return `${n}:`.padEnd(bytes, "v");
}

/** The write number a value read back carries. */
function numberOf(text: string): number {
  return Number(text.slice(0, text.indexOf(":")));
}

async function poll(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function writable(url: string): Promise<string | undefined> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return /^ringkv_node_writable\{[^}]*\} (\d)$/m.exec(text)?.[1];
}

/** PUTs keys until one is refused; the acknowledged and the refused keys. */
async function fill(url: string): Promise<{ acked: string[]; refused: string[] }> {
  const acked: string[] = [];
  for (let i = 0; i < MAX_PUTS; i++) {
    const status = await put(url, `k${i}`);
    if (status === 201) acked.push(`k${i}`);
    else return { acked, refused: [`k${i}`] };
  }
  throw new Error(`Cannot fill the disk: ${MAX_PUTS} PUTs of 50 KiB all succeeded`);
}

Deno.test({
  name:
    "full disk: a real node turns read-only when its disk fills, recovers once space is freed, and loses no acknowledged write",
  ignore: !mountable,
  async fn() {
    const dir = await Deno.makeTempDir();
    const data = join(dir, "data");
    await Deno.mkdir(data);
    assert(await run("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", data]), "mount failed");
    let node: ServerProcess | undefined;
    try {
      // Ballast larger than the log can grow: freeing it leaves room for a snapshot.
      await Deno.writeFile(join(data, "ballast"), new Uint8Array(1200 * 1024));
      const args = ["--port", "0", "--data", data, "--id", "full"];
      node = await spawnServer({ script: MAIN, args });
      const { acked, refused } = await fill(node.url);
      assert(acked.length > 0);
      const health = await fetch(`${node.url}/health`);
      const body = await health.json();
      assertEquals([health.status, body.status, body.writes.state], [
        503,
        "read-only",
        "read-only",
      ]);
      assert(body.writes.reason.includes("No space left on device"), body.writes.reason);
      assertEquals(await writable(node.url), "0");
      assertEquals(await put(node.url, "refused-too"), 503);
      for (const key of acked) {
        const res = await fetch(`${node.url}/kv/${key}`);
        assertEquals([res.status, (await res.text()).length], [200, VALUE.length], key);
      }
      await Deno.remove(join(data, "ballast"));
      const url = node.url;
      await poll("the node takes writes", async () => {
        const res = await fetch(`${url}/health`);
        await res.body?.cancel();
        return res.status === 200;
      });
      assertEquals(await writable(url), "1");
      assertEquals(await put(url, "after"), 201);
      await node.kill("SIGKILL");
      node = await spawnServer({ script: MAIN, args });
      for (const key of [...acked, "after"]) {
        const res = await fetch(`${node.url}/kv/${key}`);
        assertEquals([res.status, (await res.text()).length], [200, VALUE.length], key);
      }
      for (const key of [...refused, "refused-too"]) {
        const res = await fetch(`${node.url}/kv/${key}`);
        await res.body?.cancel();
        assertEquals(res.status, 404, key);
      }
    } finally {
      await node?.stop();
      await run("umount", [data]);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "full disk: with 3 replicas a full node shows read-only in the proxy's /cluster and metrics, writes go on, and it is up again once space is freed",
  ignore: !mountable,
  async fn() {
    const cluster = await ProcessCluster.create();
    const n2Data = join(cluster.dir, "n2");
    await Deno.mkdir(n2Data);
    assert(await run("mount", ["-t", "tmpfs", "-o", "size=2m", "tmpfs", n2Data]), "mount failed");
    try {
      await Deno.writeFile(join(n2Data, "ballast"), new Uint8Array(1200 * 1024));
      for (const id of ["n1", "n2", "n3"]) await cluster.startNode(id);
      const urls = [...cluster.nodes.values()].map((n) => n.url).join(",");
      const proxy = await cluster.startProxy("p1", [
        ...["--nodes", urls, "--replicas", "3", "--timeout-ms", "2000", "--probe-ms", "200"],
      ]);
      const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
      for (const key of keys) assertEquals(await put(proxy.url, key), 201, key);
      const n2 = async () => (await clusterView(proxy.url)).nodes.find((n) => n.id === "n2")!;
      // The node refuses what does not fit and its repair makes it writable again for what it
      // holds, so it may flip between the two while hints are replayed: the view and the metric
      // must say read-only, with the disk's reason, at one moment.
      let seen = "";
      await poll("n2 is read-only in /cluster, with its reason, and in the metrics", async () => {
        const view = await n2() as ClusterNode & { writes?: { reason?: string } };
        const metrics = await (await fetch(`${proxy.url}/metrics`, { headers: ADMIN })).text();
        seen = JSON.stringify(view);
        return view.state === "read-only" &&
          view.writes?.reason?.includes("No space left on device") === true &&
          /^ringkv_proxy_node_writable\{node="n2"\} 0$/m.test(metrics);
      }).catch((err) => {
        throw new Error(`${err.message}; last view ${seen}`);
      });
      assertEquals(await put(proxy.url, "while-full"), 201);
      await Deno.remove(join(n2Data, "ballast"));
      await poll("n2 is up in /cluster", async () => (await n2()).state === "up");
      for (const key of [...keys, "while-full"]) {
        const res = await fetch(`${proxy.url}/kv/${key}`);
        assertEquals([res.status, (await res.text()).length], [200, VALUE.length], key);
      }
    } finally {
      await Promise.all(
        [...cluster.proxies.values(), ...cluster.nodes.values()].map((p) => p.stop()),
      );
      await run("umount", [n2Data]);
      await cluster.stop();
    }
  },
});

Deno.test({
  name:
    "full disk: a real node whose own log fills its 1 MiB tmpfs compacts it in the reserve's room and takes writes again by itself, losing no acknowledged write",
  ignore: !mountable,
  async fn() {
    const dir = await Deno.makeTempDir();
    const data = join(dir, "data");
    await mountTmpfs(data, "1m");
    let node: ServerProcess | undefined;
    try {
      const args = ["--port", "0", "--data", data, "--id", "full"];
      node = await spawnServer({ script: MAIN, args });
      const url = node.url;
      // Five keys of 50 KiB, overwritten: the data stays at 250 KiB while the log fills the disk.
      const acked = new Map<string, number>();
      let refused: string | undefined;
      for (let i = 0; i < 200 && refused === undefined; i++) {
        const key = `k${i % 5}`;
        const status = await put(url, key, numbered(i, VALUE.length));
        if (status === 201 || status === 200) acked.set(key, i);
        else refused = key;
      }
      assert(refused !== undefined, "200 PUTs of 50 KiB never filled a 1 MiB disk");
      const health = await fetch(`${url}/health`);
      const body = await health.json();
      assertEquals([health.status, body.writes.state], [503, "read-only"]);
      assert(body.writes.reason.includes("No space left on device"), body.writes.reason);
      assertEquals(await put(url, "refused-too"), 503);
      for (const [key, n] of acked) {
        if (key === refused) continue;
        const res = await fetch(`${url}/kv/${key}`);
        assertEquals([res.status, numberOf(await res.text())], [200, n], key);
      }
      // Nothing is freed by hand.
      await poll("the node takes writes", async () => {
        const res = await fetch(`${url}/health`);
        await res.body?.cancel();
        return res.status === 200;
      });
      assertEquals(await writable(url), "1");
      assertEquals(await put(url, "after"), 201);
      assert(await Deno.stat(join(data, "snapshot.reserve")), "no snapshot.reserve");
      await node.kill("SIGKILL");
      node = await spawnServer({ script: MAIN, args });
      for (const [key, n] of acked) {
        const res = await fetch(`${node.url}/kv/${key}`);
        assertEquals([res.status, numberOf(await res.text())], [200, n], key);
      }
      for (const [key, status] of [["after", 200], ["refused-too", 404]] as const) {
        const res = await fetch(`${node.url}/kv/${key}`);
        await res.body?.cancel();
        assertEquals(res.status, status, key);
      }
    } finally {
      await node?.stop();
      await run("umount", [data]);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "full disk: three replicas whose logs fill the 3 MiB tmpfs they share each come back by themselves, and the cluster keeps serving reads and acknowledged writes",
  ignore: !mountable,
  async fn() {
    const cluster = await ProcessCluster.create();
    const shared = join(cluster.dir, "shared");
    await mountTmpfs(shared, "3m");
    try {
      const ids = ["n1", "n2", "n3"];
      for (const id of ids) {
        // The nodes' directories on the tmpfs; the proxy's stays off it.
        await Deno.mkdir(join(shared, id));
        await Deno.symlink(join(shared, id), join(cluster.dir, id));
        await cluster.startNode(id);
      }
      const urls = [...cluster.nodes.values()].map((n) => n.url).join(",");
      const proxy = await cluster.startProxy("p1", [
        ...["--nodes", urls, "--replicas", "3", "--timeout-ms", "2000", "--probe-ms", "200"],
      ]);
      const recovered = () =>
        ids.every((id) =>
          cluster.nodes.get(id)!.stderrLines.some((l) => l.includes("node takes writes again"))
        );
      const acked = new Map<string, number>();
      /** Keys whose last PUT was refused: a node answers 503 for them until its repair reloads. */
      const refused = new Set<string>();
      let refusals = 0;
      for (let i = 0; i < 2000 && !recovered(); i++) {
        const key = `k${i % 10}`;
        const status = await put(proxy.url, key, numbered(i, 20 * 1024));
        if (status === 201 || status === 200) {
          acked.set(key, i);
          refused.delete(key);
        } else {
          assertEquals(status, 503, `PUT ${key}`);
          refused.add(key);
          refusals++;
        }
        // Reads go on throughout, and never answer older than the last acknowledged write.
        const read = `k${(i * 7) % 10}`;
        const res = await fetch(`${proxy.url}/kv/${read}`);
        const text = await res.text();
        if (acked.has(read) && !refused.has(read)) {
          assertEquals(res.status, 200, `GET ${read}: ${text}`);
          assert(numberOf(text) >= acked.get(read)!, `GET ${read} went back: ${text.slice(0, 9)}`);
        }
      }
      console.log(`three nodes on 3 MiB: ${acked.size} keys, ${refusals} PUTs refused (503)`);
      for (const id of ids) {
        const lines = cluster.nodes.get(id)!.stderrLines;
        assert(lines.some((l) => l.includes("node is read-only")), `${id} never filled the disk`);
      }
      assert(recovered(), "not every node took writes again by itself");
      const view = async () => (await clusterView(proxy.url)).nodes.map((n) => n.state);
      await poll(
        "every node is up in /cluster",
        async () => (await view()).every((s) => s === "up"),
      );
      assertEquals(await put(proxy.url, "after"), 201);
      for (const [key, n] of acked) {
        const res = await fetch(`${proxy.url}/kv/${key}`);
        const text = await res.text();
        assertEquals(res.status, 200, key);
        assert(numberOf(text) >= n, `${key}: ${text.slice(0, 9)} is older than write ${n}`);
      }
    } finally {
      await Promise.all(
        [...cluster.proxies.values(), ...cluster.nodes.values()].map((p) => p.stop()),
      );
      await run("umount", [shared]);
      await cluster.stop();
    }
  },
});
