import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { createNodeApp } from "../../node/http/node_app.ts";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import { openEngine } from "../../node/engine/open_engine.ts";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import type { ClusterMap } from "../../shared/wire.ts";
import { NodeAdmin } from "../nodes/node_admin.ts";
import { createReplication } from "./wiring.ts";
import { type MapWriter, recoveringOf, Rejoin, throwIfRecovering } from "./rejoin.ts";
import { RingkvError } from "../../shared/errors.ts";
import { hashKey } from "../../shared/ring.ts";
import { formatVersion } from "../../shared/version.ts";
import type { NodeFetch } from "../nodes/node_client.ts";
import { overRequests } from "../../tests/doubles/node_fetch.ts";
import { withWallStep } from "../../tests/doubles/wall_step.ts";
import {
  nodeInfos,
  startCluster,
  TEST_VNODES,
  type TestCluster,
  topologyOf,
} from "../../tests/doubles/test_cluster.ts";

const KEYS = 20;

/** In-process nodes (3 by default), the map recording each node's incarnation. */
async function replicated(replicas = 3, count = 3): Promise<TestCluster> {
  const infos = nodeInfos(count);
  const cluster = await startCluster({
    nodes: infos,
    map: { epoch: 1, replicas, vnodes: TEST_VNODES, nodes: infos, rebalancing: null },
  });
  const map = cluster.topology.topo.map;
  const nodes = map.nodes.map((n) => ({
    ...n,
    incarnation: cluster.nodes.get(n.id)!.engine.incarnation,
  }));
  cluster.topology.topo = await topologyOf({ ...map, nodes });
  return cluster;
}

async function putAll(cluster: TestCluster, value: string): Promise<void> {
  for (let i = 0; i < KEYS; i++) {
    const res = await cluster.proxy.request(`/kv/k${i}`, { method: "PUT", body: value });
    assert(res.status === 200 || res.status === 201, `PUT k${i}: ${res.status}`);
  }
}

async function readAll(cluster: TestCluster): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < KEYS; i++) {
    const res = await cluster.proxy.request(`/kv/k${i}`);
    out.push(res.status === 200 ? await res.text() : String(res.status));
  }
  return out;
}

/** Replaces node `id` by a new process of the same id on an empty directory. */
async function wipe(cluster: TestCluster, id: string): Promise<string> {
  const old = cluster.nodes.get(id)!;
  await old.engine.close();
  const disk = createFakeDisk();
  const engine = await openEngine({ disk, id });
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS, clusterSecret: "s3cret" });
  cluster.nodes.set(id, { info: old.info, engine, app, disk });
  return engine.incarnation;
}

/** A MapWriter over the test topology (no votes: it installs what is proposed) that records what it pushed. */
function maps(cluster: TestCluster): MapWriter & { pushed: ClusterMap[] } {
  const pushed: ClusterMap[] = [];
  return {
    pushed,
    current: () => cluster.topology.current(),
    async propose(map) {
      if (map.epoch <= cluster.topology.topo.map.epoch) return false;
      cluster.topology.topo = await topologyOf(map);
      return true;
    },
    push(map) {
      pushed.push(map);
      return Promise.resolve({ failed: [], superseded: false });
    },
  };
}

function rejoinOf(cluster: TestCluster, writer: MapWriter): Rejoin {
  const admin = new NodeAdmin({ fetch: cluster.fetch, timeoutMs: 5000, clusterSecret: "s3cret" });
  return new Rejoin({ admin, maps: writer, retryMs: 0 });
}

Deno.test("a node back on a wiped directory is not a voter: reads answer 503, never the older value", async () => {
  const cluster = await replicated();
  try {
    await putAll(cluster, "v1");
    cluster.down.add("n2");
    await putAll(cluster, "v2"); // on n1 and n3
    await wipe(cluster, "n3");
    cluster.down.delete("n2");
    cluster.down.add("n1");
    assertEquals(await readAll(cluster), Array(KEYS).fill("503"));
    const res = await cluster.proxy.request("/kv/k0");
    assertMatch(await res.text(), /node n3.*incarnation/);
  } finally {
    await cluster.close();
  }
});

