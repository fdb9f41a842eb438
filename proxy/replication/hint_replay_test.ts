import { assert, assertEquals } from "@std/assert";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { formatVersion } from "../../shared/version.ts";
import { createNodeApp } from "../../node/http/node_app.ts";
import { createReplication, type Replication } from "./wiring.ts";
import { RingkvError } from "../../shared/errors.ts";
import type { NodeRef } from "../nodes/node_client.ts";
import type { ClusterMap, WireEntry } from "../../shared/wire.ts";
import { Hints } from "./hints.ts";
import { REPLAY_CHUNK, replayHints } from "./hint_replay.ts";
import { hashKey } from "../../shared/ring.ts";
import { replicasFor } from "../routing/router.ts";
import {
  nodeInfos,
  startCluster,
  TEST_VNODES,
  type TestCluster,
} from "../../tests/doubles/test_cluster.ts";

const infos = nodeInfos(3);
const map = { epoch: 1, replicas: 3, vnodes: TEST_VNODES, nodes: infos, rebalancing: null };
const KEYS = Array.from({ length: 8 }, (_, i) => `k${i}`);

/** Three real nodes, 3 replicas, one proxy (one-round-trip writes on) whose replication is here. */
async function start(
  nodes = infos,
  clusterMap: ClusterMap = map,
): Promise<{ c: TestCluster; replication: Replication }> {
  const replication = createReplication({
    fetch: (url, init) => c.fetch(url, init),
    timeoutMs: 5000,
    clusterSecret: "s3cret",
  });
  const c = await startCluster({ nodes, map: clusterMap, proxy: { replication } });
  return { c, replication };
}

/** `id` comes back as after a kill -9: same data, every key promised up to a floor past now. */
function restart(c: TestCluster, id: string): void {
  const node = c.nodes.get(id)!;
  const floor = formatVersion(Date.now() + 1000, 0, "0");
  const floorStore = { load: () => Promise.resolve(floor), save: () => Promise.resolve() };
  node.app = createNodeApp({
    engine: node.engine,
    limits: DEFAULT_LIMITS,
    clusterSecret: "s3cret",
    floorStore,
  });
}

function versionsOf(c: TestCluster, key: string): (string | undefined)[] {
  return [...c.nodes.values()].map((n) => n.engine.peekVersion(key));
}

/** Every key has one version on all three nodes, and no hint waits for n2. */
function assertLevel(c: TestCluster, replication: Replication): void {
  for (const key of KEYS) {
    const [n1, n2, n3] = versionsOf(c, key);
    assert(n1 !== undefined, `${key} is on n1`);
    assertEquals([n2, n3], [n1, n1], key);
  }
  assertEquals(replication.hints.count("n2"), 0);
}

/** Puts every key (a full round, so the next write takes one round trip), then restarts n2. */
async function writtenThenRestarted(c: TestCluster, replication: Replication): Promise<void> {
  for (const key of KEYS) {
    assertEquals((await c.proxy.request(`/kv/${key}`, { method: "PUT", body: "v" })).status, 201);
    assertEquals(replication.replicated.remembers(key), true);
  }
  restart(c, "n2");
  await replication.probeOnce(c.topology, performance.now() + 60_000);
}

Deno.test("a fast DELETE that a restarted replica refuses (its promise floor) reaches it at the next hint replay", async () => {
  const { c, replication } = await start();
  try {
    await writtenThenRestarted(c, replication);
    // The probe said n2's floor, and no fast write goes below it (caspaxos.ts `floored`): here
    // the proxy does not know it, as with a node from before `promiseFloor` (it reports none).
    replication.detector.step({ kind: "answered", node: "n2", at: 0, promiseFloor: null });
    for (const key of KEYS) {
      assertEquals((await c.proxy.request(`/kv/${key}`, { method: "DELETE" })).status, 204);
    }
    // The first one took one round trip (its ballot: the put's + "0"); the rest wait for n2's
    // hint to be replayed (full rounds), and their ballots are below n2's floor too.
    assertEquals(replication.replicated.fast.decided, 1);
    for (const key of KEYS) assertEquals(versionsOf(c, key)[1] === versionsOf(c, key)[0], false);
    await replication.probeOnce(c.topology, performance.now() + 120_000);
    assertLevel(c, replication);
  } finally {
    await c.close();
  }
});

