import { assert, assertEquals, assertRejects } from "@std/assert";
import { type NodeRef, StaleEpochError } from "../nodes/node_client.ts";
import { until } from "../../tests/helpers/poll.ts";
import type { WireChange } from "../../node/http/change_routes.ts";
import type { ChangeFeed, ChangePage } from "./change_feed.ts";
import { gatherFor, KEEP_BYTES, SharedFeed } from "./shared_feed.ts";

type Query = Parameters<ChangeFeed["page"]>[2];

/** A node log of `changes` (seq 1..n) behind the ChangeFeed calls, counting them. */
function fakeFeed(changes: WireChange[], longPollMs = 0) {
  const calls = { page: 0, versionsAt: 0, asked: [] as string[][] };
  const feed = {
    async page(_n: unknown, _e: number, q: Query): Promise<ChangePage> {
      calls.page++;
      // A long poll: an answer with nothing new takes a little while (the node's wait).
      const none = q.after !== undefined && !changes.some((c) => c.s > q.after!);
      if (longPollMs > 0 && none && q.waitMs > 0) {
        await new Promise((r) => setTimeout(r, Math.min(q.waitMs, longPollMs)));
      }
      const last = changes.length;
      if (q.after === undefined) return { boot: "b", first: 1, last };
      const page = changes.filter((c) => c.s > q.after! && c.k.startsWith(q.prefix))
        .slice(0, q.limit);
      return { boot: "b", first: 1, last, changes: page };
    },
    versionsAt(_n: unknown, _e: number, _b: string, _at: number, keys: string[]) {
      calls.versionsAt++;
      calls.asked.push(keys);
      return Promise.resolve(Object.fromEntries(keys.map((k) => [k, "node"])));
    },
  } as unknown as ChangeFeed;
  return { feed, calls };
}

function change(s: number, k: string, prev: string | null): WireChange {
  return { s, k, ver: `v${s}`, prev, v: "", t: "t" };
}

Deno.test("SharedFeed answers reads at the head from one shared read, by prefix, and reads behind it directly", async () => {
  const log: WireChange[] = [change(1, "a", null)];
  const { feed, calls } = fakeFeed(log, 5);
  const shared = new SharedFeed(feed, 20);
  const node = { id: "n1", url: "http://n1" };
  const q = { boot: "b", after: 1, prefix: "x", waitMs: 20, limit: 10 };
  assertEquals((await shared.page(node, 1, q)).changes, []); // the buffer is not up yet: direct
  log.push(change(2, "x1", null), change(3, "y1", null), change(4, "x1", "v2"));
  const deadline = Date.now() + 5000;
  let page = await shared.page(node, 1, q);
  while (page.changes?.length !== 2 && Date.now() < deadline) page = await shared.page(node, 1, q);
  assertEquals(page.changes?.map((c) => c.s), [2, 4]);
  assertEquals(page.last, 4);
  const before = calls.page;
  const again = await shared.page(node, 1, { ...q, prefix: "" });
  assertEquals(again.changes?.map((c) => c.s), [2, 3, 4]);
  assertEquals(calls.page - before <= 1, true, "served from the buffer");
  // Versions at a position: from the buffer when a later change is there, else asked.
  assertEquals(await shared.versionsAt(node, 1, "b", 2, ["x1", "zz"]), { x1: "v2", zz: "node" });
  assertEquals(calls.versionsAt, 1);
  // Let the poller see no demand and stop.
  await new Promise((r) => setTimeout(r, 200));
});

Deno.test("SharedFeed.versionsAt() waits for a key's change to reach the buffer before asking the node", async () => {
  const log: WireChange[] = [change(1, "a", null)];
  const { feed, calls } = fakeFeed(log, 5);
  const shared = new SharedFeed(feed, 20, 1000);
  const node = { id: "n1", url: "http://n1" };
  const q = { boot: "b", after: 1, prefix: "", waitMs: 20, limit: 10 };
  await shared.page(node, 1, q);
  const deadline = Date.now() + 10_000;
  // The poller's first rounds: the buffer then holds the log from its head.
  while (calls.page < 4 && Date.now() < deadline) await shared.page(node, 1, q);
  // The other replica's change of "k" lands a little later; "never" has none (asked after 1 s).
  setTimeout(() => log.push(change(2, "k", "before-k")), 30);
  // A stream reading meanwhile (as one does while it asks): the poller keeps polling.
  const reading = shared.page(node, 1, { ...q, prefix: "zz", waitMs: 3000 });
  const got = await shared.versionsAt(node, 1, "b", 1, ["k", "never"]);
  assertEquals(got, { k: "before-k", never: "node" });
  assertEquals(calls.asked, [["never"]], "only the key the buffer never saw was asked");
  assertEquals((await reading).changes, []);
});

