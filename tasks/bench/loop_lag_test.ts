import { assertEquals } from "@std/assert";
import { lagLine, lagSummary } from "./loop_lag.ts";

Deno.test("lagSummary() counts only the samples inside the window", () => {
  const samples: [number, number][] = [[0, 900], [100, 1], [200, 2], [300, 3], [400, 800]];
  const s = lagSummary(samples, 100, 300);
  assertEquals([s.samples, s.p50, s.max], [3, 2, 3]);
});

Deno.test("lagSummary() gives nearest-rank percentiles and the time held past 10 and 50 ms", () => {
  // 1,000 samples over 10 s: 990 of 1 ms, 9 of 20 ms, one of 200 ms.
  const samples: [number, number][] = [];
  for (let i = 0; i < 1000; i++) samples.push([i * 10, i < 990 ? 1 : i < 999 ? 20 : 200]);
  const s = lagSummary(samples, 0, 10_000);
  assertEquals([s.p50, s.p90, s.p99, s.p999, s.max], [1, 1, 1, 20, 200]);
  assertEquals(s.over10, (9 * 20 + 200) / 10_000);
  assertEquals(s.over50, 200 / 10_000);
});

Deno.test("lagSummary() of an empty window is all zeros", () => {
  const s = lagSummary([[5, 100]], 10, 20);
  assertEquals([s.samples, s.p99, s.max, s.over10], [0, 0, 0, 0]);
});

Deno.test("lagLine() names the process and prints the percentiles", () => {
  const line = lagLine("proxy", lagSummary([[1, 12.34]], 0, 10));
  assertEquals(line.startsWith("proxy loop lag ms (1 samples): p50 12.3"), true);
});
