import { assertEquals, assertMatch, assertThrows } from "@std/assert";
import { checkProxyPort, planCluster, portOffsets, storedMap } from "./cluster_plan.ts";
import { ConfigError } from "../shared/config.ts";
import type { ClusterMap, NodeInfo } from "../shared/wire.ts";

const node = (id: string): NodeInfo => ({ id, url: `http://127.0.0.1:1/${id}`, weight: 1 });
const map = (ids: string[], replicas: number, next?: string[]): ClusterMap => ({
  epoch: 7,
  replicas,
  vnodes: 8,
  nodes: ids.map(node),
  rebalancing: next === undefined ? null : {
    kind: "add",
    nodeId: next.at(-1)!,
    phase: "copying",
    next: next.map(node),
    startedAt: 0,
    movedKeys: 0,
    totalKeys: 0,
  },
});
const flags = { data: "./data", nodes: 3, replicas: 3, given: [] as ("nodes" | "replicas")[] };

Deno.test("planCluster() on a new --data starts n1..nN with the replicas asked for", () => {
  assertEquals(planCluster({ ...flags, nodes: 2, replicas: 1 }, null), {
    ids: ["n1", "n2"],
    offsets: [0, 1],
    replicas: 1,
    notes: [],
  });
});

Deno.test("planCluster() on a stored cluster starts its nodes, a joining one included, in id order", () => {
  const plan = planCluster(flags, map(["n10", "n2", "n1"], 2, ["n10", "n2", "n1", "n11"]));
  assertEquals(plan, {
    ids: ["n1", "n2", "n10", "n11"],
    offsets: [0, 1, 9, 10],
    replicas: 2,
    notes: [],
  });
});

Deno.test("planCluster() names --nodes and --replicas that differ from the stored cluster as ignored", () => {
  const given = ["nodes", "replicas"] as ("nodes" | "replicas")[];
  const plan = planCluster({ ...flags, nodes: 2, replicas: 1, given }, map(["n1", "n2", "n3"], 3));
  assertEquals(plan.ids, ["n1", "n2", "n3"]);
  assertEquals(plan.replicas, 3);
  assertMatch(plan.notes[0]!, /^--nodes 2 is ignored: \.\/data holds a cluster of 3 node/);
  assertMatch(plan.notes[1]!, /^--replicas 1 is ignored: /);
  // The same values as stored, or defaults not given, say nothing.
  assertEquals(planCluster({ ...flags, given }, map(["n1", "n2", "n3"], 3)).notes, []);
  assertEquals(planCluster({ ...flags, nodes: 5 }, map(["n1", "n2", "n3"], 3)).notes, []);
});

Deno.test("planCluster() leaves a stored node with no directory under --data to whoever runs it", () => {
  const plan = planCluster(flags, map(["n1", "n2", "../x", "far"], 3), (id) => id !== "far");
  assertEquals(plan.ids, ["n1", "n2"]);
  assertEquals(plan.notes.length, 2);
  assertMatch(plan.notes[1]!, /^far \S+ is in the cluster map but has no directory in \.\/data/);
  // A node being added by hand is in the rebalancing's next ring only: its URL is named too (QA).
  const adding = planCluster(flags, map(["n1", "n2"], 2, ["n1", "n2", "n5"]), (id) => id !== "n5");
  assertEquals(adding.ids, ["n1", "n2"]);
  assertMatch(adding.notes[0]!, /^n5 http:\/\/127\.0\.0\.1:1\/n5 is in the cluster map/);
});

Deno.test("checkProxyPort() refuses a --port one of the nodes gets", () => {
  const plan = planCluster(flags, null);
  assertThrows(() => checkProxyPort(7003, 7001, plan), ConfigError, "node n3 gets that port");
  checkProxyPort(7004, 7001, plan);
  checkProxyPort(7000, 7001, plan);
  checkProxyPort(0, 7001, plan);
  checkProxyPort(7001, 0, plan);
  // By id, not position: with n2 not started here, n3 is still at 7003 and 7002 is free.
  const gap = planCluster(flags, map(["n1", "n2", "n3"], 3), (id) => id !== "n2");
  assertThrows(() => checkProxyPort(7003, 7001, gap), ConfigError, "node n3 gets that port");
  checkProxyPort(7002, 7001, gap);
});

Deno.test("planCluster() starts a node that a removal's cleanup still names, each nK on its own port offset K - 1", () => {
  // The cleanup of n2's removal: the map's ring no longer has n2; only the previous one does.
  const cleanup: ClusterMap = {
    ...map(["n1", "n3", "n4"], 1),
    rebalancing: {
      kind: "remove",
      nodeId: "n2",
      phase: "cleanup",
      next: ["n1", "n3", "n4"].map(node),
      prev: ["n1", "n2", "n3", "n4"].map(node),
      startedAt: 0,
      movedKeys: 0,
      totalKeys: 0,
    } as ClusterMap["rebalancing"],
  };
  const plan = planCluster(flags, cleanup);
  assertEquals([plan.ids, plan.offsets], [["n1", "n2", "n3", "n4"], [0, 1, 2, 3]]);
  // Without n2's directory, n3 keeps its port: it never takes the port the proxy knows as n2's.
  const without = planCluster(flags, cleanup, (id) => id !== "n2");
  assertEquals([without.ids, without.offsets], [["n1", "n3", "n4"], [0, 2, 3]]);
  // Ids this task did not make go after the numbered ones.
  assertEquals(portOffsets(["n1", "b", "n3", "a"]), [0, 3, 2, 4]);
});

Deno.test("storedMap() reads a hand-damaged map with a node that is no object as none, for the proxy to name", async () => {
  const data = await Deno.makeTempDir({ prefix: "ringkv-plan-" });
  try {
    await Deno.mkdir(`${data}/proxy`);
    await Deno.writeTextFile(
      `${data}/proxy/cluster.json`,
      JSON.stringify({ epoch: 1, replicas: 1, vnodes: 8, nodes: [null], rebalancing: null }),
    );
    assertEquals(await storedMap(data), null);
  } finally {
    await Deno.remove(data, { recursive: true });
  }
});