Deno.test("SharedFeed.versionsAt() answers each key's first change after the position, from pages that come in turn while it waits", async () => {
  const log: WireChange[] = [change(1, "a", null)];
  const { feed, calls } = fakeFeed(log, 5);
  const shared = new SharedFeed(feed, 20, 3000, 0);
  const node = { id: "n1", url: "http://n1" };
  const q = { boot: "b", after: 1, prefix: "", waitMs: 20, limit: 10 };
  await shared.page(node, 1, q);
  const deadline = Date.now() + 10_000;
  while (calls.page < 4 && Date.now() < deadline) await shared.page(node, 1, q);
  // "j" comes in one poll, "k" in a later one, then "k" and "j" again: their first changes count.
  const seen = (s: number) => shared.page(node, 1, { ...q, after: s - 1, waitMs: 3000 });
  const asked = shared.versionsAt(node, 1, "b", 1, ["k", "j"]);
  log.push(change(2, "other", null), change(3, "j", "j-before"));
  await seen(3);
  log.push(change(4, "k", "k-before"));
  await seen(4);
  log.push(change(5, "k", "v4"), change(6, "j", "v3"));
  assertEquals(await asked, { k: "k-before", j: "j-before" });
  assertEquals(calls.versionsAt, 0, "the node was not asked");
  while (shared.polling > 0 && Date.now() < deadline + 5000) {
    await new Promise((r) => setTimeout(r, 20));
  }
});

Deno.test("SharedFeed's poller sends a lone change at once, then lets the next page gather for pollGatherMs", async () => {
  const log: WireChange[] = [change(1, "a", null)];
  const { feed, calls } = fakeFeed(log, 5);
  const gatherMs = 1000;
  const shared = new SharedFeed(feed, 20, 50, gatherMs);
  const node = { id: "n1", url: "http://n1" };
  const at = (after: number) => ({ boot: "b", after, prefix: "", waitMs: 5000, limit: 10 });
  await shared.page(node, 1, at(1));
  const deadline = Date.now() + 10_000;
  // The poller's first rounds: the buffer then holds the log from its head (empty pages).
  while (calls.page < 4 && Date.now() < deadline) {
    await shared.page(node, 1, { ...at(1), waitMs: 1 });
  }
  // A lone change after a quiet spell: no gather before it.
  const lone = shared.page(node, 1, at(1));
  let sent = Date.now();
  log.push(change(2, "x", null));
  assertEquals((await lone).changes?.map((c) => c.s), [2]);
  assert(Date.now() - sent < gatherMs / 2, `a lone change took ${Date.now() - sent} ms`);
  // Changes made while the poller gathers come in its next poll, all of them, once it ended.
  const polls = calls.page;
  sent = Date.now();
  log.push(change(3, "y", null), change(4, "z", null), change(5, "x", "v2"));
  const page = await shared.page(node, 1, at(2));
  const took = Date.now() - sent;
  assertEquals(page.changes?.map((c) => c.s), [3, 4, 5]);
  assertEquals(calls.page - polls, 1, "one poll carried the three changes");
  // Timers never fire early; late only by how loaded the machine is.
  assert(took >= gatherMs / 2 - 20, `the gathered page came after ${took} ms`);
  assert(took < gatherMs * 1.5 + 5000, `the gather outlived its bound: ${took} ms`);
  while (shared.polling > 0) {
    assert(Date.now() < deadline + gatherMs, "the poller did not stop");
    await new Promise((r) => setTimeout(r, 20));
  }
});

Deno.test("gatherFor() ends on a shared tick, between half and one and a half of its time", () => {
  for (let now = 1_000_000; now < 1_000_100; now++) {
    const ms = gatherFor(10, now);
    assertEquals((now + ms) % 10, 0, `from ${now}`);
    assert(ms >= 5 && ms < 15, `from ${now}: ${ms} ms`);
  }
});

