import { assert, assertEquals, assertMatch } from "@std/assert";
import { hashKey } from "../../shared/ring.ts";
import {
  holders,
  type MembershipCluster as Cluster,
  remove,
  runToStable,
  startMembershipCluster,
  TOKEN,
  writeKeys,
} from "../../tests/doubles/membership_cluster.ts";

/** n1..n4 in process (n4 outside the map), a proxy with replicas 3 over n1..n3 (or as given). */
const start = (members = 3, replicas = members) => startMembershipCluster(members, replicas);

const KEYS = Array.from({ length: 60 }, (_, i) => `key/${i}`);

/** Writes every key (every fifth one then deleted); returns each key's last version. */
const writeAll = (c: Cluster, tag: string) => writeKeys(c, KEYS, tag);

Deno.test("DELETE /cluster/nodes/{id} of a node that is down answers 503 and suggests ?force=true", async () => {
  const c = await start();
  try {
    c.down.add("n3");
    const res = await remove(c, "n3", false);
    assertEquals(res.status, 503);
    assertMatch((await res.json()).error.message, /\?force=true/);
    assertEquals(c.state.current().map.rebalancing, null);
  } finally {
    await c.close();
  }
});

Deno.test("force removal is refused when too few live replicas would remain", async () => {
  const c = await start();
  try {
    c.down.add("n2");
    c.down.add("n3");
    const res = await remove(c, "n3", true);
    assertEquals(res.status, 409);
    assertMatch((await res.json()).error.message, /Cannot remove node n3 for good/);
    assertEquals(c.state.current().map.epoch, 1);
  } finally {
    await c.close();
  }
});

Deno.test("with 2 replicas a dead node is removed for good: one survivor of each range holds every acknowledged write (found by QA: 409, a write quorum of survivors was asked)", async () => {
  const c = await start(3, 2);
  try {
    const versions = await writeAll(c, "v");
    c.down.add("n2");
    const res = await remove(c, "n2", true);
    assertEquals(res.status, 202, await res.clone().text());
    await res.body?.cancel();
    await runToStable(c);
    assertEquals(c.state.current().map.nodes.map((n) => n.id), ["n1", "n3"]);
    for (const [key, version] of versions) {
      assertEquals(await holders(c, ["n1", "n3"], key), ["n1", "n3"], key);
      assertEquals((await c.engines.get("n1")!.get(key))?.version, version, key);
    }
  } finally {
    await c.close();
  }
});

Deno.test("force removal of a dead node re-copies its keys from the survivors, then a new node gets them all", async () => {
  const c = await start();
  try {
    c.down.add("n2"); // these writes land on n1 and n3 only
    await writeAll(c, "a");
    c.down.delete("n2");
    c.replication.hints.forget("n2"); // and their hints are lost
    c.down.add("n3"); // n3 dies for good
    const res = await remove(c, "n3", true);
    assertEquals(res.status, 202);
    await runToStable(c);
    assertEquals(c.state.current().map.nodes.map((n) => n.id), ["n1", "n2"]);
    for (const key of KEYS) assertEquals(await holders(c, ["n1", "n2"], key), ["n1", "n2"], key);
    // A fresh node brings every key back to 3 replicas.
    const add = await c.proxy.request("/cluster/nodes", {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ url: "http://n4.test" }),
    });
    assertEquals(add.status, 202);
    await runToStable(c);
    for (const key of KEYS) {
      assertEquals(await holders(c, ["n1", "n2", "n4"], key), ["n1", "n2", "n4"], key);
    }
    for (const [i, key] of KEYS.entries()) {
      const got = await c.proxy.request(`/kv/${key}`);
      if (i % 5 === 0) assertEquals(got.status, 404);
      else assertEquals(await got.text(), `a ${i}`);
    }
  } finally {
    await c.close();
  }
});

Deno.test("adding a node with one old owner down copies from the live replicas", async () => {
  const c = await start();
  try {
    const versions = await writeAll(c, "b");
    c.down.add("n2");
    await c.rebalancer.startAdd("http://n4.test", 1);
    await runToStable(c);
    assertEquals(c.state.current().map.nodes.map((n) => n.id), ["n1", "n2", "n3", "n4"]);
    const ring = c.state.current().ring;
    for (const key of KEYS) {
      const owners = ring.ownersOf(await hashKey(key), 3);
      if (!owners.includes("n4")) continue;
      assertEquals((await c.engines.get("n4")!.get(key))?.version, versions.get(key), key);
    }
    // n2 gets the new map once it is back and the poller sees it behind.
    c.down.delete("n2");
    await c.state.poll();
    const held = await c.engines.get("n2")!.loadClusterMap();
    assertEquals(held?.epoch, c.state.current().map.epoch);
  } finally {
    await c.close();
  }
});

