import { assert, assertEquals } from "@std/assert";
import { render } from "../../shared/prom.ts";
import { clockGauge } from "../http/ops_routes.ts";
import {
  FakeTopology,
  nodeInfos,
  stableMap,
  topologyOf,
} from "../../tests/doubles/test_cluster.ts";
import { withWallStep } from "../../tests/doubles/wall_step.ts";
import { FailureDetector } from "./failure_detector.ts";
import { CLOCK_WARN_MS, createReplication } from "./wiring.ts";

Deno.test("FailureDetector: a probe that says the node refuses writes makes it read-only until a probe says it takes them", () => {
  const fd = new FailureDetector({ probeMs: 500 });
  fd.step({ kind: "answered", node: "n1", at: 0, avoidWrites: false });
  fd.step({
    kind: "answered",
    node: "n1",
    at: 10,
    avoidWrites: { stalled: false, why: "read-only: disk full" },
  });
  assertEquals(fd.health("n1"), {
    state: "read-only",
    since: 10,
    failures: 0,
    writesAvoided: "read-only: disk full",
  });
  // A data call that answered says nothing about writes: the node stays read-only.
  fd.step({ kind: "answered", node: "n1", at: 20 });
  assertEquals(fd.health("n1")?.state, "read-only");
  assertEquals([fd.isUp("n1"), fd.writesFirst("n1")], [true, false]);
  fd.step({ kind: "failed", node: "n1", at: 30 });
  assertEquals([fd.health("n1")?.state, fd.isUp("n1")], ["down", false]);
  fd.step({ kind: "answered", node: "n1", at: 40, avoidWrites: false });
  assertEquals([fd.health("n1")?.state, fd.health("n1")?.since], ["up", 40]);
  assertEquals(fd.health("n1")?.writesAvoided, undefined);
  assertEquals(fd.writesFirst("n1"), true);
});

Deno.test("FailureDetector.order() puts up nodes first, then read-only ones, then down ones", () => {
  const fd = new FailureDetector({ probeMs: 500 });
  fd.step({ kind: "failed", node: "a", at: 0 });
  fd.step({
    kind: "answered",
    node: "b",
    at: 0,
    avoidWrites: { stalled: false, why: "read-only: disk full" },
  });
  const nodes = ["a", "b", "c", "d"].map((id) => ({ id }));
  assertEquals(fd.order(nodes).map((n) => n.id), ["c", "d", "b", "a"]);
  const up = ["d", "c", "e"].map((id) => ({ id }));
  const ordered = fd.order(up);
  assertEquals(ordered, up, "all up: the order given");
  ordered.pop();
  assertEquals(up.length, 3, "a new list, not the one given");
});

Deno.test("FailureDetector: a probe that says writes stall makes the node stalled (not read-only): asked after the up ones, until a probe says they do not", () => {
  const fd = new FailureDetector({ probeMs: 500 });
  const why = "stalled: the log write has waited 6.0 s";
  fd.step({ kind: "answered", node: "s", at: 0, avoidWrites: { stalled: true, why } });
  assertEquals(fd.health("s"), { state: "stalled", since: 0, failures: 0, writesAvoided: why });
  fd.step({ kind: "answered", node: "s", at: 5 }); // a data call says nothing about writes
  assertEquals([fd.health("s")?.state, fd.isUp("s"), fd.writesFirst("s")], [
    "stalled",
    true,
    false,
  ]);
  fd.step({ kind: "failed", node: "d", at: 0 });
  const nodes = ["d", "s", "u"].map((id) => ({ id }));
  assertEquals(fd.order(nodes).map((n) => n.id), ["u", "s", "d"]);
  fd.step({ kind: "answered", node: "s", at: 10, avoidWrites: false });
  assertEquals([fd.health("s")?.state, fd.writesFirst("s")], ["up", true]);
});

