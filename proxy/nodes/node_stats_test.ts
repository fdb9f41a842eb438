import { assertEquals } from "@std/assert";
import { parseNodeMetrics } from "./node_stats.ts";

Deno.test("parseNodeMetrics() reads ringkv_node_writable (0 when a node refuses writes or says nothing)", () => {
  const text = 'ringkv_node_keys{node="n1"} 3\nringkv_node_writable{node="n1"} 0\n';
  assertEquals([parseNodeMetrics(text).writable, parseNodeMetrics(text).keys], [0, 3]);
  assertEquals(parseNodeMetrics('ringkv_node_writable{node="n1"} 1\n').writable, 1);
  assertEquals(parseNodeMetrics("").writable, 0);
});