Deno.test("a hint that a restarted replica refuses (its promise floor) is not dropped: the decided entry reaches it", async () => {
  const { c, replication } = await start();
  try {
    await writtenThenRestarted(c, replication);
    // n2's accepts fail (a lost connection) while the proxy still counts it up: hinted.
    c.down.add("n2");
    for (const key of KEYS) {
      assertEquals((await c.proxy.request(`/kv/${key}`, { method: "DELETE" })).status, 204);
    }
    c.down.delete("n2");
    assertEquals(replication.hints.count("n2") > 0, true);
    const before = c.calls.length;
    await replication.probeOnce(c.topology, performance.now() + 120_000);
    // The refused path ran: the replay brought n2 level by ingest, not by its accept.
    const since = c.calls.slice(before);
    assert(since.some((x) => x.node === "n2" && x.path === "/internal/ingest"), "no ingest to n2");
    assertLevel(c, replication);
  } finally {
    await c.close();
  }
});

Deno.test("replayHints() keeps a refused hint while its replicas do not answer, and drops it once the node holds a newer entry", async () => {
  const hints = new Hints();
  const node = { id: "n2", url: "http://n2.test" };
  const owners = ["n1", "n2", "n3"].map((id) => ({ id, url: `http://${id}.test` }));
  const hint = { k: "k", v: null, ver: "018c00000001-0000-p1", h: 7 };
  const newer = { ...hint, v: "dg==", ver: "018c00000002-0000-p1" };
  let answering = new Set(["n2"]);
  const ingested: string[] = [];
  const deps = {
    hints,
    accept: () => Promise.resolve([{ ok: false, promised: "018c00000009-0000-0" }]),
    read: (n: NodeRef) =>
      answering.has(n.id)
        ? Promise.resolve([n.id === "n2" ? newer : hint])
        : Promise.reject(new RingkvError("node_unavailable", `Cannot reach ${n.id}`)),
    ingest: (n: NodeRef) => Promise.resolve(void ingested.push(n.id)),
    settle: () => Promise.resolve(),
    ownersOf: () => owners,
    forget: () => {},
  };
  hints.add("n2", hint);
  assertEquals((await replayHints(node, 1, deps)).retry, 1);
  assertEquals(hints.count("n2"), 1);
  answering = new Set(["n1", "n2", "n3"]);
  assertEquals((await replayHints(node, 1, deps)).current, 1);
  assertEquals([hints.count("n2"), ingested], [0, []]);
});

Deno.test("replayHints() reads a chunk's refused keys with one call per owner and ingests them with one call", async () => {
  const hints = new Hints();
  const node = { id: "n2", url: "http://n2.test" };
  const ref = (id: string) => ({ id, url: `http://${id}.test` });
  // Even points on n1..n3, odd ones on n2..n4, point 1000 no longer on n2.
  const ownersOf = (h: number) =>
    (h === 1000 ? ["n1", "n3", "n4"] : h % 2 === 0 ? ["n1", "n2", "n3"] : ["n2", "n3", "n4"])
      .map(ref);
  const old = (i: number) => ({ k: `k${i}`, v: null, ver: "018c00000001-0000-p1", h: i });
  const decided = (i: number) => ({ ...old(i), v: "dg==", ver: "018c00000002-0000-p1" });
  const reads: { node: string; keys: string[] }[] = [];
  const ingested: string[][] = [];
  const deps = {
    hints,
    accept: (_: NodeRef, _e: number, entries: unknown[]) =>
      Promise.resolve(entries.map(() => ({ ok: false, promised: "018c00000009-0000-0" }))),
    read: (n: NodeRef, _e: number, keys: string[]) => {
      reads.push({ node: n.id, keys });
      // The node holds the old entry, the others the decided one; k7 is on no other owner.
      return Promise.resolve(
        keys.map((k) => {
          const i = Number(k.slice(1));
          return n.id === "n2" ? old(i) : i === 7 ? null : decided(i);
        }),
      );
    },
    ingest: (_: NodeRef, _e: number, entries: { k: string }[]) =>
      Promise.resolve(void ingested.push(entries.map((e) => e.k))),
    settle: () => Promise.reject(new Error("no settle expected")),
    ownersOf,
    forget: () => {},
  };
  const points = [...Array.from({ length: 199 }, (_, i) => i), 1000];
  for (const i of points) hints.add("n2", old(i));
  const report = await replayHints(node, 1, deps);
  // k7: n2 holds the newest of the two that answered with an entry (n3 and n4 hold none).
  assertEquals(report, {
    accepted: 0,
    ingested: 198,
    current: 1,
    retry: 0,
    unsent: 0,
    notOwned: 1, // point 1000's
  });
  assertEquals(reads.map((r) => r.node).sort(), ["n1", "n2", "n3", "n4"]);
  assertEquals(reads.find((r) => r.node === "n2")!.keys.length, 199);
  assertEquals(reads.find((r) => r.node === "n1")!.keys.length, 100);
  assertEquals(ingested.length, 1);
  assertEquals(ingested[0]!.length, 198);
  assertEquals(hints.count("n2"), 0);
});

