import { assert, assertEquals } from "@std/assert";
import { ProcessCluster } from "./helpers/process_cluster.ts";
import { until } from "./helpers/poll.ts";
import { openSse, type SseReader } from "./helpers/sse.ts";
import { changes } from "./helpers/watch_writes.ts";

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