Deno.test("a listing does not count a node back on a wiped directory as a replica: 503 with another node down, never a deleted key back or an acknowledged one missing", async () => {
  const cluster = await replicated();
  try {
    await putAll(cluster, "v1");
    cluster.down.add("n2");
    const deleted = await cluster.proxy.request("/kv/k0", { method: "DELETE" }); // on n1 and n3
    assertEquals(deleted.status, 204);
    const added = await cluster.proxy.request("/kv/new", { method: "PUT", body: "n" });
    assertEquals(added.status, 201);
    await wipe(cluster, "n3");
    cluster.down.delete("n2");
    // n1 alone holds the delete and the new key: with n1 up, the listing has both right.
    const keys = async () => {
      const res = await cluster.proxy.request("/kv?limit=1000");
      return res.status === 200 ? (await res.json()).keys : res.status;
    };
    const expected = [...Array.from({ length: KEYS - 1 }, (_, i) => `k${i + 1}`), "new"].sort();
    assertEquals(await keys(), expected);
    // With n1 down too, n3's empty store is no replica's word: 503, not a wrong listing.
    cluster.down.add("n1");
    assertEquals(await keys(), 503);
  } finally {
    await cluster.close();
  }
});

Deno.test("Rejoin copies every range from n-q+1 fellow replicas, then the map records the new incarnation", async () => {
  const cluster = await replicated();
  try {
    await putAll(cluster, "v1");
    cluster.down.add("n2");
    await putAll(cluster, "v2");
    const fresh = await wipe(cluster, "n3");
    cluster.down.delete("n2");
    cluster.down.add("n1");
    const writer = maps(cluster);
    const rejoin = rejoinOf(cluster, writer);
    // n1 is down: n2 alone may lack writes that n1 and the old n3 acknowledged.
    assertEquals(await rejoin.start("n3", fresh), false);
    assertMatch(rejoin.lastError.get("n3")!, /1 of its 2 fellow replicas answered, 2 are needed/);
    assertEquals(cluster.topology.topo.map.epoch, 1);
    cluster.down.delete("n1");
    assertEquals(await rejoin.start("n3", fresh), true);
    const map = cluster.topology.topo.map;
    assertEquals(map.epoch, 2);
    assertEquals(map.nodes.find((n) => n.id === "n3")!.incarnation, fresh);
    assertEquals(writer.pushed.map((m) => m.epoch), [2]);
    const engine = cluster.nodes.get("n3")!.engine;
    for (let i = 0; i < KEYS; i++) {
      const e = await engine.get(`k${i}`);
      assertEquals(new TextDecoder().decode(e!.value!), "v2", `n3 k${i}`);
    }
    // n3 votes again: with n1 down, n2 (v1) and n3 (v2) answer v2.
    cluster.down.add("n1");
    assertEquals(await readAll(cluster), Array(KEYS).fill("v2"));
  } finally {
    await cluster.close();
  }
});

Deno.test("Rejoin counts no recovering node as a fellow replica: 2 of 5 wiped, it waits rather than bring v1 back", async () => {
  const cluster = await replicated(5, 5);
  try {
    await putAll(cluster, "v1");
    cluster.down.add("n1");
    cluster.down.add("n2");
    await putAll(cluster, "v2"); // acknowledged by n3, n4 and n5
    cluster.down.clear();
    const fresh3 = await wipe(cluster, "n3");
    const fresh4 = await wipe(cluster, "n4"); // a minority lost its disk
    cluster.down.add("n5");
    const rejoin = rejoinOf(cluster, maps(cluster));
    // 3 of n1, n2, n4, n5 are needed: n4 is empty and recovering, n5 is down.
    assertEquals(await rejoin.start("n3", fresh3), false);
    assertMatch(
      rejoin.lastError.get("n3")!,
      /2 of its 4 fellow replicas answered, 3 are needed.*n4: .*incarnation/,
    );
    assertEquals(cluster.topology.topo.map.epoch, 1);
    assertEquals(await readAll(cluster), Array(KEYS).fill("503"));
    cluster.down.delete("n5");
    assertEquals(await rejoin.start("n3", fresh3), true, rejoin.lastError.get("n3"));
    assertEquals(await rejoin.start("n4", fresh4), true, rejoin.lastError.get("n4"));
    cluster.down.add("n1");
    cluster.down.add("n5"); // n2 (v1), n3 and n4 (caught up) form the quorum
    assertEquals(await readAll(cluster), Array(KEYS).fill("v2"));
  } finally {
    await cluster.close();
  }
});