Deno.test("replayHints() settles a key no quorum holds, and hints again every key of an ingest call that failed", async () => {
  const hints = new Hints();
  const node = { id: "n2", url: "http://n2.test" };
  const owners = ["n1", "n2", "n3"].map((id) => ({ id, url: `http://${id}.test` }));
  const at = (k: string, ver: string) => ({ k, v: "dg==", ver: `018c0000000${ver}-0000-p1`, h: 1 });
  // k0 is decided on n1 and n3; k1's newest is on n1 only until a round decides it.
  const held = new Map<string, Map<string, WireEntry>>([
    ["n1", new Map([["k0", at("k0", "2")], ["k1", at("k1", "2")]])],
    ["n2", new Map([["k0", at("k0", "1")], ["k1", at("k1", "1")]])],
    ["n3", new Map([["k0", at("k0", "2")], ["k1", at("k1", "1")]])],
  ]);
  const settled: string[] = [];
  let ingestFails = true;
  const ingested: string[] = [];
  const deps = {
    hints,
    accept: (_: NodeRef, _e: number, entries: unknown[]) =>
      Promise.resolve(entries.map(() => ({ ok: false, promised: "018c00000009-0000-0" }))),
    read: (n: NodeRef, _e: number, keys: string[]) =>
      Promise.resolve(keys.map((k) => held.get(n.id)!.get(k) ?? null)),
    ingest: (_: NodeRef, _e: number, entries: WireEntry[]) => {
      if (ingestFails) {
        return Promise.reject(new RingkvError("node_unavailable", "Cannot reach n2"));
      }
      ingested.push(...entries.map((e) => `${e.k}@${e.ver}`));
      return Promise.resolve();
    },
    settle: (e: WireEntry) => {
      settled.push(e.k);
      for (const id of ["n1", "n3"]) held.get(id)!.set(e.k, at(e.k, "3"));
      return Promise.resolve();
    },
    ownersOf: () => owners,
    forget: () => {},
  };
  hints.add("n2", at("k0", "1"));
  hints.add("n2", at("k1", "1"));
  assertEquals(await replayHints(node, 1, deps), {
    accepted: 0,
    ingested: 0,
    current: 0,
    retry: 2,
    unsent: 0,
    notOwned: 0,
  });
  assertEquals([settled, hints.count("n2")], [["k1"], 2]);
  ingestFails = false;
  assertEquals((await replayHints(node, 1, deps)).ingested, 2);
  assertEquals(ingested.sort(), ["k0@018c00000002-0000-p1", "k1@018c00000003-0000-p1"]);
  assertEquals(hints.count("n2"), 0);
});

/** Accept calls the proxy sent to `id`. */
function acceptsTo(c: TestCluster, id: string): number {
  return c.calls.filter((call) => call.node === id && call.path === "/internal/accept").length;
}

/** A hint for `key` under a ballot from now: below the floor of a node {@link restart} made. */
async function hintFor(key: string): Promise<WireEntry> {
  return { k: key, v: null, ver: formatVersion(Date.now(), 0, "p1"), h: await hashKey(key) };
}

/**
 * Restarts n2 with a hint waiting for it, its other owners down: the replay at t0 + 250 is
 * refused (n2's floor) and cannot be levelled (no owner to read), so it makes no progress.
 * Returns t0, the monotonic time of the first probe.
 */
async function replayWithoutProgress(c: TestCluster, replication: Replication): Promise<number> {
  restart(c, "n2");
  const t0 = performance.now() + 60_000;
  await replication.probeOnce(c.topology, t0);
  replication.hints.add("n2", await hintFor("k0"));
  c.down.add("n1");
  c.down.add("n3");
  await replication.probeOnce(c.topology, t0 + 250);
  return t0;
}

