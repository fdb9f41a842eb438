import { assert, assertEquals } from "@std/assert";
import {
  FakeTopology,
  nodeInfos,
  stableMap,
  topologyOf,
} from "../../tests/doubles/test_cluster.ts";
import { RingkvError } from "../../shared/errors.ts";
import type { ChangePage } from "./change_feed.ts";
import { watchStream } from "./watch_stream.ts";

Deno.test("watchStream does not keep the pages it has streamed (memory per stream is bounded)", async () => {
  const topology = new FakeTopology(await topologyOf(stableMap(nodeInfos(1))));
  const pages = 1500;
  const valueChars = 128 * 1024;
  let served = 0;
  const feed = {
    page(_n: unknown, _e: number, q: { after?: number }): Promise<ChangePage> {
      if (q.after === undefined) return Promise.resolve({ boot: "b", first: 1, last: 0 });
      const s = ++served;
      // A fresh flat string per page, as a node's answer would be (repeat() shares its parts).
      const v = new Uint8Array(valueChars * 3 / 4).fill(s).toBase64();
      const ver = `${s.toString(16).padStart(12, "0")}-0000-n1`;
      return Promise.resolve({
        boot: "b",
        first: 1,
        last: s,
        changes: [{ s, k: "k", ver, prev: null, v, t: "text/plain" }],
      });
    },
    versionsAt: () => Promise.resolve({}),
  };
  const stop = new AbortController();
  const stream = watchStream({ topology, feed, waitMs: 0 }, "", undefined, stop.signal);
  let events = 0;
  let before = 0;
  for await (const item of stream) {
    if (item.kind !== "change") continue;
    if (++events === 100) before = Deno.memoryUsage().heapUsed;
    if (events === pages) break;
  }
  stop.abort();
  const grown = Deno.memoryUsage().heapUsed - before;
  assertEquals(events, pages);
  // 1,400 pages of 128 KiB went through: kept, they would be about 175 MiB.
  assert(grown < 64 << 20, `the heap grew by ${grown >> 20} MiB while streaming`);
});

Deno.test("watchStream retrying a node that is down does not pile up listeners on the stream's signal", async () => {
  const topology = new FakeTopology(await topologyOf(stableMap(nodeInfos(1))));
  let calls = 0;
  const feed = {
    page(_n: unknown, _e: number, q: { after?: number }): Promise<ChangePage> {
      if (q.after === undefined) return Promise.resolve({ boot: "b", first: 1, last: 0 });
      calls++;
      return Promise.reject(new RingkvError("node_unavailable", "Cannot read changes: down"));
    },
    versionsAt: () => Promise.resolve({}),
  };
  const stop = new AbortController();
  let listening = 0;
  const add = stop.signal.addEventListener.bind(stop.signal);
  const remove = stop.signal.removeEventListener.bind(stop.signal);
  stop.signal.addEventListener = ((...args: Parameters<typeof add>) => {
    listening++;
    add(...args);
  }) as typeof add;
  stop.signal.removeEventListener = ((...args: Parameters<typeof remove>) => {
    listening--;
    remove(...args);
  }) as typeof remove;
  const stream = watchStream({ topology, feed, waitMs: 0 }, "", undefined, stop.signal);
  const next = stream.next();
  const deadline = Date.now() + 20_000;
  while (calls < 5 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  assert(calls >= 5, `the node was asked ${calls} times`);
  // The stream's own listener and at most the one of the retry under way.
  assert(listening <= 2, `${listening} listeners on the stream's signal`);
  stop.abort();
  assertEquals((await next).done, true);
});
