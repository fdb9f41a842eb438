import { assert, assertEquals } from "@std/assert";
import type { WireChange } from "../../node/http/change_routes.ts";
import {
  FakeTopology,
  nodeInfos,
  stableMap,
  topologyOf,
} from "../../tests/doubles/test_cluster.ts";
import { hashKey } from "../../shared/ring.ts";
import { quorumOf } from "../replication/quorum.ts";
import { interleave, takeAll } from "./watch_apply.ts";
import { WatchMerge } from "./watch_merge.ts";

function page(id: string, keys: string[]) {
  const changes: WireChange[] = keys.map((k, i) => ({
    s: i + 1,
    k,
    ver: "v",
    prev: null,
    v: null,
  }));
  return { id, page: { boot: "b", first: 1, last: keys.length, changes } };
}

Deno.test("interleave() merges nodes' pages in step, each node's changes in its log's order", () => {
  const merged = interleave([
    page("a", ["k1", "k2", "k3", "k4"]),
    page("b", ["k1", "k2"]),
    page("c", []),
  ]);
  assertEquals(
    merged.map(({ id, change }) => `${id}:${change.k}`),
    ["a:k1", "b:k1", "a:k2", "a:k3", "b:k2", "a:k4"],
  );
});

/**
 * Three replicas' pages of `writes` random writes to 40 keys: each node logs every write, per
 * key in version order, the order across keys shuffled a little per node.
 */
function replicaPages(writes: number, seed: number) {
  let x = seed;
  const pick = (n: number) => (x = (x * 48271) % 2147483647) % n;
  const all = Array.from({ length: writes }, (_, i) => ({
    k: `k${pick(40)}`,
    ver: `${(i + 1).toString(16).padStart(12, "0")}-0000-p1`,
  }));
  return ["n1", "n2", "n3"].map((id) => {
    const order = [...all];
    // Swap neighbours of different keys only: a node logs a key's versions in order.
    for (let i = 0; i + 1 < order.length; i++) {
      if (pick(3) === 0 && order[i]!.k !== order[i + 1]!.k) {
        [order[i], order[i + 1]] = [order[i + 1]!, order[i]!];
      }
    }
    const changes: WireChange[] = order.map((w, i) => ({
      s: i + 1,
      k: w.k,
      ver: w.ver,
      prev: null,
      v: btoa(w.ver),
      t: "text/plain",
    }));
    return { id, page: { boot: `b-${id}`, first: 1, last: changes.length, changes } };
  });
}

/** takeAll over fresh merges of the same pages, with `sliceMs`; whether a timer ran meanwhile. */
async function takeWith(sliceMs: number, seed: number, signal?: AbortSignal) {
  const topo = await topologyOf({ ...stableMap(nodeInfos(3)), replicas: 3 });
  const positions = new Map(
    ["n1", "n2", "n3"].map((id) => [id, { boot: `b-${id}`, low: 0, read: 0 }]),
  );
  const merge = new WatchMerge(positions, quorumOf);
  const pages = replicaPages(600, seed);
  // The keys' ring points known in advance (as the router's memo has them): no digest's turn.
  const points = new Map<string, number>();
  for (const { page } of pages) for (const c of page.changes) points.set(c.k, await hashKey(c.k));
  const deps = {
    points: { pointOf: (k: string) => points.get(k)! },
    topology: new FakeTopology(topo),
    feed: {
      page: () => Promise.reject(new Error("no reads")),
      versionsAt: () => Promise.resolve({}),
    },
    sliceMs,
  };
  let timerRan = false;
  setTimeout(() => timerRan = true, 0);
  const applied = await takeAll(deps, topo, merge, pages, signal);
  return { applied, timerRan };
}

Deno.test("takeAll() in slices (the loop turns between them) gives the same events and cursors as in one turn", async () => {
  for (const seed of [1, 2, 3]) {
    const whole = await takeWith(Infinity, seed);
    const sliced = await takeWith(0, seed);
    // The slices let the loop turn (a timer due ran before the merge ended); one turn did not.
    assertEquals([whole.timerRan, sliced.timerRan], [false, true]);
    assertEquals(sliced.applied, whole.applied);
    const events = sliced.applied.changes.map((c) => `${c.event.key}@${c.event.version}`);
    // Every write once (all 3 replicas logged it), each key's versions in increasing order.
    assertEquals(events.length, 600);
    assertEquals(new Set(events).size, 600);
    const last = new Map<string, string>();
    for (const c of sliced.applied.changes) {
      assert((last.get(c.event.key) ?? "") < c.event.version, `${c.event.key} out of order`);
      last.set(c.event.key, c.event.version);
    }
  }
});