Deno.test("a replay that made no progress waits one probe interval before the next, then twice as long", async () => {
  const { c, replication } = await start(); // probe interval: 1000 ms
  try {
    const t0 = await replayWithoutProgress(c, replication);
    assertEquals([acceptsTo(c, "n2"), replication.hints.count("n2")], [1, 1]);
    await replication.probeOnce(c.topology, t0 + 750);
    assertEquals(acceptsTo(c, "n2"), 1, "within the first wait");
    await replication.probeOnce(c.topology, t0 + 1750);
    assertEquals(acceptsTo(c, "n2"), 2);
    await replication.probeOnce(c.topology, t0 + 3250);
    assertEquals(acceptsTo(c, "n2"), 2, "within the second wait (2000 ms)");
    c.down.clear();
    await replication.probeOnce(c.topology, t0 + 4250);
    // The owners answer: no owner holds k0, so n2 is current and the hint is done.
    assertEquals([acceptsTo(c, "n2"), replication.hints.count("n2")], [3, 0]);
  } finally {
    await c.close();
  }
});

Deno.test("a node seen down and back gets its hints at the next probe, whatever wait its failed replays left", async () => {
  const { c, replication } = await start(); // probe interval: 1000 ms
  try {
    const t0 = await replayWithoutProgress(c, replication);
    await replication.probeOnce(c.topology, t0 + 1750);
    assertEquals(acceptsTo(c, "n2"), 2, "two replays without progress: the next waits 2000 ms");
    c.down.add("n2");
    let at = t0 + 2000;
    for (; replication.detector.isUp("n2"); at += 250) {
      assert(at < t0 + 20_000, "n2 was never seen down");
      await replication.probeOnce(c.topology, at);
    }
    c.down.clear();
    while (!replication.detector.isUp("n2")) {
      at += 250;
      assert(at < t0 + 40_000, "n2 was never seen up again");
      await replication.probeOnce(c.topology, at);
    }
    // Back within the wait the failed replays left (until +3750 ms): only the reset sends now.
    assert(at < t0 + 3750, `n2 seen up again only at +${at - t0} ms`);
    assertEquals([acceptsTo(c, "n2"), replication.hints.count("n2")], [3, 0]);
  } finally {
    await c.close();
  }
});

Deno.test("a probe while a node's replay runs starts no second replay to it", async () => {
  const { c, replication } = await start();
  try {
    const t0 = performance.now() + 60_000;
    await replication.probeOnce(c.topology, t0);
    // One more than a chunk: the first replay's held accept leaves one hint a second could take.
    for (let i = 0; i <= REPLAY_CHUNK; i++) replication.hints.add("n2", await hintFor(`k${i}`));
    let release = () => {};
    const gate = new Promise<void>((resolve) => release = resolve);
    let held = () => {};
    const holding = new Promise<void>((resolve) => held = resolve);
    c.hook = async (req, node) => {
      if (node.info.id !== "n2" || !req.url.endsWith("/internal/accept")) return;
      if (acceptsTo(c, "n2") > 1) return;
      held();
      await gate;
    };
    const first = replication.probeOnce(c.topology, t0 + 250);
    await holding;
    await replication.probeOnce(c.topology, t0 + 500);
    assertEquals([acceptsTo(c, "n2"), replication.hints.count("n2")], [1, 1]);
    release();
    await first;
    assertEquals([acceptsTo(c, "n2"), replication.hints.count("n2")], [2, 0]);
  } finally {
    await c.close();
  }
});

Deno.test("during a rebalancing, the settle of a refused hint reaches the next ring's joining owner", async () => {
  const next = nodeInfos(4);
  const rebalancing = {
    kind: "add" as const,
    nodeId: "n4",
    phase: "copying" as const,
    next,
    startedAt: 0,
    movedKeys: 0,
    totalKeys: 0,
  };
  const { c, replication } = await start(next, { ...map, epoch: 2, rebalancing });
  try {
    const topo = c.topology.current();
    let key = "";
    for (let i = 0; key === ""; i++) {
      const r = replicasFor(topo, `j${i}`, await hashKey(`j${i}`));
      if (r.joining.some((n) => n.id === "n4")) key = `j${i}`;
    }
    // The newest entry is on n1 only: no write quorum holds it, so the replay settles the key.
    const entry = { ...await hintFor(key), v: "dg==", t: "text/plain" };
    await c.nodes.get("n1")!.engine.ingest([entry]);
    restart(c, "n2");
    replication.hints.add("n2", entry);
    await replication.probeOnce(c.topology, performance.now() + 60_000);
    assertEquals(replication.hints.count("n2"), 0);
    const [n1, n2, n3, n4] = versionsOf(c, key);
    assert(n1 !== undefined, "n1 holds the key");
    assertEquals(n1 === entry.ver, false, "a round re-stamped it");
    assertEquals([n2, n3, n4], [n1, n1, n1], "the joining owner n4 too");
  } finally {
    await c.close();
  }
});

