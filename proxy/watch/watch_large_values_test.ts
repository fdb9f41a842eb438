import { assert, assertEquals } from "@std/assert";
import { FakeChangeLogs } from "../../tests/doubles/fake_change_logs.ts";
import { until } from "../../tests/helpers/poll.ts";
import {
  FakeTopology,
  nodeInfos,
  stableMap,
  topologyOf,
} from "../../tests/doubles/test_cluster.ts";
import type { ChangeFeed } from "./change_feed.ts";
import { KEEP_BYTES, SharedFeed } from "./shared_feed.ts";
import { type WatchItem, watchStream, type WatchStreamDeps } from "./watch_stream.ts";

/** The `key@version` of each event in `items` (or their kind: `compacted`, `reset`). */
function namesOf(items: WatchItem[]): string[] {
  return items.flatMap((item) =>
    item.kind === "changes"
      ? item.changes.map((c) => `${c.event.key}@${c.event.version}`)
      : [item.kind]
  );
}

/** The events `stream` yields until `n` came (or `compacted`/`reset`), after `first`'s. */
async function eventsOf(stream: AsyncGenerator<WatchItem>, n: number, first: string[] = []) {
  const got = [...first];
  while (got.length < n) {
    const { value, done } = await stream.next();
    if (done) break;
    got.push(...namesOf([value]));
  }
  return got;
}

/** A stream started: its heads read (the generator runs up to its first item). */
async function started(deps: WatchStreamDeps, signal: AbortSignal) {
  let ready!: () => void;
  const heads = new Promise<void>((r) => ready = r);
  const stream = watchStream(deps, "", undefined, signal, ready);
  const first = stream.next();
  await heads;
  return { stream, first };
}

Deno.test("watch streams over the shared feed with 1 MiB values: the buffers stay under KEEP_BYTES per node, and a stream that lagged behind them gets every write once, in order", async () => {
  const topology = new FakeTopology(await topologyOf({ ...stableMap(nodeInfos(3)), replicas: 3 }));
  const logs = new FakeChangeLogs();
  const feed = new SharedFeed(logs as unknown as ChangeFeed, 20, 50, 0);
  const deps = { topology, feed, waitMs: 20 };
  const following = new AbortController();
  const lagging = new AbortController();
  const value = btoa("x".repeat(1 << 20));
  const writes = Array.from({ length: 40 }, (_, i) => ({
    key: `big/${i % 7}`,
    ver: `${(0x190000000000 + i).toString(16).padStart(12, "0")}-0000-p1`,
  }));
  const want = writes.map((w) => `${w.key}@${w.ver}`);
  // Both streams start (their heads read); then only `live` is read while the writes come.
  const live = await started(deps, following.signal);
  const behind = await started(deps, lagging.signal);
  try {
    let most = 0;
    const sample = setInterval(() => most = Math.max(most, feed.heldBytes), 2);
    const reading = live.first.then((first) =>
      eventsOf(live.stream, want.length, namesOf([first.value!]))
    ).finally(() => clearInterval(sample));
    for (const [i, w] of writes.entries()) {
      for (const id of ["n1", "n2", "n3"]) logs.log(id, w.key, w.ver, value);
      if (i % 4 === 3) await new Promise((r) => setTimeout(r, 30));
    }
    assertEquals(await reading, want);
    assert(most <= 3 * KEEP_BYTES, `the buffers held ${most} bytes, over 3 × ${KEEP_BYTES}`);
    assert(most > KEEP_BYTES, `the buffers held only ${most} bytes: the test reads no buffer`);
    // The lagging stream reads the nodes for what the buffers no longer hold: nothing lost.
    const head = await behind.first;
    assertEquals(await eventsOf(behind.stream, want.length, namesOf([head.value!])), want);
  } finally {
    following.abort();
    lagging.abort();
    await live.stream.return(undefined);
    await behind.stream.return(undefined);
    logs.close();
  }
  await until("the buffers are dropped", () => feed.buffers === 0, 10_000);
});

Deno.test("a stream whose merge holds more values than maxHeldChars waiting for a majority is reset, not grown", async () => {
  const topology = new FakeTopology(await topologyOf({ ...stableMap(nodeInfos(3)), replicas: 3 }));
  const logs = new FakeChangeLogs();
  const feed = new SharedFeed(logs as unknown as ChangeFeed, 20, 50, 0);
  const maxHeldChars = 8 << 20;
  const deps = { topology, feed, waitMs: 20, maxHeldChars };
  const stop = new AbortController();
  const value = btoa("x".repeat(1 << 20)); // 1.33 Mi characters
  const s = await started(deps, stop.signal);
  try {
    // Only n1 logs them (n2 and n3 far behind): no version has its majority, each is held.
    for (let i = 0; i < 12; i++) {
      const ver = `${(0x190000000000 + i).toString(16).padStart(12, "0")}-0000-p1`;
      logs.log("n1", `big/${i}`, ver, value);
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const quiet = new Promise<string[]>((r) =>
      timer = setTimeout(() => r(["nothing in 10 s"]), 10_000)
    );
    const got = s.first.then((head) => eventsOf(s.stream, 1, namesOf([head.value!])));
    assertEquals(await Promise.race([got, quiet]).finally(() => clearTimeout(timer)), ["reset"]);
  } finally {
    stop.abort();
    await s.stream.return(undefined);
    logs.close();
  }
});
