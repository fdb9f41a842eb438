import { assert, assertEquals } from "@std/assert";
import { createReplication } from "./wiring.ts";
import type { Topology } from "../cluster/topology.ts";
import { nodeInfos, startCluster, TEST_VNODES } from "../../tests/doubles/test_cluster.ts";
import { overRequests } from "../../tests/doubles/node_fetch.ts";
import { formatVersion } from "../../shared/version.ts";
import { AntiEntropy, SYNC_PAUSE_MS, syncPauseMs } from "./anti_entropy.ts";
import { NodeAdmin } from "../nodes/node_admin.ts";

/** A 3-replica test cluster whose n3 missed the writes of keys k0..k{count-1} (each 201). */
async function clusterN3Missed(count: number) {
  const infos = nodeInfos(3);
  const cluster = await startCluster({
    nodes: infos,
    map: { epoch: 1, replicas: 3, vnodes: TEST_VNODES, nodes: infos, rebalancing: null },
  });
  try {
    cluster.down.add("n3");
    for (let i = 0; i < count; i++) {
      const res = await cluster.proxy.request(`/kv/k${i}`, { method: "PUT", body: "v" });
      assertEquals(res.status, 201);
    }
    cluster.down.clear();
    return cluster;
  } catch (err) {
    await cluster.close();
    throw err;
  }
}

Deno.test("AntiEntropy.sweep() counts a replica whose scan breaks mid-body as not answering", async () => {
  const cluster = await clusterN3Missed(5);
  try {
    const breaking = overRequests(async (req) => {
      const res = await cluster.fetch(req.url, req);
      if (!req.url.startsWith("http://n1.test/internal/scan")) return res;
      await res.body?.cancel();
      const error = new TypeError("error reading a body from connection");
      return new Response(new ReadableStream({ pull: (ctl) => ctl.error(error) }));
    });
    const replication = createReplication({
      fetch: breaking,
      timeoutMs: 5000,
      clusterSecret: "s3cret",
    });
    const report = await replication.antiEntropy.sweep(cluster.topology.current());
    assert(report !== null && report.differing > 0, JSON.stringify(report));
    // n2 still gives n3 what it missed; n1's broken scan only left it out.
    assertEquals(report.behind, 5);
    for (let i = 0; i < 5; i++) {
      assert(await cluster.nodes.get("n3")!.engine.get(`k${i}`) !== undefined, `n3 k${i}`);
    }
  } finally {
    await cluster.close();
  }
});

