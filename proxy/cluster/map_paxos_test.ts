import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import { HybridClock } from "../../shared/version.ts";
import type { ClusterMap, NodeInfo } from "../../shared/wire.ts";
import { MapAcceptor, memoryVoteStore } from "../../node/paxos/map_acceptor.ts";
import { NodeAdmin } from "../nodes/node_admin.ts";
import { chooseMap, type ChooseOutcome, finishMap } from "./map_paxos.ts";
import { initialMap, planAdd, planRemove } from "./map_transitions.ts";
import { createFakeMapNodes, type FakeMapNodes } from "../../tests/doubles/fake_map_nodes.ts";
import { seededRandom } from "../../tests/doubles/seeded_random.ts";

/** Fake nodes all holding `base` (with each node's incarnation recorded when `wiped` is set). */
function cluster(ids: string[], record = false) {
  const fake = createFakeMapNodes(ids);
  const nodes: NodeInfo[] = fake.nodes.map((n) => record ? { ...n, incarnation: `i-${n.id}` } : n);
  for (const n of nodes) if (record) fake.incarnations.set(n.id, `i-${n.id}`);
  const base = initialMap(nodes, 1, 8);
  for (const host of fake.maps.keys()) fake.maps.set(host, base);
  return { fake, base };
}

function depsOf(fake: FakeMapNodes, proxy: string, random = Math.random) {
  return {
    admin: new NodeAdmin({ fetch: fake.fetch, timeoutMs: 1000 }),
    clock: new HybridClock(proxy),
    random,
    sleep: (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms / 10)),
  };
}

const node = (id: string): NodeInfo => ({ id, url: `http://${id}.test`, weight: 1 });

/** Wipes node `id`: a new data directory, without its vote. */
function wipe(fake: FakeMapNodes, id: string): void {
  const host = `${id}.test`;
  const routing = () => Promise.resolve(fake.maps.get(host) ?? null);
  fake.votes.set(host, new MapAcceptor(memoryVoteStore(), routing));
  fake.maps.set(host, null);
  fake.incarnations.set(id, `i-${id}-new`);
}

Deno.test("two proxies proposing epoch 2 at the same moment: one map is chosen, and both get it", async () => {
  const random = seededRandom(7);
  for (let trial = 0; trial < 25; trial++) {
    const { fake, base } = cluster(["a", "b", "c", "d", "e"]);
    const removeE = planRemove(base, "e", 0, 0);
    const removeD = planRemove(base, "d", 0, 0);
    const outcomes = await Promise.allSettled([
      chooseMap(base, removeE, depsOf(fake, "p1", random)),
      chooseMap(base, removeD, depsOf(fake, "p2", random)),
    ]);
    const chosen = outcomes.flatMap((o) =>
      o.status === "fulfilled" && o.value.kind === "chosen" ? [o.value.map] : []
    );
    for (const o of outcomes) {
      // A proposer outbid on every try gives up with 409; it never chose another map.
      if (o.status === "rejected") assertEquals((o.reason as RingkvError).code, "conflict");
    }
    assert(chosen.length >= 1, `trial ${trial}: nothing chosen`);
    assert(chosen.every((m) => JSON.stringify(m) === JSON.stringify(chosen[0])), `trial ${trial}`);
    assert([removeD, removeE].some((m) => JSON.stringify(m) === JSON.stringify(chosen[0])));
  }
});

Deno.test("a proposer finishes a map another proxy got accepted, instead of its own", async () => {
  const { fake, base } = cluster(["a", "b", "c"]);
  const theirs = planAdd(base, node("x"), 0, 0);
  await fake.votes.get("a.test")!.accept(2, "018c00000000-0000-pother", theirs);
  const ours = planRemove(base, "c", 0, 0);
  const outcome = await chooseMap(base, ours, depsOf(fake, "p1"));
  assertEquals(outcome, { kind: "chosen", map: theirs });
});

Deno.test("a proposer whose map is behind gets the chosen later map a node holds, never another cluster's", async () => {
  const { fake, base } = cluster(["a", "b", "c"]);
  const later = { ...planAdd(base, node("x"), 0, 0), epoch: 4 };
  fake.maps.set("b.test", later);
  const outcome = await chooseMap(base, planRemove(base, "c", 0, 0), depsOf(fake, "p1"));
  assertEquals(outcome, { kind: "decided", map: later, url: "http://b.test" });

  const other = cluster(["a", "b", "c"]);
  const foreign = initialMap([node("q"), node("r")], 1, 8);
  other.fake.maps.set("b.test", { ...foreign, epoch: 9 });
  const ours = planRemove(other.base, "c", 0, 0);
  const mine: ChooseOutcome = await chooseMap(other.base, ours, depsOf(other.fake, "p1"));
  assertEquals(mine, { kind: "chosen", map: ours });
});

