import { assert, assertEquals } from "@std/assert";
import { TTL_SWEEP_MS } from "../proxy/routing/ttl_reaper.ts";
import { ProcessCluster } from "./helpers/process_cluster.ts";

const KEYS = 12;
/** Slack for a loaded 2-core machine on top of the documented bound (expiry + one sweep). */
const SLACK_MS = 15_000;

async function send(url: string, init: RequestInit = {}): Promise<Response> {
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  return res;
}

/** Polls `check` until it holds; fails past `deadline` (ms since the epoch). */
async function until(what: string, deadline: number, check: () => Promise<boolean>) {
  for (let i = 0; i < 100_000; i++) {
    if (await check()) return;
    assert(Date.now() < deadline, `${what}: not true by the deadline`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function ttlKeys(keys: string[]): string[] {
  return keys.filter((k) => /^ttl\/k\d/.test(k));
}

Deno.test("3 nodes, 3 replicas, 2 proxies: 2-second TTL keys vanish from reads and listings through both and from every node, with a node killed meanwhile", async () => {
  const cluster = await ProcessCluster.create();
  try {
    for (const id of ["n1", "n2", "n3"]) await cluster.startNode(id);
    const urls = [...cluster.nodes.values()].map((n) => n.url).join(",");
    const flags = ["--nodes", urls, "--replicas", "3", "--timeout-ms", "1000", "--probe-ms", "200"];
    const proxy = await cluster.startProxy("p1", flags);
    // A second proxy over the same nodes: the keys are written through p1 only.
    const other = await cluster.startProxy("p2", flags);
    const proxies = [proxy.url, other.url];
    let latest = 0;
    for (let i = 0; i < KEYS; i++) {
      const res = await send(`${proxy.url}/kv/ttl/k${i}?ttl=2`, { method: "PUT", body: `v${i}` });
      assertEquals(res.status, 201, await res.text());
      const got = await send(`${proxy.url}/kv/ttl/k${i}`);
      assertEquals([got.status, await got.text()], [200, `v${i}`]);
      latest = Math.max(latest, Date.parse(got.headers.get("expires-at")!));
    }
    const kept = await send(`${proxy.url}/kv/ttl/kept`, { method: "PUT", body: "stays" });
    assertEquals(kept.status, 201);
    await kept.body?.cancel();
    const n3Port = cluster.nodes.get("n3")!.port;
    await cluster.nodes.get("n3")!.kill("SIGKILL");

    // Reads follow each proxy's clock (one host here): 404 from the expiry on, through both.
    await until(
      "the last key's expiry passed",
      latest + SLACK_MS,
      () => Promise.resolve(Date.now() > latest),
    );
    for (let i = 0; i < KEYS; i++) {
      for (const url of proxies) {
        const res = await send(`${url}/kv/ttl/k${i}`);
        assertEquals(res.status, 404, `ttl/k${i} after its expiry, through ${url}`);
        await res.body?.cancel();
      }
    }

    // The reaper's tombstones reach the live replicas within one sweep (plus slack).
    for (const id of ["n1", "n2"]) {
      await until(
        `${id} reclaims the expired keys`,
        latest + TTL_SWEEP_MS + SLACK_MS,
        async () => ttlKeys(await cluster.nodeKeys(id)).length === 0,
      );
    }
    console.log(`expired keys gone from n1, n2 ${Date.now() - latest} ms after the last expiry`);
    // A listing goes on without the killed node: each key's versions are on the other replicas.
    for (const url of proxies) {
      const whileDown = await send(`${url}/kv?prefix=ttl/`);
      assertEquals(whileDown.status, 200);
      assertEquals((await whileDown.json()).keys, ["ttl/kept"], `listed through ${url}`);
    }

    // The killed node catches up when it returns; a restarted node agrees (from its disk).
    await cluster.startNode("n3", n3Port);
    await until(
      "n3 catches up on the tombstones",
      Date.now() + 30_000,
      async () => ttlKeys(await cluster.nodeKeys("n3")).length === 0,
    );
    // And with all three back.
    const listing = await (await send(`${proxy.url}/kv?prefix=ttl/`)).json();
    assertEquals(listing.keys, ["ttl/kept"], JSON.stringify(listing));
    const n1Port = cluster.nodes.get("n1")!.port;
    await cluster.nodes.get("n1")!.stop();
    await cluster.startNode("n1", n1Port);
    assertEquals(await cluster.nodeKeys("n1"), ["ttl/kept"]);
    for (const url of proxies) {
      const after = await (await send(`${url}/kv?prefix=ttl/&values=true`)).json();
      assertEquals(after.items.map((i: { key: string }) => i.key), ["ttl/kept"], url);
    }
  } finally {
    await cluster.stop();
  }
});
