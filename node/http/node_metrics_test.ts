import { assertEquals } from "@std/assert";
import { render } from "../../shared/prom.ts";
import { RequestCounters } from "./node_metrics.ts";

Deno.test("RequestCounters.count() counts each method, route and status apart, runs of like requests and alternations alike", () => {
  const counters = new RequestCounters();
  const calls: [string, string, number][] = [
    ["GET", "/kv/{key}", 200],
    ["GET", "/kv/{key}", 200],
    ["GET", "/kv/{key}", 404],
    ["GET", "/kv/{key}", 200],
    ["PUT", "/kv/{key}", 200],
    ["GET", "/health", 200],
    ["BREW", "/kv/{key}", 200],
    ["GET", "/kv/{key}", 200],
  ];
  for (const [method, route, status] of calls) counters.count(method, route, status, 0.001);
  const text = render(counters.metrics());
  const count = (labels: string) =>
    text.split("\n").find((l) => l.startsWith(`ringkv_node_requests_total{${labels}}`))
      ?.split(" ").at(-1);
  assertEquals(count('method="GET",route="/kv/{key}",status="200"'), "4");
  assertEquals(count('method="GET",route="/kv/{key}",status="404"'), "1");
  assertEquals(count('method="PUT",route="/kv/{key}",status="200"'), "1");
  assertEquals(count('method="GET",route="/health",status="200"'), "1");
  assertEquals(count('method="other",route="/kv/{key}",status="200"'), "1");
  const latency = text.split("\n").find((l) =>
    l.startsWith('ringkv_node_request_duration_seconds_count{method="GET",route="/kv/{key}"}')
  );
  assertEquals(latency?.split(" ").at(-1), "5");
});