for (const stepMs of [-3_600_000, 3 * 3_600_000]) {
  Deno.test(`Replication.probeOnce(): a wall clock stepped by ${stepMs / 3_600_000} h and back does not hold the probes`, async () => {
    let up = false;
    const probes: string[] = [];
    const fetch = (url: string) => {
      probes.push(url);
      return up
        ? Promise.resolve(Response.json({ status: "ok" }))
        : Promise.reject(new TypeError(`error sending request for url (${url}): refused`));
    };
    const replication = createReplication({ fetch, timeoutMs: 1000, probeMs: 20 });
    const topology = new FakeTopology(await topologyOf(stableMap(nodeInfos(1))));
    const probeLater = async () => {
      await new Promise((r) => setTimeout(r, 40)); // two probe intervals
      await replication.probeOnce(topology);
    };
    await replication.probeOnce(topology);
    assertEquals([probes.length, replication.detector.isUp("n1")], [1, false]);
    up = true; // the node is back: the next probe finds it
    await withWallStep(stepMs, probeLater);
    assertEquals([probes.length, replication.detector.isUp("n1")], [2, true]);
    await probeLater(); // the wall clock put back
    assertEquals(probes.length, 3);
  });
}

Deno.test("Replication: a node whose clock is more than 1 s off is warned about once, shown in /metrics, and told when back", async () => {
  let offsetMs = 5000;
  const fetch = () => Promise.resolve(Response.json({ status: "ok", now: Date.now() + offsetMs }));
  const logged: Record<string, unknown>[] = [];
  const replication = createReplication({
    fetch,
    timeoutMs: 1000,
    probeMs: 20,
    log: (o) => logged.push(o),
  });
  const topology = new FakeTopology(await topologyOf(stableMap(nodeInfos(1))));
  await replication.probeOnce(topology, 0);
  await replication.probeOnce(topology, 1000);
  const measured = replication.clockOffsetMs("n1") ?? NaN;
  assert(Math.abs(measured - 5000) < 200, `offset ${measured}`);
  assertEquals(logged.map((o) => [o.level, o.node, o.boundMs]), [["warn", "n1", CLOCK_WARN_MS]]);
  const text = render([clockGauge({ replication }, [{ id: "n1" }, { id: "n2" }])]);
  const sample = text.match(/^ringkv_proxy_node_clock_offset_seconds\{node="n1"\} (\S+)$/m);
  assert(sample !== null && Math.abs(Number(sample[1]) - 5) < 0.2, text);
  assert(!text.includes('node="n2"'), "no sample for a node never probed");
  offsetMs = 0;
  await replication.probeOnce(topology, 2000);
  assertEquals(logged.map((o) => o.level), ["warn", "info"]);
});

Deno.test("Replication.healthOf(): a node's `since` stays where it was when the wall clock is stepped later", async () => {
  const fetch = () => Promise.resolve(Response.json({ status: "ok" }));
  const replication = createReplication({ fetch, timeoutMs: 1000, probeMs: 20 });
  const topology = new FakeTopology(await topologyOf(stableMap(nodeInfos(1))));
  await replication.probeOnce(topology);
  const shown = replication.healthOf("n1");
  assert(shown.state === "up", JSON.stringify(shown));
  assert("since" in shown && Math.abs(shown.since - Date.now()) < 5_000, "since is a wall time");
  const stepped = await withWallStep(-3_600_000, () => replication.healthOf("n1"));
  assertEquals("since" in stepped ? stepped.since : undefined, shown.since);
});

Deno.test("FailureDetector: a node that refuses the cluster secret is unauthorized (not up, asked last, no writes first) until it answers as a node that takes it", () => {
  const fd = new FailureDetector({ probeMs: 500 });
  fd.step({ kind: "answered", node: "n1", at: 0, avoidWrites: false });
  fd.step({ kind: "refused", node: "n1", at: 10, error: "Node n1 refused this proxy's secret" });
  assertEquals(fd.health("n1"), {
    state: "unauthorized",
    since: 10,
    failures: 0,
    lastError: "Node n1 refused this proxy's secret",
  });
  assertEquals([fd.isUp("n1"), fd.writesFirst("n1")], [false, false]);
  fd.step({ kind: "failed", node: "n2", at: 0 });
  const nodes = ["n1", "n2", "n3"].map((id) => ({ id }));
  assertEquals(fd.order(nodes).map((n) => n.id), ["n3", "n1", "n2"]);
  fd.step({ kind: "answered", node: "n1", at: 20, avoidWrites: false });
  assertEquals([fd.health("n1")?.state, fd.isUp("n1")], ["up", true]);
});