Deno.test("without a majority of the map's nodes no map is chosen: 503 naming who did not answer", async () => {
  const { fake, base } = cluster(["a", "b", "c"]);
  fake.down.add("b.test");
  fake.down.add("c.test");
  const err = await assertRejects(
    () => chooseMap(base, planRemove(base, "c", 0, 0, true), depsOf(fake, "p1")),
    RingkvError,
  );
  assertEquals(err.code, "node_unavailable");
  assertMatch(err.message, /1 of 3 nodes took the prepare, 2 are needed.*b\.test/);
  // A dead node of three is removed with the two others' votes.
  fake.down.delete("b.test");
  const outcome = await chooseMap(base, planRemove(base, "c", 0, 0, true), depsOf(fake, "p1"));
  assertEquals(outcome.kind, "chosen");
});

Deno.test("a node on a new data directory counts only beside n - q + 1 nodes that remember their votes", async () => {
  const { fake, base } = cluster(["a", "b", "c"], true);
  const theirs = planAdd(base, node("x"), 0, 0);
  // Chosen by a and b, then the proxy died before anyone learnt it, and b was wiped.
  for (const host of ["a.test", "b.test"]) {
    await fake.votes.get(host)!.accept(2, "018c00000000-0000-pother", theirs);
  }
  wipe(fake, "b");
  fake.down.add("a.test");
  const ours = planRemove(base, "c", 0, 0);
  const err = await assertRejects(() => chooseMap(base, ours, depsOf(fake, "p1")), RingkvError);
  assertEquals(err.code, "node_unavailable");
  assertMatch(err.message, /2 of them on the data directory the map records.*b is on a new data/);
  // With a back, the map chosen before is found and finished.
  fake.down.delete("a.test");
  assertEquals(await chooseMap(base, ours, depsOf(fake, "p1")), { kind: "chosen", map: theirs });
});

Deno.test("a wiped node still votes in a two-node cluster beside the other, and alone in a one-node one", async () => {
  const two = cluster(["a", "b"], true);
  wipe(two.fake, "b");
  const add = planAdd(two.base, node("x"), 0, 0);
  assertEquals(await chooseMap(two.base, add, depsOf(two.fake, "p1")), {
    kind: "chosen",
    map: add,
  });

  const one = cluster(["a"], true);
  wipe(one.fake, "a");
  const addTo = planAdd(one.base, node("x"), 0, 0);
  const outcome = await chooseMap(one.base, addTo, depsOf(one.fake, "p1"));
  assertEquals(outcome, { kind: "chosen", map: addTo });
});

Deno.test("a member's URL answering as another node is no vote: the node refuses the base", async () => {
  const { fake, base } = cluster(["a", "b", "c"]);
  const swapped: ClusterMap = {
    ...base,
    nodes: base.nodes.map((n) => n.id === "c" ? { ...n, id: "z" } : n),
  };
  fake.down.add("b.test");
  const err = await assertRejects(
    () => chooseMap(swapped, { ...swapped, epoch: 2, replicas: 2 }, depsOf(fake, "p1")),
    RingkvError,
  );
  assertMatch(err.message, /1 of 3 nodes took the prepare/);
  assertMatch(
    err.message,
    /c\.test refused .*503 .*this node \(c, .*\) is not a member of the map/,
  );
});

Deno.test("a member's URL answering as another node is no vote: the proxy checks the voter of a first map, which has no base", async () => {
  const fake = createFakeMapNodes(["a", "b", "c"]);
  const nodes = fake.nodes.map((n) => n.id === "c" ? { ...n, id: "z" } : n);
  const first = initialMap(nodes, 1, 8);
  fake.down.add("b.test");
  const err = await assertRejects(() => chooseMap(null, first, depsOf(fake, "p1")), RingkvError);
  assertMatch(err.message, /c\.test answers as node c, not z/);
});

Deno.test("a proposer finishes the map accepted under the highest ballot it finds", async () => {
  const { fake, base } = cluster(["a", "b", "c"]);
  const older = planAdd(base, node("x"), 0, 0);
  const newer = planAdd(base, node("y"), 0, 0);
  await fake.votes.get("a.test")!.accept(2, "018c00000000-0000-pone", older);
  await fake.votes.get("b.test")!.accept(2, "018c00000000-0001-ptwo", newer);
  fake.down.add("c.test");
  const outcome = await chooseMap(base, planRemove(base, "c", 0, 0), depsOf(fake, "p1"));
  assertEquals(outcome, { kind: "chosen", map: newer });
});

