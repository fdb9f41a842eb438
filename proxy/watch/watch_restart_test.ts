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

Deno.test("watchStream, a node of 3 restarts: a version it and one other accepted is not skipped when it and the third accept a newer one", async () => {
  const { topology, logs } = await cluster(3);
  const stop = new AbortController();
  const live = collect(
    watchStream({ topology, feed: logs, waitMs: 7 }, "", undefined, stop.signal),
  );
  try {
    await until("the stream reads the 3 nodes", () => logs.reads.length >= 3);
    for (const id of ["n1", "n2", "n3"]) logs.hold(id);
    // V1 is accepted by n1 and n2 (acknowledged); n1 restarts before the stream read it there;
    // V2 is then accepted by n1 and n3, which never had V1.
    logs.log("n1", "k", V(1));
    logs.log("n2", "k", V(1));
    logs.restart("n1");
    logs.log("n1", "k", V(2));
    logs.log("n3", "k", V(2));
    let mark = logs.reads.length;
    logs.release("n1");
    await until("n1 read on its new log", readAgain(logs, mark, "n1"));
    mark = logs.reads.length;
    logs.release("n3");
    await until("n3 read again", readAgain(logs, mark, "n3"));
    logs.release("n2");
    await until("V2's event", () => events(live.items).includes(`k@${V(2)}`));
    await settle();
    assertEquals(others(live.items), [], "no compacted: one node of 3 restarted");
    assertEquals(events(live.items), [`k@${V(1)}`, `k@${V(2)}`]);
  } finally {
    stop.abort();
    logs.close();
    await live.done;
  }
});

/**
 * 60 writes, each logged by a random majority of 3 or all, with n1's reads held for the 5 before
 * it restarts; then each key written on all 3 (what hints and anti-entropy bring about): the
 * stream sends every write once, per key in order, and no `compacted`.
 */
async function restartRun(seed: number): Promise<void> {
  const { topology, logs } = await cluster(3);
  const stop = new AbortController();
  const live = collect(
    watchStream({ topology, feed: logs, waitMs: 7 }, "", undefined, stop.signal),
  );
  let x = seed;
  const pick = (n: number) => (x = (x * 48271) % 2147483647) % n;
  const nodes = ["n1", "n2", "n3"];
  const keys = ["k0", "k1", "k2", "k3"];
  const want: string[] = [];
  const write = (key: string, on: string[]) => {
    const ver = V(want.length + 1);
    for (const id of on) logs.log(id, key, ver);
    want.push(`${key}@${ver}`);
  };
  try {
    await until("the stream reads the 3 nodes", () => logs.reads.length >= 3);
    const restartAt = 15 + pick(30);
    for (let i = 0; i < 60; i++) {
      if (i === restartAt - 5) logs.hold("n1");
      const late = i % 9 === 0 ? `n${2 + pick(2)}` : undefined;
      if (late !== undefined) logs.hold(late);
      const drop = pick(3) === 0 ? undefined : nodes[pick(3)];
      write(keys[pick(keys.length)]!, nodes.filter((id) => id !== drop));
      if (i === restartAt) {
        logs.restart("n1");
        logs.release("n1");
      }
      if (i % 5 === seed % 5) await new Promise((r) => setTimeout(r, 3));
      if (late !== undefined) logs.release(late);
    }
    for (const key of keys) write(key, nodes);
    const missing = () => want.filter((w) => !events(live.items).includes(w)).join(", ");
    await until(() => `every write as an event (seed ${seed}; missing ${missing()})`, () => {
      return events(live.items).length >= want.length;
    });
    await settle();
    assertEquals(others(live.items), [], `seed ${seed}: no compacted`);
    const sent = events(live.items);
    assertEquals(sent.toSorted(), want.toSorted(), `seed ${seed}: every write once`);
    assertInOrder(sent, `seed ${seed}`);
    // A resume from an event's id gets what came after it (across keys in any order), whether
    // n1 had restarted at that event or not.
    const ids = live.items.flatMap((i) => i.kind === "changes" ? i.changes : []);
    for (const at of [pick(ids.length), ids.length - 2]) {
      const after = sent.slice(at + 1);
      const again = new AbortController();
      const deps = { topology, feed: logs, waitMs: 7 };
      const r = collect(watchStream(deps, "", decodeWatchCursor(ids[at]!.id), again.signal));
      await until(`the resume at event ${at} (seed ${seed})`, () => {
        return events(r.items).length >= after.length;
      }).finally(async () => {
        await settle();
        again.abort();
        await r.done;
      });
      assertEquals(others(r.items), [], `seed ${seed}, resumed at ${at}: no compacted`);
      const got = events(r.items);
      assertEquals(got.toSorted(), after.toSorted(), `seed ${seed}, resumed at ${at}`);
      assertInOrder(got, `seed ${seed}, resumed at ${at}`);
    }
  } finally {
    stop.abort();
    logs.close();
    await live.done;
  }
}

/** Fails unless each key's versions in `sent` (`key@version`) increase. */
function assertInOrder(sent: string[], what: string): void {
  const last = new Map<string, string>();
  for (const e of sent) {
    const [key, ver] = e.split("@") as [string, string];
    assert((last.get(key) ?? "") < ver, `${what}: ${key}'s ${ver} after ${last.get(key)}`);
    last.set(key, ver);
  }
}

Deno.test("watchStream across a restart of one node of 3 sends every write once, per key in order (randomized)", async () => {
  for (let seed = 1; seed <= 12; seed++) await restartRun(seed);
});
