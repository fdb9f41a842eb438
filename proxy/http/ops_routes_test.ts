import { assert, assertEquals } from "@std/assert";
import { Ring } from "../../shared/ring.ts";
import { render } from "../../shared/prom.ts";
import type { NodeStats } from "../nodes/node_stats.ts";
import { antiEntropyGauges, nodeGauges } from "./ops_routes.ts";
import { ProxyMetrics } from "./proxy_metrics.ts";

function stats(id: string, up: boolean): NodeStats {
  const seen = up ? 7 : 0;
  return {
    id,
    url: `http://${id}.test`,
    up,
    keys: seen,
    tombstones: 0,
    valueBytes: seen,
    walBytes: seen,
    snapshotBytes: seen,
    writable: up ? 1 : 0,
    fsyncWaitSeconds: 0,
    openPromises: seen,
    requests: seen,
  };
}

Deno.test("/metrics has node_up 0 and writable 0 for a node that did not answer, and no key or byte samples it did not send", async () => {
  const ring = await Ring.build([{ id: "n1", weight: 1 }, { id: "n2", weight: 1 }]);
  const text = render(nodeGauges([stats("n1", true), stats("n2", false)], ring));
  const samples = text.split("\n").filter((l) => l !== "" && !l.startsWith("#"));
  const of = (node: string) => samples.filter((l) => l.includes(`node="${node}"`)).sort();
  assertEquals(of("n2"), [
    'ringkv_proxy_node_up{node="n2"} 0',
    'ringkv_proxy_node_writable{node="n2"} 0',
    'ringkv_proxy_ring_share{node="n2"} ' + ring.shares().get("n2"),
  ]);
  // A node that answered has every gauge.
  assertEquals(of("n1").length, 9);
  assertEquals(of("n1").includes('ringkv_proxy_node_keys{node="n1"} 7'), true);
  assertEquals(of("n1").includes('ringkv_proxy_node_open_promises{node="n1"} 7'), true);
});

Deno.test("internal calls are counted by the id of the member at the host, any other host as other", () => {
  const metrics = new ProxyMetrics();
  const members = new Map([["127.0.0.1:7001", "n1"]]);
  metrics.nameNodesBy((host) => members.get(host));
  metrics.nodeCall("127.0.0.1:7001", "/internal/batch", 200, 0.001);
  metrics.nodeCall("127.0.0.1:7001", "/internal/batch", 503, 0.001);
  metrics.nodeCall("[::1]:9999", "/health", new TypeError("connection refused"), 0.001);
  metrics.nodeCall("stranger.test:80", "/health", 200, 0.001);
  assertEquals(metrics.nodeCalls.get({ node: "n1", route: "/internal/batch", outcome: "2xx" }), 1);
  assertEquals(metrics.nodeCalls.get({ node: "n1", route: "/internal/batch", outcome: "5xx" }), 1);
  assertEquals(metrics.nodeCalls.get({ node: "other", route: "/health", outcome: "2xx" }), 1);
  assertEquals(metrics.nodeCalls.get({ node: "other", route: "/health", outcome: "error" }), 1);
  const labels = metrics.nodeCalls.lines().join("\n") + metrics.nodeLatency.lines().join("\n");
  assertEquals(/7001|9999|stranger/.test(labels), false, "no host becomes a label");
});

Deno.test("antiEntropyGauges() shows the buckets the last sweep could not compare and whose digests failed", () => {
  const last = {
    at: 0,
    epoch: 1,
    buckets: 32,
    differing: 0,
    behind: 0,
    repaired: 0,
    unchecked: 0,
    uncompared: 32,
    digestFailed: { n2: "timed out" },
  };
  const text = render(antiEntropyGauges(last, [{ id: "n1" }, { id: "n2" }]));
  assert(text.includes("ringkv_proxy_anti_entropy_buckets_uncompared 32\n"), text);
  assert(text.includes('ringkv_proxy_anti_entropy_digest_failed{node="n1"} 0\n'), text);
  assert(text.includes('ringkv_proxy_anti_entropy_digest_failed{node="n2"} 1\n'), text);
  assertEquals(antiEntropyGauges(null, [{ id: "n1" }]), []);
});