Deno.test("SharedFeed.versionsAt() at a position ahead of the buffer (a stream that read the node directly) answers the version at that position", async () => {
  const log: WireChange[] = [change(1, "a", null)];
  const gate = { open: false, release: undefined as (() => void) | undefined };
  const feed = {
    async page(_n: unknown, _e: number, q: Query): Promise<ChangePage> {
      if (q.after === undefined) return { boot: "b", first: 1, last: log.length };
      // The poller (limit 1000) waits at the gate: the buffer stays behind the node.
      if (q.limit === 1000 && !gate.open) await new Promise<void>((r) => gate.release = r);
      const changes = log.filter((c) => c.s > q.after!).slice(0, q.limit);
      return { boot: "b", first: 1, last: log.length, changes };
    },
    versionsAt: (_n: unknown, _e: number, _b: string, _at: number, keys: string[]) =>
      Promise.resolve(Object.fromEntries(keys.map((k) => [k, "node"]))),
  } as unknown as ChangeFeed;
  const shared = new SharedFeed(feed, 20, 3000, 0);
  const node = { id: "n1", url: "http://n1" };
  await shared.page(node, 1, { boot: "b", after: 1, prefix: "", waitMs: 0, limit: 10 });
  const deadline = Date.now() + 10_000;
  while (gate.release === undefined && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 5));
  }
  // The buffer's last is 1; the node's log goes on to 3, and a stream read it up to 2 directly.
  log.push(change(2, "k", "k0"), change(3, "k", "v2"));
  const asking = shared.versionsAt(node, 1, "b", 2, ["k"]);
  gate.open = true;
  gate.release!();
  // At 2, "k" holds v2 (change 3's prev), not k0 (change 2's, at or before the position).
  assertEquals(await asking, { k: "v2" });
  while (shared.polling > 0 && Date.now() < deadline + 5000) {
    await new Promise((r) => setTimeout(r, 20));
  }
});

Deno.test("SharedFeed holds at most KEEP_BYTES of large values per node while a stream lags, and the lagging stream still reads every change in order", async () => {
  const log: WireChange[] = [change(1, "a", null)];
  const { feed } = fakeFeed(log, 5);
  const shared = new SharedFeed(feed, 20, 50, 0);
  const node = { id: "n1", url: "http://n1" };
  const at = (after: number, waitMs = 20) => ({ boot: "b", after, prefix: "", waitMs, limit: 10 });
  const value = btoa("x".repeat(1 << 20)); // a 1 MiB value: 1.4 MB of base64
  // The lagging stream read up to 1, then stops reading; another follows the head.
  await shared.page(node, 1, at(1));
  let head = 1;
  let most = 0;
  for (let batch = 0; batch < 8; batch++) {
    for (let i = 0; i < 4; i++) {
      log.push({ ...change(log.length + 1, `big/${log.length}`, null), v: value });
    }
    while (head < log.length) {
      const page = await shared.page(node, 1, at(head, 1000));
      head = page.changes?.at(-1)?.s ?? head;
    }
    most = Math.max(most, shared.heldBytes);
  }
  assert(most <= KEEP_BYTES, `the buffer held ${most} bytes, over ${KEEP_BYTES}`);
  assert(most > KEEP_BYTES / 2, `the buffer held only ${most} bytes`);
  // Behind the buffer: read from the node, then from the buffer, every change once, in order.
  const seen: number[] = [];
  for (let after = 1; after < log.length;) {
    const page = await shared.page(node, 1, at(after, 0));
    for (const c of page.changes ?? []) {
      assertEquals(c, log[c.s - 1]);
      seen.push(c.s);
    }
    after = page.changes?.at(-1)?.s ?? page.last;
  }
  assertEquals(seen, log.slice(1).map((c) => c.s));
  await until("the poller stops", () => shared.polling === 0, 5000);
});

Deno.test("SharedFeed drops a node's buffer and its remembered versions once no stream reads it, and serves a stream that comes later", async () => {
  const log: WireChange[] = [change(1, "a", null)];
  const { feed } = fakeFeed(log, 5);
  const shared = new SharedFeed(feed, 20, 0, 0);
  const nodes = [{ id: "n1", url: "http://n1" }, { id: "n2", url: "http://n2" }];
  const at = (after: number) => ({ boot: "b", after, prefix: "", waitMs: 20, limit: 10 });
  for (const node of nodes) await shared.page(node, 1, at(1));
  log.push({ ...change(2, "k", null), v: btoa("y".repeat(100_000)) }, change(3, "k", "v2"));
  // Read until each buffer holds the changes (a read served from the node does not fill it).
  await until("the buffers fill", () => {
    for (const node of nodes) void shared.page(node, 1, at(1));
    return shared.heldBytes > 200_000;
  }, 5000);
  assertEquals(await shared.versionsAt(nodes[0]!, 1, "b", 3, ["never"]), { never: "node" });
  assert(shared.answerBytes > 0);
  // No stream reads any more: the pollers stop and nothing is held.
  await until("the pollers stop", () => shared.polling === 0, 5000);
  assertEquals([shared.buffers, shared.heldBytes, shared.answerBytes], [0, 0, 0]);
  // A stream that comes later reads as the first did: at the head, then the next change.
  await shared.page(nodes[0]!, 1, at(3));
  log.push(change(4, "k", "v3"));
  const deadline = Date.now() + 5000;
  let page = await shared.page(nodes[0]!, 1, at(3));
  while (page.changes?.length !== 1 && Date.now() < deadline) {
    page = await shared.page(nodes[0]!, 1, at(3));
  }
  assertEquals(page.changes?.map((c) => c.s), [4]);
  await until("the poller stops", () => shared.polling === 0, 5000);
});