Deno.test("Rejoin with one replica records the new incarnation at once and logs the loss", async () => {
  const cluster = await replicated(1);
  try {
    const fresh = await wipe(cluster, "n2");
    const logged: Record<string, unknown>[] = [];
    const admin = new NodeAdmin({ fetch: cluster.fetch, timeoutMs: 5000, clusterSecret: "s3cret" });
    const rejoin = new Rejoin({ admin, maps: maps(cluster), log: (o) => logged.push(o) });
    assertEquals(await rejoin.start("n2", fresh), true);
    assertEquals(cluster.topology.topo.map.nodes.find((n) => n.id === "n2")!.incarnation, fresh);
    assert(logged.some((o) => o.level === "error" && o.node === "n2"), JSON.stringify(logged));
    assertMatch(rejoin.lostData.get("n2")!, /with --replicas 1 its keys had no other copy/);
  } finally {
    await cluster.close();
  }
});

Deno.test("Replication.probeOnce() finds a node on a new incarnation, shows it recovering and starts its rejoin", async () => {
  const cluster = await replicated();
  try {
    await putAll(cluster, "v1");
    const fresh = await wipe(cluster, "n3");
    const writer = maps(cluster);
    const replication = createReplication({
      fetch: cluster.fetch,
      timeoutMs: 5000,
      clusterSecret: "s3cret",
      maps: writer,
    });
    cluster.down.add("n1"); // the rejoin cannot finish yet
    await replication.probeOnce(cluster.topology, 0);
    await replication.rejoin!.start("n3", fresh);
    const health = replication.healthOf("n3");
    assertEquals([health.recovering, health.incarnation], [true, fresh]);
    assertMatch(health.rejoinError ?? "", /fellow replicas answered/);
    assertEquals(replication.healthOf("n2").recovering, false);
    cluster.down.delete("n1");
    // The next probes retry once the wait after a failed attempt (1 s) is over.
    const deadline = Date.now() + 10_000;
    for (let at = 10_000; replication.healthOf("n3").recovering; at += 1000) {
      assert(Date.now() < deadline, "n3 did not rejoin within 10 s");
      await replication.probeOnce(cluster.topology, at);
      await replication.rejoin!.start("n3", fresh); // joins the attempt the probe started
      await new Promise((r) => setTimeout(r, 50));
    }
    assertEquals(replication.healthOf("n3").recovering, false);
    assertEquals(writer.pushed.length, 1);
  } finally {
    await cluster.close();
  }
});

Deno.test("hints wait for a node back on a wiped directory: the replay carries the map's incarnation", async () => {
  const cluster = await replicated();
  try {
    await wipe(cluster, "n3");
    const replication = createReplication({
      fetch: cluster.fetch,
      timeoutMs: 5000,
      clusterSecret: "s3cret",
    });
    const ver = formatVersion(Date.now(), 0, "px");
    replication.hints.add("n3", { k: "hinted", v: btoa("v"), ver, h: await hashKey("hinted") });
    await replication.probeOnce(cluster.topology, 0);
    assertEquals(replication.hints.count("n3"), 1);
    assertEquals(await cluster.nodes.get("n3")!.engine.get("hinted"), undefined);
  } finally {
    await cluster.close();
  }
});

/** `fetch` of `cluster`, but n1's scans break after their first chunk (a node killed mid-body). */
function breakingScans(cluster: TestCluster): NodeFetch {
  return overRequests(async (req) => {
    const res = await cluster.fetch(req.url, req);
    if (!req.url.startsWith("http://n1.test/internal/scan")) return res;
    const reader = res.body!.getReader();
    const body = new ReadableStream<Uint8Array>({
      async pull(ctl) {
        const { value } = await reader.read();
        if (value !== undefined) ctl.enqueue(value);
        ctl.error(new TypeError("error reading a body from connection: connection reset"));
      },
    });
    return new Response(body, { status: res.status, headers: res.headers });
  });
}

