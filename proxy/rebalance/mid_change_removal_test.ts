import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { hashKey } from "../../shared/ring.ts";
import type { Plan } from "../cluster/map_transitions.ts";
import {
  holders,
  type MembershipCluster as Cluster,
  remove,
  runToStable,
  startMembershipCluster,
  writeKeys,
} from "../../tests/doubles/membership_cluster.ts";

const keys = (tag: string) => Array.from({ length: 60 }, (_, i) => `${tag}/${i}`);

/** The plan of the map's rebalancing, or null. */
function plan(c: Cluster): Plan | null {
  return c.state.current().map.rebalancing as Plan | null;
}

/** Entries (tombstones included) node `id` holds. */
function entries(c: Cluster, id: string): number {
  const { keys, tombstones } = c.engines.get(id)!.stats();
  return keys + tombstones;
}

/** Every key reads back through the proxy as last written (404 for the deleted ones). */
async function assertReadBack(c: Cluster, written: Map<string, string>[]): Promise<void> {
  for (const versions of written) {
    for (const [key, version] of versions) {
      const res = await c.proxy.request(`/kv/${key}`);
      const i = Number(key.split("/")[1]);
      if (i % 5 === 0) {
        assertEquals(res.status, 404, key);
        await res.body?.cancel();
        continue;
      }
      assertEquals(res.status, 200, key);
      assertEquals(res.headers.get("etag"), `"${version}"`, key);
      assertEquals(await res.text(), `${key.split("/")[0]} ${i}`, key);
    }
  }
}

/** Each key's newest version is on exactly its `replicas` owners of the final ring, and on no other node. */
async function assertPlaced(c: Cluster, written: Map<string, string>[]): Promise<void> {
  const { map, ring } = c.state.current();
  const ids = map.nodes.map((n) => n.id);
  for (const versions of written) {
    for (const [key, version] of versions) {
      const owners = ring.ownersOf(await hashKey(key), map.replicas).sort();
      assertEquals(await holders(c, ids, key), owners, key);
      const holding = [];
      for (const id of ids) if (c.engines.get(id)!.peek(key) !== undefined) holding.push(id);
      assertEquals(holding.sort(), owners, `${key}: held by nodes that do not own it`);
      assertEquals((await c.engines.get(owners[0]!)!.get(key))?.version, version, key);
    }
  }
}

Deno.test('replicas 2: the drained node dies mid-copy and the loop is stuck on it; its force removal turns the drain into a removal for good, which completes with every key on 2 nodes (review F2: 409 "wait" for good)', async () => {
  const c = await startMembershipCluster(3, 2);
  try {
    const before = await writeKeys(c, keys("before"), "before");
    assertEquals((await remove(c, "n3", false)).status, 202);
    const during = await writeKeys(c, keys("during"), "during"); // to old and new owners
    c.down.add("n3");
    // A proxy started again re-runs the step: every push needs n3 (no node may miss it).
    const err = await assertRejects(() => c.rebalancer.step());
    assertMatch(
      String(err),
      /not every node has the map .*DELETE \/cluster\/nodes\/n3\?force=true/,
    );
    const epoch = c.state.current().map.epoch;

    const res = await remove(c, "n3", true);
    assertEquals(res.status, 202, await res.clone().text());
    await res.body?.cancel();
    assertEquals(c.state.current().map.epoch, epoch + 1);
    assertEquals([plan(c)?.kind, plan(c)?.nodeId, plan(c)?.phase, plan(c)?.force], [
      "remove",
      "n3",
      "copying",
      true,
    ]);
    await runToStable(c);
    assertEquals(c.state.current().map.nodes.map((n) => n.id), ["n1", "n2"]);
    await assertPlaced(c, [before, during]);
    await assertReadBack(c, [before, during]);
  } finally {
    await c.close();
  }
});

Deno.test('a node taking over a drain\'s ranges dies mid-copy; its force removal cancels the drain and removes it for good, with every key written before and during on 3 nodes (review F1: 409 "wait" for good)', async () => {
  const c = await startMembershipCluster(4, 3);
  try {
    const before = await writeKeys(c, keys("before"), "before");
    assertEquals((await remove(c, "n4", false)).status, 202);
    const during = await writeKeys(c, keys("during"), "during"); // to old and new owners
    c.down.add("n1");
    const err = await assertRejects(() => c.rebalancer.step());
    assertMatch(
      String(err),
      /Cannot copy ranges to node n1.*DELETE \/cluster\/nodes\/n1\?force=true/,
    );
    const stuck = c.state.current().map.epoch;

    const res = await remove(c, "n1", true);
    const body = await res.json();
    assertEquals(res.status, 202, JSON.stringify(body));
    // Two maps: the drain cancelled (the ring it started from), then n1's removal for good.
    assertEquals(c.state.current().map.epoch, stuck + 2);
    assertEquals([plan(c)?.kind, plan(c)?.nodeId, plan(c)?.force], ["remove", "n1", true]);
    assertEquals(body.rebalancing.nodeId, "n1");
    const after = await writeKeys(c, keys("after"), "after"); // n1 down: 2 of 3 old owners
    await runToStable(c);
    assertEquals(c.state.current().map.nodes.map((n) => n.id), ["n2", "n3", "n4"]);
    await assertPlaced(c, [before, during, after]);
    await assertReadBack(c, [before, during, after]);
  } finally {
    await c.close();
  }
});