Deno.test("anti-entropy brings a replica that missed writes level, tombstones included, without hints", async () => {
  const c = await start();
  try {
    await writeAll(c, "old");
    c.down.add("n3");
    const versions = await writeAll(c, "new");
    c.down.delete("n3");
    c.replication.hints.forget("n3");
    await c.replication.probeOnce(c.state, performance.now() + 60_000); // the detector sees n3 up
    const lagging = KEYS.filter((k) => c.engines.get("n3")!.peek(k)?.version !== versions.get(k));
    assertEquals(lagging.length, KEYS.length);
    const report = await c.replication.antiEntropy.sweep(c.state.current());
    assert(
      report !== null && report.differing > 0 && report.repaired >= KEYS.length,
      JSON.stringify(report),
    );
    for (const key of KEYS) {
      assertEquals(await holders(c, ["n1", "n2", "n3"], key), ["n1", "n2", "n3"], key);
      assertEquals(c.engines.get("n3")!.peek(key)?.version, versions.get(key), key);
    }
    const again = await c.replication.antiEntropy.sweep(c.state.current());
    assertEquals(again?.differing, 0);
    const view = await (await c.proxy.request("/cluster", {
      headers: { authorization: `Bearer ${TOKEN}` },
    })).json();
    assertEquals(view.underReplicated.keys, 0);
  } finally {
    await c.close();
  }
});

Deno.test("the manual path: a node back on a wiped directory is force-removed and added back, then holds every key", async () => {
  const c = await start();
  try {
    await writeAll(c, "w");
    const fresh = await c.wipe("n3");
    const add = (url: string) =>
      c.proxy.request("/cluster/nodes", {
        method: "POST",
        headers: { authorization: `Bearer ${TOKEN}` },
        body: JSON.stringify({ url }),
      });
    const refused = await add("http://n4.test");
    assertEquals(refused.status, 409);
    assertMatch((await refused.json()).error.message, /node n3 is back on a new data directory/);
    assertEquals((await remove(c, "n3", false)).status, 409); // its keys cannot be read from it
    assertEquals((await remove(c, "n3", true)).status, 202);
    await runToStable(c);
    assertEquals((await add("http://n3.test")).status, 202);
    await runToStable(c);
    const n3 = c.state.current().map.nodes.find((n) => n.id === "n3");
    assertEquals(n3?.incarnation, fresh);
    for (const key of KEYS) {
      assertEquals(await holders(c, ["n1", "n2", "n3"], key), ["n1", "n2", "n3"], key);
    }
  } finally {
    await c.close();
  }
});

Deno.test("removing a node below the replica count answers 409 unless forced; /cluster shows the cluster below its replicas", async () => {
  const c = await start();
  const view = async () =>
    await (await c.proxy.request("/cluster", { headers: { authorization: `Bearer ${TOKEN}` } }))
      .json();
  try {
    assertEquals(
      [(await view()).replicas, (await view()).nodesUp, (await view()).belowReplicas],
      [3, 3, false],
    );
    for (const k of ["x", "y", "z"]) {
      assertEquals((await c.proxy.request(`/kv/${k}`, { method: "PUT", body: k })).status, 201);
    }
    // Copies reach every replica after the quorum answered: poll, bounded.
    for (let i = 0; i < 100 && (await view()).copies < 9; i++) {
      await new Promise((r) => setTimeout(r, 20));
    }
    assertEquals([(await view()).keys, (await view()).copies], [3, 9], "3 keys, 9 copies");
    const refused = await remove(c, "n3", false);
    assertEquals(refused.status, 409);
    const message = (await refused.json()).error.message;
    assertMatch(message, /2 node\(s\) would be left for 3 replicas.*\?force=true/);
    assertEquals(c.state.current().map.rebalancing, null, "nothing started");

    c.down.add("n2");
    assertEquals([(await view()).nodesUp, (await view()).belowReplicas], [2, true]);
    assertEquals([(await view()).keys, (await view()).copies], [3, 6], "a node down loses no key");
    c.down.delete("n2");

    const forced = await remove(c, "n3", true);
    assertEquals(forced.status, 202, await forced.text());
    const plan = c.state.current().map.rebalancing as { force?: boolean } | null;
    assertEquals(plan?.force, undefined, "a live node is drained, not dropped");
    await runToStable(c);
    assertEquals([(await view()).nodesUp, (await view()).belowReplicas], [2, true]);
  } finally {
    await c.close();
  }
});

