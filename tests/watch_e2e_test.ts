import { assert, assertEquals } from "@std/assert";
import { TestCluster } from "./helpers/process_cluster.ts";
import { openSse, type SseEvent, type SseReader } from "./helpers/sse.ts";

const KEYS = 6;

interface Acked {
  key: string;
  version: string;
}

async function write(proxy: string, i: number, acked: Acked[]): Promise<void> {
  const key = `w/k${i % KEYS}`;
  const del = i % 7 === 6;
  const res = await fetch(`${proxy}/kv/${key}`, {
    method: del ? "DELETE" : "PUT",
    body: del ? undefined : `value ${i}`,
    signal: AbortSignal.timeout(10_000),
  });
  const etag = res.headers.get("etag");
  await res.body?.cancel();
  if ((res.status === 200 || res.status === 201 || res.status === 204) && etag !== null) {
    acked.push({ key, version: etag.slice(1, -1) });
  }
}

async function writes(proxy: string, from: number, count: number, acked: Acked[]) {
  for (let i = from; i < from + count; i++) await write(proxy, i, acked);
}

/** Polls until `reader` has an event for every acknowledged write, or the deadline. */
async function untilSeen(readers: SseReader[], acked: Acked[], ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 10_000; i++) {
    const seen = new Set(changes(readers.flatMap((r) => r.events)).map((c) => c.version));
    if (acked.every((a) => seen.has(a.version))) return;
    if (Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

function changes(events: SseEvent[]): { key: string; version: string; deleted?: boolean }[] {
  return events.filter((e) => e.event === "message").map((e) => JSON.parse(e.data));
}

Deno.test("watch on 3 replicas: every acknowledged write once, in version order per key, across a node kill, a disconnect and a proxy restart", async () => {
  const cluster = await TestCluster.create();
  const readers: SseReader[] = [];
  try {
    for (const id of ["n1", "n2", "n3"]) await cluster.startNode(id);
    const urls = [...cluster.nodes.values()].map((n) => n.url).join(",");
    const args = ["--nodes", urls, "--replicas", "3", "--timeout-ms", "1000", "--probe-ms", "200"];
    let proxy = await cluster.startProxy("p1", args);
    const acked: Acked[] = [];
    const first = await openSse(`${proxy.url}/watch?prefix=w/`);
    readers.push(first);
    assertEquals(first.status, 200);
    await writes(proxy.url, 0, 30, acked);
    const n3Port = cluster.nodes.get("n3")!.port;
    await cluster.nodes.get("n3")!.kill("SIGKILL");
    await writes(proxy.url, 30, 30, acked);
    const ttl = await fetch(`${proxy.url}/kv/w/ttl?ttl=1`, { method: "PUT", body: "brief" });
    await ttl.body?.cancel();
    await untilSeen([first], acked.slice(0, 40), 20_000);
    await first.stop();
    const cursor = first.lastId();
    assert(cursor !== undefined, "the first watcher got events with ids");

    // Disconnected: more writes, the killed node returns, the proxy restarts.
    await writes(proxy.url, 60, 20, acked);
    await cluster.startNode("n3", n3Port);
    await proxy.stop();
    proxy = await cluster.startProxy("p1", []);
    await writes(proxy.url, 80, 20, acked);

    const second = await openSse(`${proxy.url}/watch?prefix=w/`, { "last-event-id": cursor });
    readers.push(second);
    await untilSeen(readers, acked, 30_000);
    const deadline = Date.now() + 20_000;
    while (!changes(second.events).some((c) => c.key === "w/ttl" && c.deleted)) {
      assert(Date.now() < deadline, "the TTL key's expiry came as an event");
      await new Promise((r) => setTimeout(r, 100));
    }
    await second.stop();

    const all = [...first.events, ...second.events];
    assertEquals(all.filter((e) => e.event !== "message"), [], "no compacted or reset events");
    const got = changes(all).filter((c) => c.key !== "w/ttl");
    const versions = got.map((c) => c.version);
    assertEquals(new Set(versions).size, versions.length, "no event twice");
    const missing = acked.filter((a) => !versions.includes(a.version));
    assertEquals(missing, [], "every acknowledged write came as an event");
    const lastOf = new Map<string, string>();
    for (const c of got) {
      assert((lastOf.get(c.key) ?? "") < c.version, `${c.key}: ${c.version} out of order`);
      lastOf.set(c.key, c.version);
    }
    console.log(
      `watch e2e: ${acked.length} acknowledged writes, ${first.events.length} + ${second.events.length} events`,
    );
  } finally {
    for (const r of readers) await r.stop();
    await cluster.stop();
  }
});