Deno.test("a taker of a drain of 5 nodes dies: the cancelled drain's copies are dropped from its takers, and after n1's removal every node holds only the keys it owns", async () => {
  const c = await startMembershipCluster(5, 3, 5);
  try {
    const before = await writeKeys(c, keys("before"), "before");
    assertEquals((await remove(c, "n5", false)).status, 202);
    const during = await writeKeys(c, keys("during"), "during");
    c.down.add("n1");
    await assertRejects(() => c.rebalancer.step());
    assertEquals((await remove(c, "n1", true)).status, 202);
    await runToStable(c);
    assertEquals(c.state.current().map.nodes.map((n) => n.id), ["n2", "n3", "n4", "n5"]);
    await assertPlaced(c, [before, during]);
    await assertReadBack(c, [before, during]);
  } finally {
    await c.close();
  }
});

Deno.test("replicas 2: a member dies while an add is in cleanup and the loop is stuck on it; its force removal finishes the add, then removes it for good", async () => {
  const c = await startMembershipCluster(3, 2);
  try {
    const before = await writeKeys(c, keys("before"), "before");
    await c.rebalancer.startAdd("http://n4.test", 1);
    assertEquals(await c.rebalancer.step(), "copied");
    assertEquals(plan(c)?.phase, "cleanup");
    c.down.add("n2");
    await assertRejects(() => c.rebalancer.step(), Error, "DELETE /cluster/nodes/n2?force=true");
    const res = await remove(c, "n2", true);
    assertEquals(res.status, 202, await res.clone().text());
    await res.body?.cancel();
    assertEquals([plan(c)?.kind, plan(c)?.nodeId, plan(c)?.force], ["remove", "n2", true]);
    assert(c.state.current().map.nodes.some((n) => n.id === "n4"), "the add finished");
    await runToStable(c);
    assertEquals(c.state.current().map.nodes.map((n) => n.id), ["n1", "n3", "n4"]);
    await assertPlaced(c, [before]);
    await assertReadBack(c, [before]);
  } finally {
    await c.close();
  }
});

Deno.test("a member dies while a node is added (copying): its force removal cancels the add, the node added is emptied, and the dead one is removed for good", async () => {
  const c = await startMembershipCluster(3, 3);
  try {
    const before = await writeKeys(c, keys("before"), "before");
    await c.rebalancer.startAdd("http://n4.test", 1);
    const during = await writeKeys(c, keys("during"), "during"); // to n4 as well
    assert(entries(c, "n4") > 0, "n4 got the writes of its ranges");
    c.down.add("n1");
    const res = await remove(c, "n1", true);
    assertEquals(res.status, 202, await res.clone().text());
    await res.body?.cancel();
    assertEquals([plan(c)?.kind, plan(c)?.nodeId, plan(c)?.force], ["remove", "n1", true]);
    assertEquals(entries(c, "n4"), 0, "the cancelled add's node is emptied");
    await runToStable(c);
    assertEquals(c.state.current().map.nodes.map((n) => n.id), ["n2", "n3"]);
    await assertPlaced(c, [before, during]);
    await assertReadBack(c, [before, during]);
  } finally {
    await c.close();
  }
});

Deno.test("force removal mid-change: of the drained node that answers, nothing changes (202); of another member that answers, 409 says it answers and to remove it after; a refused removal leaves the drain running", async () => {
  const c = await startMembershipCluster(4, 3);
  try {
    await writeKeys(c, keys("k"), "k");
    assertEquals((await remove(c, "n4", false)).status, 202);
    const epoch = c.state.current().map.epoch;
    const same = await remove(c, "n4", true);
    assertEquals(same.status, 202);
    await same.body?.cancel();
    assertEquals([c.state.current().map.epoch, plan(c)?.force], [epoch, undefined]);

    const live = await remove(c, "n2", true);
    assertEquals(live.status, 409);
    assertMatch(
      (await live.json()).error.message,
      /node n4 is being removed \(phase copying\), and node n2 answers.*then remove it/,
    );
    // Two members down: removing one for good would lose writes, so the drain is left alone.
    c.down.add("n1");
    c.down.add("n2");
    const unsafe = await remove(c, "n1", true);
    assertEquals(unsafe.status, 409);
    assertMatch((await unsafe.json()).error.message, /Cannot remove node n1 for good/);
    assertEquals([c.state.current().map.epoch, plan(c)?.nodeId], [epoch, "n4"]);
    // The drain cannot go on either: its error says what to do.
    await assertRejects(() => c.rebalancer.step(), Error, "bring n1, n2 back, or remove a node");
  } finally {
    await c.close();
  }
});

Deno.test("force removal mid-change of the drained node back on an empty data directory: it answers, but counts as dead, so its drain becomes its removal for good", async () => {
  const c = await startMembershipCluster(4, 3);
  try {
    await writeKeys(c, keys("k"), "k");
    assertEquals((await remove(c, "n4", false)).status, 202);
    const epoch = c.state.current().map.epoch;
    // It lacks what it acknowledged: its ranges are read from the survivors, not from it.
    await c.wipe("n4");
    const res = await remove(c, "n4", true);
    assertEquals(res.status, 202);
    await res.body?.cancel();
    assertEquals([c.state.current().map.epoch, plan(c)?.force], [epoch + 1, true]);
  } finally {
    await c.close();
  }
});