Deno.test("a forced removal of a node back on a wiped directory copies its ranges from the surviving replicas, not from it", async () => {
  const c = await start();
  try {
    const add = await c.proxy.request("/cluster/nodes", {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
      body: JSON.stringify({ url: "http://n4.test" }),
    });
    assertEquals(add.status, 202);
    await runToStable(c);
    c.down.add("n1");
    // Keys of {n1, n3, n4} are acknowledged by n3 and n4 only: after the wipe, n4 alone has
    // them, and a copy that counted n3's empty answer with n1's would miss them.
    await writeAll(c, "w");
    c.down.delete("n1");
    await c.wipe("n3"); // it answers, but holds none of what it acknowledged
    c.scanned.length = 0;
    assertEquals((await remove(c, "n3", true)).status, 202);
    await runToStable(c);
    // Not even asked (it would refuse a scan for its old incarnation, a second safeguard).
    assertEquals(c.scanned.filter((id) => id === "n3"), [], "a range was read from n3");
    assert(c.scanned.includes("n4"), `ranges were read from ${c.scanned}`);
    c.down.add("n4"); // every read now needs n1 and n2: n2 must have what n3 and n4 held
    for (const [i, key] of KEYS.entries()) {
      const res = await c.proxy.request(`/kv/${key}`);
      const got = res.status === 200 ? await res.text() : String(res.status);
      assertEquals(got, i % 5 === 0 ? "404" : `w ${i}`, key);
    }
  } finally {
    await c.close();
  }
});

Deno.test("a range copy never counts an old replica back on a wiped directory (it was down when the add was checked)", async () => {
  const c = await start();
  try {
    await writeAll(c, "a");
    c.down.add("n1");
    const versions = await writeAll(c, "b"); // on n2 and n3 only
    c.down.delete("n1");
    c.down.add("n2"); // the add's check cannot see that n2 is about to come back empty
    await c.rebalancer.startAdd("http://n4.test", 1);
    await c.wipe("n2");
    c.down.delete("n2");
    await runToStable(c);
    const ring = c.state.current().ring;
    let moved = 0;
    for (const key of KEYS) {
      if (!ring.ownersOf(await hashKey(key), 3).includes("n4")) continue;
      moved++;
      assertEquals((await c.engines.get("n4")!.get(key))?.version, versions.get(key), key);
    }
    assert(moved > 0, "no key moved to n4");
  } finally {
    await c.close();
  }
});

Deno.test("draining a node is refused (409) while a node that would take over its ranges is down, so no rebalancing waits on a dead node; once it is removed for good the drain runs", async () => {
  const c = await start();
  try {
    await writeAll(c, "d");
    await c.rebalancer.startAdd("http://n4.test", 1);
    await runToStable(c);
    c.down.add("n4");
    // Before: 202, and the drain paused at every step on n4 ("Cannot reach node"), while a
    // rebalancing in progress refused the force removal of n4 (409): stuck until n4 came back.
    const drain = await remove(c, "n3", false);
    const body = await drain.json();
    assertEquals(drain.status, 409, JSON.stringify(body));
    assertMatch(
      body.error.message,
      /: node n4, which would take over some of its ranges, is down;/,
    );
    assertEquals(c.state.current().map.rebalancing, null);
    // Two of them down: both named, in the plural (found by QA: "node n1, n5, ... is down").
    c.down.add("n1");
    const two = await (await remove(c, "n3", false)).json();
    assertMatch(
      two.error.message,
      /: nodes n1, n4, which would take over .*, are down; bring them back/,
    );
    c.down.delete("n1");
    assertEquals((await remove(c, "n4", true)).status, 202);
    await runToStable(c);
    assertEquals((await remove(c, "n3", false)).status, 409); // 2 nodes for 3 replicas
    assertEquals(c.state.current().map.nodes.map((n) => n.id), ["n1", "n2", "n3"]);
  } finally {
    await c.close();
  }
});
