import { assertEquals } from "@std/assert";
import { ProxyMetrics } from "./proxy_metrics.ts";

Deno.test("ProxyMetrics.request() counts each series exactly when like and unlike requests alternate", () => {
  const metrics = new ProxyMetrics();
  const calls: [string, string, number][] = [
    ["GET", "/kv/{key}", 200],
    ["GET", "/kv/{key}", 200],
    ["GET", "/kv/{key}", 404],
    ["GET", "/kv/{key}", 200],
    ["PUT", "/kv/{key}", 200],
    ["GET", "/kv", 200],
    ["BREW", "/kv/{key}", 200],
    ["MKCOL", "/kv/{key}", 200],
  ];
  for (const [method, route, status] of calls) metrics.request(method, route, status, 0.001);
  const count = (method: string, route: string, status: string) =>
    metrics.requests.seriesOf({ method, route, status }).value;
  assertEquals(count("GET", "/kv/{key}", "200"), 3);
  assertEquals(count("GET", "/kv/{key}", "404"), 1);
  assertEquals(count("PUT", "/kv/{key}", "200"), 1);
  assertEquals(count("GET", "/kv", "200"), 1);
  assertEquals(count("other", "/kv/{key}", "200"), 2, "unknown methods share one series");
  assertEquals(metrics.latency.seriesOf({ method: "GET", route: "/kv/{key}" }).count, 4);
});
