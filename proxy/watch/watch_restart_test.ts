// A node that restarted, whose log was cut past the stream's position, or that the stream first
// reached with the start of its log dropped, is read again from its log's first change; what it
// holds there includes writes the stream never read, so it must not count as already sent.
import { assert, assertEquals } from "@std/assert";
import {
  FakeTopology,
  nodeInfos,
  stableMap,
  topologyOf,
} from "../../tests/doubles/test_cluster.ts";
import { FakeChangeLogs } from "../../tests/doubles/fake_change_logs.ts";
import { until } from "../../tests/helpers/poll.ts";
import { RingkvError } from "../../shared/errors.ts";
import type { NodeRef } from "../nodes/node_client.ts";
import type { ChangeFeed } from "./change_feed.ts";
import { decodeWatchCursor } from "./watch_cursor.ts";
import { type WatchItem, watchStream } from "./watch_stream.ts";

/** Collects a stream's items until it ends. */
function collect(stream: AsyncGenerator<WatchItem>): { items: WatchItem[]; done: Promise<void> } {
  const items: WatchItem[] = [];
  const done = (async () => {
    for await (const item of stream) items.push(item);
  })();
  return { items, done };
}

/** `key@version` of each event, in order. */
function events(items: WatchItem[]): string[] {
  return items.flatMap((i) =>
    i.kind === "changes" ? i.changes.map((c) => `${c.event.key}@${c.event.version}`) : []
  );
}

/** The kinds of the items that are not events (`compacted`, `reset`). */
function others(items: WatchItem[]): string[] {
  return items.filter((i) => i.kind !== "changes").map((i) => i.kind);
}

/** A version with time `n`. */
const V = (n: number) => `${(0x190000000000 + n).toString(16)}-0000-p1`;

/** Lets the stream read what it will for a while: nothing more may come after it. */
const settle = () => new Promise((r) => setTimeout(r, 300));

async function cluster(replicas: number) {
  const topology = new FakeTopology(await topologyOf({ ...stableMap(nodeInfos(3)), replicas }));
  return { topology, logs: new FakeChangeLogs() };
}

/** Whether node `id` was asked for a page since read number `mark`. */
function readAgain(logs: FakeChangeLogs, mark: number, id: string): () => boolean {
  return () => logs.reads.slice(mark).some((r) => r.node === id);
}

Deno.test("watchStream resumed after one node of 3 restarted sends a write acknowledged on all 3 after the cursor, once", async () => {
  const { topology, logs } = await cluster(3);
  const first = new AbortController();
  const second = new AbortController();
  const live = collect(
    watchStream({ topology, feed: logs, waitMs: 7 }, "", undefined, first.signal),
  );
  let resumed: ReturnType<typeof collect> | undefined;
  try {
    await until("the stream reads the 3 nodes", () => logs.reads.length >= 3);
    for (const id of ["n1", "n2", "n3"]) logs.log(id, "a", V(1));
    await until("a's event", () => events(live.items).length === 1);
    const last = live.items.find((i) => i.kind === "changes");
    assert(last?.kind === "changes");
    const cursor = last.changes.at(-1)!.id;
    first.abort();
    await live.done;
    // While the client is away: k is written on all 3 replicas, then n1 restarts (same data).
    for (const id of ["n1", "n2", "n3"]) logs.log(id, "k", V(2));
    logs.restart("n1");
    const deps = { topology, feed: logs, waitMs: 7 };
    resumed = collect(watchStream(deps, "", decodeWatchCursor(cursor), second.signal));
    await until("k's event", () => events(resumed!.items).length > 0);
    await settle();
    assertEquals(others(resumed.items), [], "no compacted: one node of 3 restarted");
    assertEquals(events(resumed.items), [`k@${V(2)}`]);
  } finally {
    first.abort();
    second.abort();
    logs.close();
    await live.done;
    await resumed?.done;
  }
});