Deno.test("takeAll() stops merging at its next slice once its stream ended (aborted): no work for nobody", async () => {
  const ended = new AbortController();
  setTimeout(() => ended.abort(), 0); // the client leaves while the page is being merged
  const { applied } = await takeWith(0, 1, ended.signal);
  assertEquals(applied.end, "aborted");
  assert(applied.changes.length < 600, `${applied.changes.length} events merged for nobody`);
});

/**
 * The pages of {@link replicaPages} with each change's `prev` as the node logged it (half the
 * keys held a version before the watch), and a `versionsAt` that answers from those logs as a
 * node does, counting the keys asked per node.
 */
function loggedPages(seed: number) {
  const pages = replicaPages(600, seed);
  for (const { page } of pages) {
    const held = new Map<string, string | null>();
    for (const c of page.changes) {
      c.prev = held.has(c.k) ? held.get(c.k)! : c.k.length % 2 ? "000000000000-0000-p0" : null;
      held.set(c.k, c.ver);
    }
  }
  const asked = new Map<string, string[]>();
  const versionsAt = (n: { id: string }, _e: number, _b: string, at: number, keys: string[]) => {
    asked.set(n.id, [...(asked.get(n.id) ?? []), ...keys]);
    const log = pages.find((p) => p.id === n.id)!.page.changes;
    const out: Record<string, string | null> = {};
    for (const k of keys) {
      const later = log.find((c) => c.k === k && c.s > at);
      const before = log.findLast((c) => c.k === k && c.s <= at);
      out[k] = later?.prev ?? before?.ver ?? null;
    }
    return Promise.resolve(out);
  };
  return { pages, asked, versionsAt };
}

/** takeAll of {@link loggedPages}, the pages cut to `lengths` changes, read after `after`. */
async function takeLogged(seed: number, after: number | undefined, lengths = [600, 600, 600]) {
  const topo = await topologyOf({ ...stableMap(nodeInfos(3)), replicas: 3 });
  const positions = new Map(
    ["n1", "n2", "n3"].map((id) => [id, { boot: `b-${id}`, low: 0, read: 0 }]),
  );
  const merge = new WatchMerge(positions, quorumOf);
  const { pages, asked, versionsAt } = loggedPages(seed);
  const points = new Map<string, number>();
  for (const { page } of pages) for (const c of page.changes) points.set(c.k, await hashKey(c.k));
  const deps = {
    points: { pointOf: (k: string) => points.get(k)! },
    topology: new FakeTopology(topo),
    feed: { page: () => Promise.reject(new Error("no reads")), versionsAt },
  };
  const read = pages.map(({ id, page }, i) => {
    const changes = page.changes.slice(0, lengths[i]);
    return { id, page: { ...page, last: changes.length, changes }, after };
  });
  const applied = await takeAll(deps, topo, merge, read);
  const events = applied.changes.map((c) => [c.event.key, c.event.version, c.id]);
  return { events, asked };
}

Deno.test("takeAll() starts new keys from the pages read right after the merge's position: no question to the nodes, the same events and cursors", async () => {
  for (const seed of [1, 2, 3]) {
    const asking = await takeLogged(seed, undefined);
    const inHand = await takeLogged(seed, 0);
    assertEquals(inHand.events, asking.events);
    assertEquals(inHand.asked.size, 0);
    // Without the page's position every replica of every key is asked, as before.
    assertEquals([...asking.asked.values()].map((keys) => keys.length), [40, 40, 40]);
  }
});

Deno.test("takeAll() asks a node only about the new keys its page does not show, and not a page read after another position", async () => {
  const asking = await takeLogged(4, undefined, [600, 600, 100]);
  const inHand = await takeLogged(4, 0, [600, 600, 100]);
  assertEquals(inHand.events, asking.events);
  const { pages } = loggedPages(4);
  const shown = new Set(pages[2]!.page.changes.slice(0, 100).map((c) => c.k));
  const unseen = [...new Set(pages[2]!.page.changes.map((c) => c.k))].filter((k) => !shown.has(k));
  assert(unseen.length > 0 && shown.size > 0);
  assertEquals([...inHand.asked.keys()], ["n3"]);
  assertEquals(new Set(inHand.asked.get("n3")), new Set(unseen));
  // Read after another position (the merge is at 0): the page says nothing about position 0.
  const elsewhere = await takeLogged(4, 7);
  assertEquals([...elsewhere.asked.values()].map((keys) => keys.length), [40, 40, 40]);
});
