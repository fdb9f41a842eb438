import { assert, assertEquals } from "@std/assert";
import { cpuNow, cpuPerRequest, cpuSeconds } from "./cpu_time.ts";

Deno.test({
  name: "cpuSeconds() reads a process's CPU time, which grows as it works (Linux)",
  ignore: Deno.build.os !== "linux",
  fn: () => {
    const start = cpuSeconds(Deno.pid)!;
    assert(start >= 0, String(start));
    let x = 0;
    const deadline = Date.now() + 10_000;
    // Busy until the kernel has counted at least two ticks more (bounded by the deadline).
    while (cpuSeconds(Deno.pid)! < start + 0.02 && Date.now() < deadline) x += Math.sqrt(x + 1);
    assert(cpuSeconds(Deno.pid)! >= start + 0.02, `x ${x}`);
    assertEquals(cpuSeconds(2 ** 22 + 12345), undefined, "no such process");
    assertEquals(Object.keys(cpuNow([{ name: "me", pid: Deno.pid }])), ["me"]);
  },
});

Deno.test("cpuPerRequest() is µs per request of each process read both times", () => {
  assertEquals(
    cpuPerRequest({ a: 1, b: 2 }, { a: 1.25, b: 2.5, c: 9 }, 500),
    { a: 500, b: 1000 },
  );
  assertEquals(cpuPerRequest({ a: 1 }, { a: 2 }, 0), {});
});
