import { assert, assertEquals } from "@std/assert";
import { DEFAULT_LIMITS } from "../shared/limits.ts";
import { createNodeApp } from "./http/node_app.ts";
import { createFakeDisk, IO_ERROR } from "../tests/doubles/fake_disk.ts";
import { openEngine } from "./engine/open_engine.ts";

Deno.test("a cluster map the disk cannot read (EIO) answers 503 naming cluster.json, and is read again once it can be", async () => {
  const disk = createFakeDisk();
  const engine = await openEngine({ disk, id: "n1", limits: DEFAULT_LIMITS });
  try {
    await engine.saveClusterMap({ epoch: 3, replicas: 1, vnodes: 8, nodes: [], rebalancing: null });
    disk.failReads("cluster.json", true);
    const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
    const refused = await app.request("/kv/a", { headers: { "x-ringkv-epoch": "3" } });
    const error = (await refused.json()).error;
    assertEquals([refused.status, error.code], [503, "unavailable"]);
    assert(error.message.includes("reading cluster.json failed"), error.message);
    assert(error.message.includes(IO_ERROR), error.message);
    disk.failReads("cluster.json", false);
    const again = await app.request("/kv/a", { headers: { "x-ringkv-epoch": "2" } });
    assertEquals(again.status, 409, "the stored map (epoch 3) is read now");
    await again.body?.cancel();
  } finally {
    await engine.close();
  }
});

Deno.test("PUT /internal/cluster takes the same map of the stored epoch again, never another one (each epoch's map is chosen once)", async () => {
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", limits: DEFAULT_LIMITS });
  try {
    const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
    const map = { epoch: 4, replicas: 1, vnodes: 8, nodes: [], rebalancing: null };
    const put = (body: unknown) =>
      app.request("/internal/cluster", { method: "PUT", body: JSON.stringify(body) });
    assertEquals((await put(map)).status, 200);
    assertEquals((await put(map)).status, 200, "a push again");
    const other = await put({ ...map, replicas: 2 });
    const body = await other.json();
    assertEquals([other.status, body.error.code, body.map], [409, "stale_epoch", map]);
    assertEquals(await engine.loadClusterMap(), map);
  } finally {
    await engine.close();
  }
});

Deno.test("a vote carrying its base map (epoch - 1) makes a node behind learn it first; a base of another epoch is 400", async () => {
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", limits: DEFAULT_LIMITS });
  try {
    const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
    const nodes = [{ id: "n1", url: "http://n1", weight: 1 }];
    const map = (epoch: number) => ({ epoch, replicas: 1, vnodes: 8, nodes, rebalancing: null });
    await engine.saveClusterMap(map(1));
    const vote = (body: unknown) =>
      app.request("/internal/cluster/prepare", { method: "POST", body: JSON.stringify(body) });
    const ballot = "018c00000000-0000-pa";
    const bad = await vote({ epoch: 4, ballot, base: map(2) });
    assertEquals(bad.status, 400);
    await bad.body?.cancel();
    const ok = await vote({ epoch: 4, ballot, base: map(3) });
    assertEquals(ok.status, 200);
    await ok.body?.cancel();
    assertEquals((await engine.loadClusterMap())?.epoch, 3);
    // Epoch 3 is decided now: a proposer still building it from epoch 2 learns it.
    const late = await vote({ epoch: 3, ballot: "018c00000000-0001-pb", base: map(2) });
    assertEquals([late.status, (await late.json()).map], [409, map(3)]);
  } finally {
    await engine.close();
  }
});

Deno.test("a vote from another cluster whose map names this node's id on another data directory is refused (503): nothing stored, no vote (found by review)", async () => {
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", limits: DEFAULT_LIMITS });
  try {
    const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
    const me = { id: "n1", url: "http://u", weight: 1, incarnation: engine.incarnation };
    const mine = { epoch: 2, replicas: 1, vnodes: 8, nodes: [me], rebalancing: null };
    await engine.saveClusterMap(mine);
    const theirs = { ...mine, epoch: 5, nodes: [{ ...me, incarnation: "iother" }] };
    const vote = (step: string, body: unknown) =>
      app.request(`/internal/cluster/${step}`, { method: "POST", body: JSON.stringify(body) });
    const ballot = "018c00000000-0000-pa";
    for (
      const [step, body] of [
        ["prepare", { epoch: 6, ballot, base: theirs }],
        ["accept", { epoch: 6, ballot, base: theirs, map: { ...theirs, epoch: 6 } }],
      ] as const
    ) {
      const res = await vote(step, body);
      assertEquals([res.status, (await res.json()).error.code], [503, "node_recovering"]);
    }
    assertEquals(await engine.loadClusterMap(), mine);
    assertEquals(await engine.loadMapVote(), null);
    // The same node wiped (no map) votes on its cluster's next map, and learns its base.
    const wiped = await openEngine({ disk: createFakeDisk(), id: "n1", limits: DEFAULT_LIMITS });
    try {
      const fresh = createNodeApp({ engine: wiped, limits: DEFAULT_LIMITS });
      const res = await fresh.request("/internal/cluster/prepare", {
        method: "POST",
        body: JSON.stringify({ epoch: 6, ballot, base: theirs }),
      });
      assertEquals(res.status, 200);
      await res.body?.cancel();
      assertEquals((await wiped.loadClusterMap())?.epoch, 5);
      const again = await fresh.request("/internal/cluster/prepare", {
        method: "POST",
        body: JSON.stringify({ epoch: 6, ballot: "018c00000000-0001-pa", base: theirs }),
      });
      assertEquals(again.status, 200, "it holds the map it learnt while wiped: still a voter");
      await again.body?.cancel();
    } finally {
      await wiped.close();
    }
  } finally {
    await engine.close();
  }
});