Deno.test("replayHints() cuts accept and ingest calls at the value budget: hints of large values are not one call a node refuses", async () => {
  const hints = new Hints();
  const node = { id: "n2", url: "http://n2.test" };
  const owners = ["n1", "n2", "n3"].map((id) => ({ id, url: `http://${id}.test` }));
  const big = "A".repeat(600); // 6 of them: 3,600 characters of values against a budget of 1,000
  const entry = (i: number, ver: string) => ({ k: `k${i}`, v: big, ver, h: 1 });
  const sent: { kind: string; chars: number }[] = [];
  const chars = (entries: { k: string; v?: string | null }[]) =>
    entries.reduce((n, e) => n + e.k.length + (e.v?.length ?? 0), 0);
  const deps = {
    hints,
    valueBudget: 1000,
    accept: (_: NodeRef, _e: number, entries: { k: string; v?: string | null }[]) => {
      sent.push({ kind: "accept", chars: chars(entries) });
      return Promise.resolve(entries.map(() => ({ ok: false, promised: "018c00000009-0000-0" })));
    },
    // n1 and n3 hold a newer entry of every key: decided, so it goes into n2 by ingest.
    read: (n: NodeRef, _e: number, keys: string[]) =>
      Promise.resolve(keys.map((k) => {
        const i = Number(k.slice(1));
        return entry(i, n.id === "n2" ? "018c00000001-0000-p1" : "018c00000002-0000-p1");
      })),
    ingest: (_: NodeRef, _e: number, entries: { k: string; v?: string | null }[]) => {
      sent.push({ kind: "ingest", chars: chars(entries) });
      return Promise.resolve();
    },
    settle: () => Promise.reject(new Error("no settle expected")),
    ownersOf: () => owners,
    forget: () => {},
  };
  for (let i = 0; i < 6; i++) hints.add("n2", entry(i, "018c00000001-0000-p1"));
  const report = await replayHints(node, 1, deps);
  assertEquals(report, { accepted: 0, ingested: 6, current: 0, retry: 0, unsent: 0, notOwned: 0 });
  assertEquals(sent.filter((s) => s.kind === "accept").length, 6);
  assertEquals(sent.filter((s) => s.kind === "ingest").length, 6);
  assert(sent.every((s) => s.chars <= 1000), JSON.stringify(sent));
});

Deno.test("replayHints() drops the hints of keys the node no longer owns (a map change moved them): an accept there would leave a stray copy", async () => {
  const hints = new Hints();
  const node = { id: "n2", url: "http://n2.test" };
  const ref = (id: string) => ({ id, url: `http://${id}.test` });
  const hint = (k: string, h: number) => ({ k, v: "dg==", ver: "018c00000002-0000-p1", h });
  hints.add("n2", hint("stays", 1));
  hints.add("n2", hint("moved", 2)); // its range went to n4 while n2 was down
  const sent: string[] = [];
  const report = await replayHints(node, 2, {
    hints,
    accept: (_: NodeRef, _e: number, entries: WireEntry[]) => {
      sent.push(...entries.map((e) => e.k));
      return Promise.resolve(entries.map(() => ({ ok: true })));
    },
    read: () => Promise.reject(new Error("not read")),
    ingest: () => Promise.reject(new Error("not ingested")),
    settle: () => Promise.reject(new Error("not settled")),
    ownersOf: (point) => (point === 1 ? ["n1", "n2", "n3"] : ["n1", "n3", "n4"]).map(ref),
    forget: () => {},
  });
  assertEquals(sent, ["stays"]);
  assertEquals([report.accepted, report.notOwned, hints.count("n2")], [1, 1, 0]);
});
