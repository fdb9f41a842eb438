import { assert, assertEquals } from "@std/assert";
import { ProcessCluster } from "./helpers/process_cluster.ts";
import { until } from "./helpers/poll.ts";
import { openSse, type SseEvent, type SseReader } from "./helpers/sse.ts";
import {
  type Acked,
  assertOncePerKeyInOrder,
  changes,
  untilSeen,
  write,
} from "./helpers/watch_writes.ts";

/** PUTs `key` through the proxy; its version. */
async function put(proxy: string, key: string, body: string): Promise<string> {
  const res = await fetch(`${proxy}/kv/${key}`, { method: "PUT", body });
  await res.body?.cancel();
  assert(res.ok, `PUT ${key}: ${res.status}`);
  return res.headers.get("etag")!.slice(1, -1);
}

for (const restart of [false, true]) {
  const what = restart ? "after one node of 3 restarted" : "with no restart";
  Deno.test(`watch on 3 replicas resumed ${what} gets the write acknowledged while away, once`, async () => {
    const cluster = await ProcessCluster.create();
    const readers: SseReader[] = [];
    try {
      const proxy = await cluster.startAll(3, 3);
      const first = await openSse(`${proxy.url}/watch?prefix=w/`);
      readers.push(first);
      await put(proxy.url, "w/a", "1");
      await until("w/a's event", () => changes(first.events).length > 0);
      const cursor = first.lastId()!;
      await first.stop();
      const v = await put(proxy.url, "w/k", "while away");
      // On all three replicas (a write is answered once two accepted), then n1 restarts.
      const onAll = async () => {
        for (const id of ["n1", "n2", "n3"]) {
          const entries = await cluster.nodeEntries(id);
          if (!entries.some((e) => e.k === "w/k" && e.ver === v)) return false;
        }
        return true;
      };
      await until("w/k is on the 3 replicas", onAll, 10_000, 50);
      if (restart) {
        const n1 = cluster.nodes.get("n1")!;
        await n1.kill("SIGKILL");
        await cluster.startNode("n1", n1.port);
      }
      const second = await openSse(`${proxy.url}/watch?prefix=w/`, { "last-event-id": cursor });
      readers.push(second);
      await until("w/k's event", () => changes(second.events).length > 0, 20_000);
      // A second copy would come with the other replicas' pages: let them be read.
      await new Promise((r) => setTimeout(r, 1000));
      await second.stop();
      assertEquals(second.events.filter((e) => e.event !== "message"), [], "no compacted");
      assertEquals(changes(second.events).map((c) => `${c.key} ${c.version}`), [`w/k ${v}`]);
    } finally {
      for (const r of readers) await r.stop();
      await cluster.stop();
    }
  });
}

/** Waits until `acked` has `more` writes beyond `from`, or `ms` passed (writes may stall). */
async function ackedMore(acked: Acked[], more: number, ms: number): Promise<void> {
  const want = acked.length + more;
  const deadline = Date.now() + ms;
  while (acked.length < want && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
}

// A node's change log goes on across its restart (node/engine/change_recovery.ts): before, each
// restart counted as a node that lost changes, and the second of three gave `compacted`.
for (const replicas of [3, 1]) {
  const what = replicas === 3
    ? "a rolling restart of all three nodes (kill -9, kill -9, a clean stop)"
    : "a restart of a node with 1 replica";
  Deno.test(`watch of every key goes on across ${what} without compacted, live, resumed after it and resumed during it: every acknowledged write once, per key in version order`, async () => {
    const cluster = await ProcessCluster.create();
    const readers: SseReader[] = [];
    let writing = true;
    let writer: Promise<void> = Promise.resolve();
    try {
      const proxy = await cluster.startAll(3, replicas);
      const acked: Acked[] = [];
      const live = await openSse(`${proxy.url}/watch`);
      const away = await openSse(`${proxy.url}/watch`);
      // One more reconnects while each node is down, as `kv watch` does when its stream breaks.
      const during = [await openSse(`${proxy.url}/watch`)];
      readers.push(live, away, during[0]!);
      const lastIdOf = (chain: SseReader[]) =>
        chain.map((r) => r.lastId()).filter((id) => id !== undefined).at(-1)!;
      writer = (async () => {
        for (let i = 0; writing; i++) await write(proxy.url, i, acked, 40);
      })();
      await ackedMore(acked, 30, 20_000);
      await until("the watchers' events", () => changes(away.events).length > 10);
      await until("the watchers' events", () => changes(during[0]!.events).length > 10);
      // One watcher leaves before the restarts and resumes after them with its last id.
      await away.stop();
      const restarts = replicas === 3
        ? [["n1", "SIGKILL"], ["n2", "SIGKILL"], ["n3", "SIGTERM"]] as const
        : [["n2", "SIGKILL"]] as const;
      for (const [id, signal] of restarts) {
        const node = cluster.nodes.get(id)!;
        await during.at(-1)!.stop();
        await node.kill(signal);
        const again = await openSse(`${proxy.url}/watch`, { "last-event-id": lastIdOf(during) });
        during.push(again);
        readers.push(again);
        await ackedMore(acked, 10, 3_000);
        await cluster.startNode(id, node.port);
        await ackedMore(acked, 20, 20_000);
      }
      const resumed = await openSse(`${proxy.url}/watch`, { "last-event-id": away.lastId()! });
      readers.push(resumed);
      writing = false;
      await writer;
      await untilSeen([live], acked, 30_000);
      await untilSeen([away, resumed], acked, 30_000);
      await untilSeen(during, acked, 30_000);
      for (const r of readers) await r.stop();
      const streams: [string, SseEvent[]][] = [
        ["live", live.events],
        ["resumed", [...away.events, ...resumed.events]],
        ["resumed while a node was down", during.flatMap((r) => r.events)],
      ];
      for (const [name, events] of streams) {
        assertEquals(events.filter((e) => e.event !== "message"), [], `${name}: no compacted`);
        assertOncePerKeyInOrder(changes(events), acked);
      }
      assert(acked.length > 60, `${acked.length} writes acknowledged`);
    } finally {
      writing = false;
      await writer;
      for (const r of readers) await r.stop();
      await cluster.stop();
    }
  });
}
