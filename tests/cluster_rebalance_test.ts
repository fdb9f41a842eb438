import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { type ServerProcess, spawnServer } from "./helpers/process.ts";

const NODE = new URL("../node/main.ts", import.meta.url);
const PROXY = new URL("../proxy/main.ts", import.meta.url);
const ENV = { RINGKV_CLUSTER_SECRET: "e2e-secret", RINGKV_ADMIN_TOKEN: "e2e-admin" };
const ADMIN = { authorization: "Bearer e2e-admin" };

async function startNode(dir: string, id: string): Promise<ServerProcess> {
  const data = join(dir, id);
  return await spawnServer({
    script: NODE,
    args: ["--id", id, "--port", "0", "--data", data],
    env: ENV,
  });
}

function startProxy(dir: string, name: string, args: string[]): Promise<ServerProcess> {
  return spawnServer({
    script: PROXY,
    args: ["--port", "0", "--data", join(dir, name), "--poll-ms", "200", ...args],
    env: ENV,
  });
}

async function clusterView(proxy: ServerProcess) {
  const res = await fetch(`${proxy.url}/cluster`, { headers: ADMIN });
  assertEquals(res.status, 200);
  return await res.json();
}

async function waitStable(proxy: ServerProcess, epoch: number) {
  const deadline = Date.now() + 30_000;
  while (Date.now() < deadline) {
    const view = await clusterView(proxy);
    if (view.epoch >= epoch && view.rebalancing === null) return view;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the cluster did not reach a stable epoch ${epoch} in 30 s`);
}

Deno.test("a node added through one proxy is followed by a second; every key stays readable", async () => {
  const dir = await Deno.makeTempDir();
  const running: ServerProcess[] = [];
  try {
    for (const id of ["n1", "n2", "n3"]) running.push(await startNode(dir, id));
    const urls = running.map((n) => n.url);
    const p1 = await startProxy(dir, "p1", ["--nodes", urls.join(","), "--replicas", "1"]);
    running.push(p1);
    assert(
      p1.stdoutLines.some((l) => /^ringkv proxy listening on http:\/\/127\.0\.0\.1:\d+$/.test(l)),
    );
    const p2 = await startProxy(dir, "p2", ["--join", urls[0]!]);
    running.push(p2);
    for (let i = 0; i < 200; i++) {
      const res = await fetch(`${p1.url}/kv/k${i}`, { method: "PUT", body: `v${i}` });
      assertEquals(res.status, 201, await res.text());
    }
    const n4 = await startNode(dir, "n4");
    running.push(n4);
    const added = await fetch(`${p1.url}/cluster/nodes`, {
      method: "POST",
      headers: ADMIN,
      body: JSON.stringify({ url: n4.url }),
    });
    assertEquals(added.status, 202, await added.clone().text());
    assertEquals((await added.json()).rebalancing.nodeId, "n4");
    const view = await waitStable(p1, 4);
    assertEquals(view.nodes.map((n: { id: string }) => n.id), ["n1", "n2", "n3", "n4"]);
    assert(view.nodes[3].keys > 0, "n4 holds keys");
    assertEquals(view.nodes.reduce((a: number, n: { keys: number }) => a + n.keys, 0), 200);
    const seen = await waitStable(p2, 4);
    assertEquals(seen.epoch, view.epoch);
    for (let i = 0; i < 200; i++) {
      const res = await fetch(`${p2.url}/kv/k${i}`);
      assertEquals([res.status, await res.text()], [200, `v${i}`]);
    }
  } finally {
    for (const p of running.toReversed()) await p.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("a proxy restarted from its map file keeps the cluster it had", async () => {
  const dir = await Deno.makeTempDir();
  const running: ServerProcess[] = [];
  try {
    for (const id of ["n1", "n2"]) running.push(await startNode(dir, id));
    const urls = running.map((n) => n.url).join(",");
    const first = await startProxy(dir, "p", ["--nodes", urls, "--replicas", "1"]);
    running.push(first);
    const removed = await fetch(`${first.url}/cluster/nodes/n2`, {
      method: "DELETE",
      headers: ADMIN,
    });
    assertEquals(removed.status, 202, await removed.text());
    await waitStable(first, 4);
    await running.pop()!.stop();
    const again = await startProxy(dir, "p", []);
    running.push(again);
    const view = await clusterView(again);
    assertEquals([view.epoch, view.nodes.map((n: { id: string }) => n.id)], [4, ["n1"]]);
  } finally {
    for (const p of running.toReversed()) await p.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
