import { assert, assertEquals } from "@std/assert";
import {
  admin,
  clusterView,
  loadKeys,
  ProcessCluster,
  waitStable,
} from "./helpers/process_cluster.ts";
import { openSse, type SseReader } from "./helpers/sse.ts";
import {
  type Acked,
  assertOncePerKeyInOrder,
  changes,
  untilSeen,
  write,
} from "./helpers/watch_writes.ts";

/** Keys the writer cycles through: enough that some move to the added node. */
const KEYS = 24;

/** A writer doing acknowledged writes one after the other until stopped. */
function startWriter(proxy: string, acked: Acked[]) {
  let stopped = false;
  let i = 0;
  const done = (async () => {
    for (; !stopped && i < 100_000; i++) await write(proxy, i, acked, KEYS);
  })();
  return {
    /** Writes made so far. */
    count: () => i,
    async stop() {
      stopped = true;
      await done;
    },
  };
}

/** Polls until `ok`, failing after `ms`. */
async function until(ok: () => boolean | Promise<boolean>, what: string, ms: number) {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 100_000 && !(await ok()); i++) {
    assert(Date.now() < deadline, `timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

Deno.test("watch on 3 replicas: every acknowledged write once, in version order per key, while a node is added (the watcher resuming mid-move) and another is killed", async () => {
  const cluster = await ProcessCluster.create();
  const readers: SseReader[] = [];
  let writer: ReturnType<typeof startWriter> | undefined;
  try {
    for (const id of ["n1", "n2", "n3"]) await cluster.startNode(id);
    const urls = [...cluster.nodes.values()].map((n) => n.url).join(",");
    const args = ["--nodes", urls, "--replicas", "3", "--timeout-ms", "1000", "--probe-ms", "200"];
    const proxy = await cluster.startProxy("p1", args);
    // Keys outside the watched prefix make the copy take a while, so writes land during it.
    await loadKeys(proxy.url, "bulk/", 3000);
    const acked: Acked[] = [];
    const first = await openSse(`${proxy.url}/watch?prefix=w/`);
    readers.push(first);
    assertEquals(first.status, 200);
    writer = startWriter(proxy.url, acked);
    await until(() => acked.length >= 20, "20 writes are acknowledged", 30_000);
    await untilSeen([first], acked.slice(0, 10), 20_000);

    const n4 = await cluster.startNode("n4");
    const { epoch } = await clusterView(proxy.url);
    const added = await admin(proxy.url, "POST", "/cluster/nodes", { url: n4.url, weight: 1 });
    assertEquals(added.status, 202, JSON.stringify(added.body));
    const moveStart = acked.length;
    // Mid-move: the watcher disconnects (the writer goes on) and resumes with its last id.
    await first.stop();
    const cursor = first.lastId();
    assert(cursor !== undefined, "the first watcher got events with ids");
    const view = await clusterView(proxy.url);
    assert(view.rebalancing !== null, "the watcher resumes while the node is being added");
    const second = await openSse(`${proxy.url}/watch?prefix=w/`, { "last-event-id": cursor });
    readers.push(second);
    assertEquals(second.status, 200);
    await waitStable(proxy.url, epoch + 3, 120_000);
    const moveEnd = acked.length;

    await cluster.nodes.get("n2")!.kill("SIGKILL");
    const killedAt = acked.length;
    await until(() => acked.length >= killedAt + 20, "20 writes after the kill", 60_000);
    await writer.stop();
    await untilSeen(readers, acked, 60_000);
    await second.stop();

    const all = [...first.events, ...second.events];
    assertEquals(all.filter((e) => e.event !== "message"), [], "no compacted or reset events");
    assert(acked.length > 0, "writes were acknowledged");
    const during = acked.slice(moveStart, moveEnd);
    assert(during.length > 0, "writes were acknowledged between the 202 and the move's end");
    assertOncePerKeyInOrder(changes(all), acked);
    console.log(
      `watch rebalance e2e: ${acked.length} acknowledged writes (${during.length} during the move), ${first.events.length} + ${second.events.length} events`,
    );
  } finally {
    await writer?.stop();
    for (const r of readers) await r.stop();
    await cluster.stop();
  }
});