Deno.test("Rejoin.start() resolves false and says why when a fellow's scan breaks mid-body", async () => {
  const cluster = await replicated();
  try {
    await putAll(cluster, "v1");
    const fresh = await wipe(cluster, "n3");
    const admin = new NodeAdmin({
      fetch: breakingScans(cluster),
      timeoutMs: 5000,
      clusterSecret: "s3cret",
    });
    const rejoin = new Rejoin({ admin, maps: maps(cluster), retryMs: 0 });
    assertEquals(await rejoin.start("n3", fresh), false);
    assertMatch(rejoin.lastError.get("n3")!, /n1: .*http:\/\/n1.test.*connection reset/);
    assertEquals(cluster.topology.topo.map.epoch, 1);
  } finally {
    await cluster.close();
  }
});

Deno.test("a rejoin that Replication.probeOnce() starts survives a scan that breaks mid-body", async () => {
  const cluster = await replicated();
  try {
    await putAll(cluster, "v1");
    await wipe(cluster, "n3");
    const replication = createReplication({
      fetch: breakingScans(cluster),
      timeoutMs: 5000,
      clusterSecret: "s3cret",
      maps: maps(cluster),
    });
    // Before the fix the attempt's rejection went unhandled (a proxy process exits on it).
    await replication.probeOnce(cluster.topology, 0);
    const deadline = Date.now() + 10_000;
    while (replication.healthOf("n3").rejoinError === undefined) {
      assert(Date.now() < deadline, "the rejoin attempt did not end within 10 s");
      await new Promise((r) => setTimeout(r, 20));
    }
    assertMatch(replication.healthOf("n3").rejoinError!, /connection reset/);
  } finally {
    await cluster.close();
  }
});

Deno.test("Rejoin.start() resolves false and logs an error when the attempt fails unexpectedly", async () => {
  const cluster = await replicated();
  try {
    const fresh = await wipe(cluster, "n3");
    const logged: Record<string, unknown>[] = [];
    const writer: MapWriter = {
      ...maps(cluster),
      propose: () => Promise.reject(new Error("the map store broke")),
    };
    const admin = new NodeAdmin({ fetch: cluster.fetch, timeoutMs: 5000, clusterSecret: "s3cret" });
    const rejoin = new Rejoin({ admin, maps: writer, retryMs: 0, log: (o) => logged.push(o) });
    assertEquals(await rejoin.start("n3", fresh), false);
    assertEquals(rejoin.lastError.get("n3"), "the map store broke");
    assert(
      logged.some((o) => o.level === "error" && o.msg === "rejoin failed"),
      JSON.stringify(logged),
    );
  } finally {
    await cluster.close();
  }
});

Deno.test("a proxy whose last probe of a node is stale never records the node's dead incarnation again", async () => {
  const cluster = await replicated();
  try {
    await putAll(cluster, "v1");
    const writer = maps(cluster);
    const replication = createReplication({
      fetch: cluster.fetch,
      timeoutMs: 5000,
      clusterSecret: "s3cret",
      probeMs: 1000,
      maps: writer,
    });
    await replication.probeOnce(cluster.topology, 0); // sees n3 on the incarnation the map records
    // n3 is wiped; another proxy catches it up and records its new incarnation (epoch 2).
    const fresh = await wipe(cluster, "n3");
    await rejoinOf(cluster, maps(cluster)).start("n3", fresh);
    assertEquals(cluster.topology.topo.map.epoch, 2);
    // A tick where n3 is not due: this proxy's last probe of n3 predates the new record.
    await replication.probeOnce(cluster.topology, 250);
    await replication.rejoin!.start("n3", fresh); // waits for an attempt the tick started, if any
    const map = cluster.topology.topo.map;
    assertEquals([map.epoch, map.nodes.find((n) => n.id === "n3")!.incarnation], [2, fresh]);
    assertEquals(writer.pushed, []);
    assertEquals(replication.healthOf("n3").recovering, false);
  } finally {
    await cluster.close();
  }
});

