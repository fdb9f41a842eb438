import { assert, assertEquals } from "@std/assert";
import { cpuNow, cpuPerRequest, statSeconds } from "./cpu_time.ts";

Deno.test("statSeconds() reads user + system ticks after the command name, spaces and all", () => {
  const line = "4242 (deno (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 9 0";
  assertEquals(statSeconds(line), 3);
  assertEquals(statSeconds(""), undefined);
  assertEquals(statSeconds("4242 (deno) S"), undefined);
});

Deno.test({
  name: "cpuNow() reads a process's CPU time, which grows as it works (Linux)",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const me = [{ name: "me", pid: Deno.pid }, { name: "gone", pid: 2 ** 22 + 12345 }];
    const start = await cpuNow(me);
    assertEquals(Object.keys(start), ["me"], "a process that does not exist is left out");
    let x = 0;
    let now = start;
    // Busy until the kernel counted a few more ticks (bounded by the deadline).
    const deadline = Date.now() + 10_000;
    while (now.me! < start.me! + 0.03 && Date.now() < deadline) {
      for (let i = 0; i < 1e6; i++) x += Math.sqrt(i);
      now = await cpuNow(me);
    }
    assert(now.me! >= start.me! + 0.03, `x ${x}`);
  },
});

Deno.test("cpuPerRequest() is µs per request of each process read both times", () => {
  assertEquals(
    cpuPerRequest({ a: 1, b: 2 }, { a: 1.25, b: 2.5, c: 9 }, 500),
    { a: 500, b: 1000 },
  );
  assertEquals(cpuPerRequest({ a: 1 }, { a: 2 }, 0), {});
});