/** A running stream; `lose` makes n1 lose its log (restart or cut) after k is on all 3. */
async function liveLoss(replicas: number, lose: (logs: FakeChangeLogs) => void) {
  const { topology, logs } = await cluster(replicas);
  const stop = new AbortController();
  const live = collect(
    watchStream({ topology, feed: logs, waitMs: 7 }, "", undefined, stop.signal),
  );
  try {
    await until("the stream reads the 3 nodes", () => logs.reads.length >= 3);
    // k lands on all 3 while the stream's reads are a poll behind; n1 then loses its log before
    // the stream read k there, and is read again first.
    for (const id of ["n1", "n2", "n3"]) logs.hold(id);
    for (const id of ["n1", "n2", "n3"]) logs.log(id, "k", V(2));
    lose(logs);
    const mark = logs.reads.length;
    logs.release("n1");
    await until("n1 read again on its new log", readAgain(logs, mark, "n1"));
    logs.release("n2");
    logs.release("n3");
    await until("an event or compacted", () => live.items.length > 0);
    await settle();
    return live.items;
  } finally {
    stop.abort();
    logs.close();
    await live.done;
  }
}

const restartN1 = (logs: FakeChangeLogs) => logs.restart("n1");
/** n1 goes on logging and its bound drops its changes up to k's. */
const cutN1 = (logs: FakeChangeLogs) => {
  logs.log("n1", "z", V(3));
  logs.compact("n1", 1);
};

Deno.test("watchStream, a node of 3 restarts before the stream read a write on all 3: the write comes once", async () => {
  const items = await liveLoss(3, restartN1);
  assertEquals(others(items), [], "no compacted: one node of 3 restarted");
  assertEquals(events(items), [`k@${V(2)}`]);
});

Deno.test("watchStream, a node of 3 has its log cut past the stream's position: a write on all 3 comes once", async () => {
  const items = await liveLoss(3, cutN1);
  assertEquals(others(items), [], "no compacted: one node of 3 lost changes");
  assertEquals(events(items).filter((e) => e.startsWith("k@")), [`k@${V(2)}`]);
});

Deno.test("watchStream with 2 replicas, one restarts before the stream read a write on both: the write comes once", async () => {
  const items = await liveLoss(2, restartN1);
  assertEquals(others(items), [], "no compacted: the other replica logged every write");
  assertEquals(events(items), [`k@${V(2)}`]);
});

Deno.test("watchStream with 1 replica, its node restarts before the stream read a write: compacted, not a silent skip", async () => {
  const items = await liveLoss(1, restartN1);
  assertEquals(others(items), ["compacted"]);
});

Deno.test("watchStream that first reaches a node whose log no longer starts at 1 does not take what it holds as sent", async () => {
  const { topology, logs } = await cluster(3);
  const down = new Set(["n1"]);
  const feed: Pick<ChangeFeed, "page" | "versionsAt"> = {
    page: (n: NodeRef, epoch: number, q: Parameters<ChangeFeed["page"]>[2]) =>
      down.has(n.id)
        ? Promise.reject(new RingkvError("node_unavailable", `Cannot read node ${n.id}: down`))
        : logs.page(n, epoch, q),
    versionsAt: (n, epoch, boot, at, keys) => logs.versionsAt(n, epoch, boot, at, keys),
  };
  const stop = new AbortController();
  const live = collect(watchStream({ topology, feed, waitMs: 7 }, "", undefined, stop.signal));
  try {
    await until("the stream reads n2 and n3", () => logs.reads.length >= 2);
    // n1 was unreachable when the stream opened: k reaches all 3, n1's bound drops its start.
    logs.hold("n2");
    logs.hold("n3");
    for (const id of ["n1", "n2", "n3"]) logs.log(id, "k", V(2));
    logs.log("n1", "z", V(3));
    logs.compact("n1", 1);
    const mark = logs.reads.length;
    down.delete("n1");
    await until("n1 read from its first change", readAgain(logs, mark, "n1"));
    logs.release("n2");
    logs.release("n3");
    await until("k's event", () => events(live.items).some((e) => e.startsWith("k@")), 5000);
    await settle();
    assertEquals(others(live.items), []);
    assertEquals(events(live.items).filter((e) => e.startsWith("k@")), [`k@${V(2)}`]);
  } finally {
    stop.abort();
    logs.close();
    await live.done;
  }
});