Deno.test("Rejoin aborts unless the node answers the incarnation it is about to record, before and after the copy", async () => {
  const cluster = await replicated();
  try {
    await putAll(cluster, "v1");
    const old = cluster.topology.topo.map.nodes.find((n) => n.id === "n3")!.incarnation!;
    const fresh = await wipe(cluster, "n3");
    const writer = maps(cluster);
    // Asked to record an incarnation n3 no longer answers on (a stale probe).
    const stale = rejoinOf(cluster, writer);
    const gone = "i0000000000ff";
    assertEquals(await stale.start("n3", gone), false);
    assertMatch(
      stale.lastError.get("n3")!,
      /answers as node n3 on incarnation i\w+, not i0000000000ff/,
    );
    // n3 is wiped again while its ranges are copied: its second /health names another one.
    let healths = 0;
    const again = overRequests(async (req) => {
      const res = await cluster.fetch(req.url, req);
      if (req.url !== "http://n3.test/health" || ++healths < 2) return res;
      const body = await res.json();
      return Response.json({ ...body, incarnation: gone });
    });
    const admin = new NodeAdmin({ fetch: again, timeoutMs: 5000, clusterSecret: "s3cret" });
    const rejoin = new Rejoin({ admin, maps: writer, retryMs: 0 });
    assertEquals(await rejoin.start("n3", fresh), false);
    assertMatch(rejoin.lastError.get("n3")!, /not i\w+/);
    assertEquals(healths, 2);
    const map = cluster.topology.topo.map;
    assertEquals([map.epoch, map.nodes.find((n) => n.id === "n3")!.incarnation], [1, old]);
    assertEquals(writer.pushed, []);
  } finally {
    await cluster.close();
  }
});

Deno.test("Rejoin names the node a URL answers as when another node's directory runs there", async () => {
  const cluster = await replicated();
  try {
    await putAll(cluster, "v1");
    // n2's directory started at n3's port (found by QA: the error read "on incarnation X, not X").
    const n2 = cluster.nodes.get("n2")!.engine.incarnation;
    const swapped = overRequests(async (req) => {
      const res = await cluster.fetch(req.url, req);
      if (req.url !== "http://n3.test/health") return res;
      return Response.json({ ...await res.json(), id: "n2", incarnation: n2 });
    });
    const admin = new NodeAdmin({ fetch: swapped, timeoutMs: 5000, clusterSecret: "s3cret" });
    const writer = maps(cluster);
    const rejoin = new Rejoin({ admin, maps: writer, retryMs: 0 });
    assertEquals(await rejoin.start("n3", n2), false);
    assertEquals(
      rejoin.lastError.get("n3"),
      `Cannot record incarnation ${n2} of node n3: http://n3.test answers as node n2, not n3 ` +
        "(a node started on another node's --data or port); start node n3 there, on its own " +
        "data directory",
    );
    assertEquals(cluster.topology.topo.map.epoch, 1);
    assertEquals(writer.pushed, []);
  } finally {
    await cluster.close();
  }
});

Deno.test("Rejoin refuses a node on another cluster's directory: it stays no voter", async () => {
  const cluster = await replicated();
  try {
    await putAll(cluster, "v1");
    // n3 restarted on the directory of another cluster's n3 (found by QA).
    const fresh = await wipe(cluster, "n3");
    const theirs = {
      epoch: 1,
      replicas: 1,
      vnodes: 8,
      rebalancing: null,
      nodes: [{ id: "n3", url: "http://n3.other.test", weight: 1, incarnation: fresh }],
    };
    const admin = new NodeAdmin({ fetch: cluster.fetch, timeoutMs: 5000, clusterSecret: "s3cret" });
    await admin.putMap("http://n3.test", theirs);
    const writer = maps(cluster);
    const rejoin = rejoinOf(cluster, writer);
    assertEquals(await rejoin.start("n3", fresh), false);
    assertMatch(
      rejoin.lastError.get("n3")!,
      /it is another cluster's \(epoch 1: n3 http:\/\/n3\.other\.test\)/,
    );
    assertEquals(cluster.topology.topo.map.epoch, 1);
    assertEquals(writer.pushed, []);
  } finally {
    await cluster.close();
  }
});

Deno.test("Rejoin retries a map push that too few nodes took, and logs it", async () => {
  const cluster = await replicated();
  try {
    const fresh = await wipe(cluster, "n3");
    const logged: Record<string, unknown>[] = [];
    const base = maps(cluster);
    const failed = [
      { url: "http://n1.test", message: "down" },
      { url: "http://n2.test", message: "down" },
    ];
    let pushes = 0;
    const writer: MapWriter = {
      ...base,
      push: (map) => {
        pushes++;
        return pushes === 1 ? Promise.resolve({ failed, superseded: false }) : base.push(map);
      },
    };
    const admin = new NodeAdmin({ fetch: cluster.fetch, timeoutMs: 5000, clusterSecret: "s3cret" });
    const rejoin = new Rejoin({ admin, maps: writer, retryMs: 0, log: (o) => logged.push(o) });
    assertEquals(await rejoin.start("n3", fresh), true);
    assertEquals(pushes, 2);
    assert(
      logged.some((o) => o.msg === "map push incomplete" && o.node === "n3"),
      JSON.stringify(logged),
    );
  } finally {
    await cluster.close();
  }
});