Deno.test("a vote carries the map it builds on: a proxy that chose epoch 2 but could not push it, then voted on 3, leaves no one stuck on epoch 1 (found by review)", async () => {
  const { fake, base } = cluster(["a", "b", "c"]);
  const two = planAdd(base, node("x"), 0, 0);
  assertEquals(await chooseMap(base, two, depsOf(fake, "p1")), { kind: "chosen", map: two });
  // p1 stored epoch 2, its push failed, and it died after the prepare of epoch 3 on a and b.
  const admin = new NodeAdmin({ fetch: fake.fetch, timeoutMs: 1000 });
  for (const url of ["http://a.test", "http://b.test"]) {
    await admin.voteOnMap(url, "prepare", {
      epoch: 3,
      ballot: "018c00000000-0000-pone",
      base: two,
    });
  }
  // Another proxy, still on epoch 1, learns epoch 2 instead of meeting "epoch 3 is being chosen".
  const late = await chooseMap(base, planRemove(base, "c", 0, 0), depsOf(fake, "p2"));
  assertEquals(late, { kind: "decided", map: two, url: "http://a.test" });
});

Deno.test("two proxies starting one new cluster on the same nodes: one first map is chosen", async () => {
  for (let trial = 0; trial < 10; trial++) {
    const fake = createFakeMapNodes(["a", "b", "c"]);
    const one = initialMap(fake.nodes, 3, 8);
    const other = initialMap(fake.nodes, 1, 8);
    const outcomes = await Promise.allSettled([
      chooseMap(null, one, depsOf(fake, "p1")),
      chooseMap(null, other, depsOf(fake, "p2")),
    ]);
    const maps = outcomes.flatMap((o) => o.status === "fulfilled" ? [o.value.map] : []);
    assert(maps.length >= 1 && maps.every((m) => JSON.stringify(m) === JSON.stringify(maps[0])));
  }
});

Deno.test("a vote does not wait for a member that does not answer once a quorum has", async () => {
  const { fake, base } = cluster(["a", "b", "c"]);
  fake.held.add("c.test"); // paused: its calls wait for its timeout (here: until released)
  const deps = {
    ...depsOf(fake, "p1"),
    admin: new NodeAdmin({ fetch: fake.fetch, timeoutMs: 60_000 }),
  };
  const next = planRemove(base, "c", 0, 0, true);
  assertEquals(await chooseMap(base, next, deps), { kind: "chosen", map: next });
  assertEquals(fake.release(), 2, "c's prepare and accept were still waiting");
});

Deno.test("finishMap() finishes a map accepted by one member only, even when that member answers last, and never proposes one of its own", async () => {
  const empty = cluster(["a", "b", "c"]);
  assertEquals(await finishMap(empty.base, depsOf(empty.fake, "p1")), null);
  for (const acceptor of empty.fake.votes.values()) {
    assertEquals((await acceptor.peek())?.accepted, null);
  }
  const { fake, base } = cluster(["a", "b", "c"]);
  const theirs = planAdd(base, node("x"), 0, 0);
  await fake.votes.get("c.test")!.accept(2, "018c00000000-0000-pgone", theirs);
  // c answers after a and b, which make a quorum: the prepare still waits for it.
  const late = async (url: string, init: RequestInit) => {
    if (url.startsWith("http://c.test/internal/cluster/prepare")) {
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return await fake.fetch(url, init);
  };
  const deps = { ...depsOf(fake, "p1"), admin: new NodeAdmin({ fetch: late, timeoutMs: 1000 }) };
  assertEquals(await finishMap(base, deps), { kind: "chosen", map: theirs });
  const admin = new NodeAdmin({ fetch: fake.fetch, timeoutMs: 1000 });
  assertEquals((await admin.acceptedMap("http://a.test"))?.accepted.map, theirs);
});

Deno.test("finishMap() leaves a map to a proposer at work with a higher ballot: no duel", async () => {
  const { fake, base } = cluster(["a", "b", "c"]);
  const theirs = planAdd(base, node("x"), 0, 0);
  const live = new HybridClock("plive", () => Date.now() + 60_000).next();
  for (const host of ["a.test", "b.test"]) await fake.votes.get(host)!.prepare(2, live);
  await fake.votes.get("a.test")!.accept(2, live, theirs);
  const deps = { ...depsOf(fake, "p1"), clock: new HybridClock("p1", () => Date.now()) };
  assertEquals(await finishMap(base, deps), null);
  // The proposer at work is not disturbed: its accept still goes through.
  await fake.votes.get("b.test")!.accept(2, live, theirs);
});
