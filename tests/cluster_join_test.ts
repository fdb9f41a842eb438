import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { type ServerProcess, spawnServer } from "./helpers/process.ts";

const NODE = new URL("../node/main.ts", import.meta.url);
const PROXY = new URL("../proxy/main.ts", import.meta.url);
// Two clusters under one secret and token: an operator's copy-paste, or a shared default.
const ENV = { RINGKV_CLUSTER_SECRET: "e2e-secret", RINGKV_ADMIN_TOKEN: "e2e-admin" };
const ADMIN = { authorization: "Bearer e2e-admin" };

/** A bound on each call: a hung proxy fails the test instead of hanging it. */
const CALL_MS = 30_000;

function start(script: URL, args: string[]): Promise<ServerProcess> {
  return spawnServer({ script, args: ["--port", "0", ...args], env: ENV });
}

async function addNode(proxy: ServerProcess, url: string): Promise<[number, string]> {
  const res = await fetch(`${proxy.url}/cluster/nodes`, {
    method: "POST",
    headers: ADMIN,
    body: JSON.stringify({ url }),
    signal: AbortSignal.timeout(CALL_MS),
  });
  return [res.status, await res.text()];
}

async function read(proxy: ServerProcess, key: string): Promise<[number, string]> {
  const res = await fetch(`${proxy.url}/kv/${key}`, { signal: AbortSignal.timeout(CALL_MS) });
  return [res.status, await res.text()];
}

Deno.test("adding a live node of another cluster is 409; both clusters keep their values and maps", async () => {
  const dir = await Deno.makeTempDir();
  const running: ServerProcess[] = [];
  try {
    const a1 = await start(NODE, ["--id", "a1", "--data", join(dir, "a1")]);
    running.push(a1);
    const b1 = await start(NODE, ["--id", "b1", "--data", join(dir, "b1")]);
    running.push(b1);
    const pa = await start(PROXY, ["--data", join(dir, "pa"), "--nodes", a1.url]);
    running.push(pa);
    const pb = await start(PROXY, ["--data", join(dir, "pb"), "--nodes", b1.url]);
    running.push(pb);
    for (const [proxy, value] of [[pa, "from A"], [pb, "from B"]] as const) {
      const res = await fetch(`${proxy.url}/kv/shared`, {
        method: "PUT",
        body: value,
        signal: AbortSignal.timeout(CALL_MS),
      });
      assertEquals(res.status, 201, await res.text());
    }
    const [status, body] = await addNode(pa, b1.url);
    assertEquals(status, 409, body);
    assert(body.includes("it is a member of a cluster (its map: epoch 1, nodes b1)"), body);
    assertEquals(await read(pa, "shared"), [200, "from A"]);
    assertEquals(await read(pb, "shared"), [200, "from B"]);
    for (const [proxy, ids] of [[pa, ["a1"]], [pb, ["b1"]]] as const) {
      const view = await (await fetch(`${proxy.url}/cluster`, {
        headers: ADMIN,
        signal: AbortSignal.timeout(CALL_MS),
      })).json();
      assertEquals([view.epoch, view.nodes.map((n: { id: string }) => n.id)], [1, ids]);
    }
    // An empty node joins as before.
    const a2 = await start(NODE, ["--id", "a2", "--data", join(dir, "a2")]);
    running.push(a2);
    const [added, text] = await addNode(pa, a2.url);
    assertEquals(added, 202, text);
  } finally {
    for (const p of running.toReversed()) await p.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
