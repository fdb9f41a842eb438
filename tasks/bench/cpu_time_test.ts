import { assert, assertEquals } from "@std/assert";
import { cpuNow, cpuPerRequest, cpuSnapshot, cpuUse, settle, statSeconds } from "./cpu_time.ts";

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

Deno.test("cpuUse() is µs per request and cores busy, all threads and the main one, with the host's", () => {
  const before = {
    at: 1000,
    total: { a: 1, b: 2 },
    main: { a: 0.25 },
    host: { busy: 10, all: 20 },
  };
  const after = {
    at: 3000,
    total: { a: 2.5, b: 2.25 },
    main: { a: 1.25 },
    host: { busy: 13, all: 24 },
  };
  const use = cpuUse(before, after, 1000);
  assertEquals(use.perRequest, { a: 1500, b: 250 });
  assertEquals(use.cores, { a: 0.75, b: 0.125 });
  assertEquals(use.mainCores, { a: 0.5 });
  assertEquals(use.host, { busy: 1.5, cores: 2 });
  assertEquals(cpuUse({ ...before, host: undefined }, after, 1000).host, undefined);
});

Deno.test({
  name: "cpuSnapshot() reads a process's main thread apart from its other threads (Linux)",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const me = [{ name: "me", pid: Deno.pid }];
    const start = await cpuSnapshot(me);
    // A worker thread burns CPU: the process's total grows, its main thread's far less. It
    // spins until it has used 0.2 s of CPU, however long a loaded host makes that take.
    const worker = new Worker(
      "data:application/javascript," +
        encodeURIComponent("let x = 0; for (;;) x += Math.sqrt(x + 1);"),
      { type: "module" },
    );
    let end = await cpuSnapshot(me);
    try {
      for (let i = 0; i < 600 && end.total.me! - start.total.me! < 0.2; i++) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        end = await cpuSnapshot(me);
      }
    } finally {
      worker.terminate();
    }
    const total = end.total.me! - start.total.me!;
    const main = end.main.me! - start.main.me!;
    assert(total >= 0.2, `the process used ${total} s`);
    assert(main < total / 2, `main thread ${main} s of ${total} s`);
    assert(end.host !== undefined && end.host.all > start.host!.all, "the host's CPU is read");
  },
});

/** A reader of CPU seconds that returns each reading of `script` in turn, then the last. */
function scripted(script: Record<string, number>[]) {
  let i = 0;
  return () => Promise.resolve(script[Math.min(i++, script.length - 1)]!);
}

// settle()'s decisions are tested on scripted readings: a real burner's share of a core is
// whatever a loaded host gives it (CI saw a 1.5 s burn settle in 720 ms).
Deno.test("settle() waits while a process is busy and resolves once it is quiet", async () => {
  assertEquals(await settle([]), true, "nothing to read: settled at once");
  const procs = [{ name: "p", pid: 1 }];
  // 10 ms windows; a window is quiet under 0.03 of a core, 0.3 ms of CPU in 10 ms.
  const o = { windowMs: 10, maxMs: 60_000 };
  // Busy over two windows (5 ms of CPU each), then quiet: settled at the fourth reading.
  const busyThenQuiet = scripted([{ p: 0 }, { p: 0.005 }, { p: 0.01 }, { p: 0.01 }]);
  let reads = 0;
  const counted = () => (reads++, busyThenQuiet());
  assertEquals(await settle(procs, { ...o, read: counted }), true);
  assertEquals(reads, 4, "the first reading, two busy windows, one quiet one");
  // Busy in every window: not settled by the deadline.
  let cpu = 0;
  const alwaysBusy = () => Promise.resolve({ p: cpu += 0.005 });
  assertEquals(await settle(procs, { ...o, maxMs: 200, read: alwaysBusy }), false);
  // A process gone (no reading) is quiet.
  assertEquals(await settle(procs, { ...o, read: scripted([{ p: 0 }, {}]) }), true);
});

Deno.test("settle() with quietWindows needs that many quiet windows in a row", async () => {
  const procs = [{ name: "p", pid: 1 }];
  const o = { windowMs: 10, maxMs: 60_000, quietWindows: 3 };
  // Quiet, quiet, busy, then quiet: the busy window starts the count again.
  const read = scripted([{ p: 0 }, { p: 0 }, { p: 0 }, { p: 0.005 }, { p: 0.005 }, { p: 0.005 }]);
  let reads = 0;
  const counted = () => (reads++, read());
  assertEquals(await settle(procs, { ...o, read: counted }), true);
  assertEquals(reads, 7, "the first reading, two quiet windows, one busy, three quiet");
});

Deno.test({
  name: "settle() reads a real process's CPU: a sleeping one settles (Linux)",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["eval", "await new Promise((r) => setTimeout(r, 60_000));"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      // Deno's start-up is busy, then it sleeps, however long a loaded host makes start-up take.
      assertEquals(await settle([{ name: "child", pid: child.pid }], { maxMs: 50_000 }), true);
    } finally {
      child.kill();
      await child.status;
    }
  },
});