Deno.test("Rejoin reports a push superseded by a newer map that does not record the incarnation", async () => {
  const cluster = await replicated();
  try {
    const before = cluster.topology.topo.map;
    const fresh = await wipe(cluster, "n3");
    const base = maps(cluster);
    const writer: MapWriter = {
      ...base,
      async push() {
        // A node held epoch 5, written by another proxy from the map before the rejoin.
        cluster.topology.topo = await topologyOf({ ...before, epoch: 5 });
        return { failed: [], superseded: true };
      },
    };
    const rejoin = rejoinOf(cluster, writer);
    assertEquals(await rejoin.start("n3", fresh), false);
    assertMatch(rejoin.lastError.get("n3")!, /a node held a newer map \(epoch 5\)/);
  } finally {
    await cluster.close();
  }
});

Deno.test("throwIfRecovering(recoveringOf()) refuses a rebalancing while a node catches up, except the force removal of that node", async () => {
  const cluster = await replicated();
  try {
    const admin = new NodeAdmin({ fetch: cluster.fetch, timeoutMs: 5000, clusterSecret: "s3cret" });
    const map = cluster.topology.topo.map;
    const refuse = async (action: string, except?: string) =>
      throwIfRecovering(recoveringOf(map, await healthsOf(admin, map)), action, except);
    await refuse("add node http://n4.test");
    await wipe(cluster, "n3");
    const err = await assertRejects(() => refuse("add node http://n4.test"), RingkvError);
    assertEquals(err.status, 409);
    assertMatch(err.message, /Cannot add node http:\/\/n4.test: node n3 is back on a new data/);
    await refuse("remove node n3", "n3");
  } finally {
    await cluster.close();
  }
});

Deno.test("Replication.probeOnce() forgets the hints of a node that is no longer in the map", async () => {
  const cluster = await replicated();
  try {
    const replication = createReplication({
      fetch: cluster.fetch,
      timeoutMs: 5000,
      clusterSecret: "s3cret",
    });
    const entry = { k: "a", ver: "018c00000000-0000-p1", v: "dg==", h: 1 };
    replication.hints.add("gone", entry);
    replication.hints.add("n2", entry);
    await replication.probeOnce(cluster.topology, 0);
    assertEquals([replication.hints.count("gone"), replication.hints.count()], [0, 0]);
  } finally {
    await cluster.close();
  }
});

/** Each member's /health by id (null: it did not answer), as the rebalancer reads them. */
async function healthsOf(admin: NodeAdmin, map: ClusterMap) {
  return new Map(
    await Promise.all(
      map.nodes.map(async (n) => [n.id, await admin.health(n.url).catch(() => null)] as const),
    ),
  );
}

Deno.test("Rejoin: a wall clock stepped back an hour does not stretch the wait after a failed attempt", async () => {
  let attempts = 0;
  const writer: MapWriter = {
    current() {
      attempts++;
      throw new RingkvError("unavailable", "Cannot read the cluster map: the test refuses");
    },
    propose: () => Promise.resolve(false),
    push: () => Promise.resolve({ failed: [], superseded: false }),
  };
  const admin = new NodeAdmin({
    fetch: () => Promise.reject(new TypeError("refused")),
    timeoutMs: 100,
  });
  const rejoin = new Rejoin({ admin, maps: writer, retryMs: 20 });
  assertEquals([await rejoin.start("n3", "fresh"), attempts], [false, 1]);
  assertEquals([await rejoin.start("n3", "fresh"), attempts], [false, 1], "within the wait");
  await withWallStep(-3_600_000, async () => {
    await new Promise((r) => setTimeout(r, 40));
    assertEquals([await rejoin.start("n3", "fresh"), attempts], [false, 2]);
  });
});
