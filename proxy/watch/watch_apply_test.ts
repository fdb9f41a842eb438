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