Deno.test("SharedFeed counts the answers its buffer adds to a remembered position against their bound", async () => {
  const log: WireChange[] = [change(1, "a", null)];
  const { feed } = fakeFeed(log, 5);
  const shared = new SharedFeed(feed, 20);
  const node = { id: "n1", url: "http://n1" };
  const q = { boot: "b", after: 1, prefix: "", waitMs: 20, limit: 10 };
  await shared.page(node, 1, q);
  log.push(change(2, "k", "v1"));
  let page = await shared.page(node, 1, q);
  while (page.changes?.length !== 1) page = await shared.page(node, 1, q);
  // Asked of the node: position 1 is remembered with its answer.
  assertEquals(await shared.versionsAt(node, 1, "b", 1, ["never"]), { never: "node" });
  const asked = shared.answerBytes;
  // Answered from the buffer (k's change 2 says what it held at 1), added to that position.
  assertEquals(await shared.versionsAt(node, 1, "b", 1, ["k"]), { k: "v1" });
  assert(shared.answerBytes > asked, `${shared.answerBytes} <= ${asked}`);
  await until("the poller stops", () => shared.polling === 0, 5000);
});

Deno.test("SharedFeed passes to the node a read that does not wait at or past its buffer's last, and a read past it once the log went back", async () => {
  const log: WireChange[] = [change(1, "a", null)];
  // The poller's long poll lasts 300 ms: it does not see a change logged meanwhile.
  const { feed: node1 } = fakeFeed(log, 300);
  const askedAfter: number[] = [];
  let askedNoWait = 0;
  const feed = {
    async page(n: unknown, e: number, q: Query): Promise<ChangePage> {
      if (q.after !== undefined) askedAfter.push(q.after);
      if (q.after !== undefined && q.waitMs <= 0) askedNoWait++;
      const page = await node1.page(n as never, e, q);
      // As a node: a position its log does not reach is gone.
      return q.after !== undefined && q.after > page.last ? { ...page, gone: true } : page;
    },
    versionsAt: node1.versionsAt.bind(node1),
  } as unknown as ChangeFeed;
  const shared = new SharedFeed(feed, 300, 0, 0);
  const node = { id: "n1", url: "http://n1" };
  const at = (after: number, waitMs: number) => ({
    boot: "b",
    after,
    prefix: "",
    waitMs,
    limit: 10,
  });
  await shared.page(node, 1, at(1, 300));
  await until("the buffer polls at 1", () => askedAfter.filter((a) => a === 1).length >= 2);
  // The node logs 2 while the poller waits at 1: a barrier reads to the node's head (2).
  log.push(change(2, "b", null));
  const page = await shared.page(node, 1, at(1, 0));
  assertEquals(page.changes?.map((c) => c.s), [2]);
  // From the node, not from a buffer that the poller brought to 2 meanwhile (the case not met).
  assertEquals(askedNoWait, 1, "asked of the node");
  // The log goes back (a directory put back) under the poller at 2: a read at 2 is gone.
  await until("the buffer polls at 2", () => askedAfter.includes(2));
  log.length = 1;
  await until("the poller sees it", () => askedAfter.filter((a) => a === 1).length >= 4);
  const back = await shared.page(node, 1, at(2, 300));
  assertEquals(back.gone, true, JSON.stringify(back));
  await until("the poller stops", () => shared.polling === 0, 5000);
});

Deno.test("SharedFeed.versionsAt() asks under each asker's map epoch: a stream on the node's map is not refused for one still on an older map", async () => {
  const asked: number[] = [];
  const feed = {
    page: () => Promise.reject(new Error("no page is read here")),
    versionsAt(n: NodeRef, epoch: number, _b: string, _at: number, keys: string[]) {
      asked.push(epoch);
      // The node holds map epoch 2: an older sender is refused, as node_map.ts does.
      if (epoch < 2) return Promise.reject(new StaleEpochError(n, 2));
      return Promise.resolve(Object.fromEntries(keys.map((k) => [k, "v1"])));
    },
  } as unknown as ChangeFeed;
  const shared = new SharedFeed(feed, 20, 0, 0);
  const node = { id: "n1", url: "http://n1" };
  // Asked in the same turn, the older stream first.
  const older = shared.versionsAt(node, 1, "b", 5, ["k"]);
  const newer = shared.versionsAt(node, 2, "b", 5, ["k"]);
  await assertRejects(() => older, StaleEpochError);
  assertEquals(await newer, { k: "v1" });
  assertEquals(asked.toSorted(), [1, 2]);
});