Deno.test("Replication.start() logs a sweep that fails unexpectedly instead of ending the process", async () => {
  const logged: Record<string, unknown>[] = [];
  const replication = createReplication({
    fetch: () => Promise.reject(new TypeError("connection refused")),
    timeoutMs: 100,
    probeMs: 60_000,
    antiEntropyMs: 10,
    log: (o) => logged.push(o),
  });
  // A fault in the proxy itself (here its ring), not a node's answer.
  const broken = () => {
    throw new Error("the ring is broken");
  };
  const ring = { points: broken } as unknown as Topology["ring"];
  const map = { epoch: 1, replicas: 3, vnodes: 8, nodes: [], rebalancing: null };
  const topo: Topology = { map, ring, nextRing: null, nodeUrl: () => undefined };
  replication.start({ current: () => topo, refreshFrom: () => Promise.resolve() });
  try {
    const deadline = Date.now() + 10_000;
    while (!logged.some((o) => o.msg === "anti-entropy sweep failed" && o.level === "error")) {
      assert(Date.now() < deadline, `no sweep failure logged: ${JSON.stringify(logged)}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  } finally {
    replication.stop();
  }
});

Deno.test("AntiEntropy.sweep() settles an undecided entry that a promise blocks on the other replicas", async () => {
  const infos = nodeInfos(3);
  const cluster = await startCluster({
    nodes: infos,
    map: { epoch: 1, replicas: 3, vnodes: TEST_VNODES, nodes: infos, rebalancing: null },
  });
  try {
    assertEquals(
      (await cluster.proxy.request("/kv/k", { method: "PUT", body: "old" })).status,
      201,
    );
    const replication = createReplication({
      fetch: cluster.fetch,
      timeoutMs: 5000,
      clusterSecret: "s3cret",
    });
    const [n1, n2, n3] = infos.map((n) => ({ id: n.id, url: n.url }));
    const now = Date.now() + 60_000;
    // A writer's accept reached n2 only; then a round that wrote nothing (a failed If-Match,
    // say) left a higher promise on n1 and n3.
    const point = (await cluster.nodes.get("n1")!.engine.get("k"))!.hash;
    const ver = formatVersion(now, 0, "pw");
    const entry = { k: "k", v: btoa("new"), t: "text/plain", ver, h: point };
    assert((await replication.client.prepare(n2!, 1, [{ key: "k", ballot: ver }]))[0]!.ok);
    assert((await replication.client.accept(n2!, 1, [entry]))[0]!.ok);
    const promise = formatVersion(now + 1, 0, "pz");
    for (const n of [n1!, n3!]) {
      assert((await replication.client.prepare(n, 1, [{ key: "k", ballot: promise }]))[0]!.ok);
    }
    const versions = async () =>
      await Promise.all(
        infos.map(async (n) => (await cluster.nodes.get(n.id)!.engine.get("k"))!.version),
      );
    // Without a new round the accept of n2's entry is refused by that promise for good.
    for (let sweep = 0; sweep < 5 && new Set(await versions()).size > 1; sweep++) {
      await replication.antiEntropy.sweep(cluster.topology.current());
    }
    const after = await versions();
    assertEquals(new Set(after).size, 1, `replicas level: ${after.join(", ")}`);
    assert(after[0]! > promise, "settled under a ballot above the promise");
    const res = await cluster.proxy.request("/kv/k");
    assertEquals(await res.text(), "new");
  } finally {
    await cluster.close();
  }
});

Deno.test("AntiEntropy.sweep() pauses between two syncs, so a sweep's scans never come in one burst", async () => {
  const cluster = await clusterN3Missed(40);
  try {
    const events: string[] = [];
    const fetch = overRequests((req) => {
      if (req.url.includes("/internal/scan")) events.push("scan");
      return cluster.fetch(req.url, req);
    });
    const sweeper = new AntiEntropy({
      admin: new NodeAdmin({ fetch, timeoutMs: 5000, clusterSecret: "s3cret" }),
      pauseMs: 40,
      sleep: (ms) => {
        events.push(`pause ${ms}`);
        return Promise.resolve();
      },
    });
    const report = await sweeper.sweep(cluster.topology.current());
    assert(report !== null && report.differing > 1, JSON.stringify(report));
    assertEquals(report.behind, 40);
    // Each sync scans the 3 replicas together; a pause comes before every sync but the first.
    const syncs = events.join(" ").split(" pause 40 ");
    assertEquals(syncs.length, report.differing);
    for (const sync of syncs) assertEquals(sync, "scan scan scan");
  } finally {
    await cluster.close();
  }
});

Deno.test("syncPauseMs() keeps a sweep's 64 pauses within half its interval", () => {
  assertEquals(syncPauseMs(600_000), SYNC_PAUSE_MS);
  assertEquals(syncPauseMs(30_000), 234);
  assertEquals(syncPauseMs(2000), 15);
  assertEquals(syncPauseMs(0), 0);
  for (const ms of [0, 1000, 2000, 30_000, 600_000]) assert(64 * syncPauseMs(ms) <= ms / 2);
});

Deno.test("AntiEntropy.stop() ends a running sweep at its next pause: no sync after it, no timer left", async () => {
  const cluster = await clusterN3Missed(40);
  try {
    let scans = 0;
    let sweeper: AntiEntropy | undefined = undefined;
    let stopped: Promise<void> | undefined;
    const fetch = overRequests((req) => {
      if (req.url.includes("/internal/scan") && ++scans === 3) stopped = sweeper!.stop();
      return cluster.fetch(req.url, req);
    });
    // A long pause with the real timer: stop() must cut it short and clear it.
    sweeper = new AntiEntropy({
      admin: new NodeAdmin({ fetch, timeoutMs: 5000, clusterSecret: "s3cret" }),
      pauseMs: 60_000,
    });
    const report = await sweeper.sweep(cluster.topology.current());
    await stopped;
    assertEquals([report, scans], [null, 3], "one sync's scans, then nothing");
    assertEquals(await sweeper.sweep(cluster.topology.current()), null, "no sweep after stop()");
  } finally {
    await cluster.close();
  }
});

Deno.test("AntiEntropy.sweep() never counts failed digests as agreement: buckets uncompared, nodes named, one warning each", async () => {
  const cluster = await clusterN3Missed(5);
  try {
    const asked = new Map<string, number>();
    const failing = overRequests(async (req) => {
      const url = new URL(req.url);
      if (url.pathname === "/internal/digest") {
        asked.set(url.host, (asked.get(url.host) ?? 0) + 1);
        throw new TypeError("error sending request: operation timed out");
      }
      return await cluster.fetch(req.url, req);
    });
    const logged: Record<string, unknown>[] = [];
    const sweeper = new AntiEntropy({
      admin: new NodeAdmin({ fetch: failing, timeoutMs: 5000, clusterSecret: "s3cret" }),
      log: (o) => logged.push(o),
    });
    const report = await sweeper.sweep(cluster.topology.current());
    assert(report !== null);
    assert(report.buckets > 1);
    assertEquals([report.uncompared, report.differing], [report.buckets, 0]);
    assertEquals(Object.keys(report.digestFailed).sort(), ["n1", "n2", "n3"]);
    const warnings = logged.filter((o) => o.level === "warn" && o.node !== undefined);
    assertEquals(warnings.map((o) => o.node).sort(), ["n1", "n2", "n3"]);
    assert(String(warnings[0]!.error).includes("timed out"), JSON.stringify(warnings[0]));
    // A node that failed is not asked again this sweep (a hung one would cost a timeout a call).
    assertEquals([...asked.values()], [1, 1, 1], JSON.stringify([...asked]));
  } finally {
    await cluster.close();
  }
});

Deno.test("AntiEntropy.sweep() asks each node for its digests a few buckets per call, with the digest timeout", async () => {
  const cluster = await clusterN3Missed(5);
  try {
    const calls: number[] = [];
    const counting = overRequests(async (req) => {
      if (new URL(req.url).pathname === "/internal/digest") {
        calls.push((JSON.parse(await req.clone().text()) as { buckets: unknown[] }).buckets.length);
        // Slower than a client call's timeout: background work has a longer one.
        await new Promise((resolve, reject) => {
          const timer = setTimeout(resolve, 60);
          req.signal.addEventListener("abort", () => {
            clearTimeout(timer);
            reject(req.signal.reason);
          });
        });
      }
      return await cluster.fetch(req.url, req);
    });
    const sweeper = new AntiEntropy({
      admin: new NodeAdmin({ fetch: counting, timeoutMs: 40, clusterSecret: "s3cret" }),
      digestBuckets: 8,
    });
    const report = await sweeper.sweep(cluster.topology.current());
    assert(report !== null && report.buckets > 8, JSON.stringify(report));
    assert(calls.length >= 3 * Math.ceil(report.buckets / 8), JSON.stringify(calls));
    assert(calls.every((n) => n <= 8), JSON.stringify(calls));
    assertEquals([report.uncompared, report.digestFailed], [0, {}]);
    assert(report.differing > 0);
  } finally {
    await cluster.close();
  }
});
