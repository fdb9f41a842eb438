import { assert, assertEquals } from "@std/assert";
import { ProcessCluster } from "./helpers/process_cluster.ts";
import { openSse, type SseReader } from "./helpers/sse.ts";
import {
  type Acked,
  assertOncePerKeyInOrder,
  changes,
  untilSeen,
  writes,
} from "./helpers/watch_writes.ts";

Deno.test("watch on 3 replicas: every acknowledged write once, in version order per key, across a node kill, a disconnect and a proxy restart", async () => {
  const cluster = await ProcessCluster.create();
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

    // Long polls and watch streams use request.signal: with Deno.serve's legacy abort (it aborts
    // on every successful answer) each process warns once on stderr (deno.json opts out).
    const processes = [...cluster.nodes.values(), proxy];
    const warned = processes.filter((p) => p.stderrLines.some((l) => l.includes("legacy")));
    assertEquals(warned.map((p) => p.url), [], "no Deno.serve legacy-abort warning");

    const all = [...first.events, ...second.events];
    assertEquals(all.filter((e) => e.event !== "message"), [], "no compacted or reset events");
    assertOncePerKeyInOrder(changes(all).filter((c) => c.key !== "w/ttl"), acked);
    console.log(
      `watch e2e: ${acked.length} acknowledged writes, ${first.events.length} + ${second.events.length} events`,
    );
  } finally {
    for (const r of readers) await r.stop();
    await cluster.stop();
  }
});
