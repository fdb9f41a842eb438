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

Deno.test({
  name: "settle() waits while a process is busy and resolves once it is quiet (Linux)",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    assertEquals(await settle([]), true, "nothing to read: settled at once");
    // A child that burns a core for ~1.5 s, then sleeps: settle() must outlast the burn.
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        "const end = Date.now() + 1500; let x = 0; while (Date.now() < end) x += Math.sqrt(x + 1); " +
        "await new Promise((r) => setTimeout(r, 30_000)); console.log(x);",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const started = Date.now();
      const settled = await settle([{ name: "child", pid: child.pid }], { maxMs: 10_000 });
      assertEquals(settled, true);
      assert(Date.now() - started >= 1000, `settled after ${Date.now() - started} ms`);
      // Still burning: not settled within a window that ends before the burn does.
      const burner = new Deno.Command(Deno.execPath(), {
        args: ["eval", "const end = Date.now() + 5000; let x = 0; while (Date.now() < end) x++;"],
        stdout: "null",
        stderr: "null",
      }).spawn();
      try {
        assertEquals(await settle([{ name: "burner", pid: burner.pid }], { maxMs: 1500 }), false);
      } finally {
        burner.kill();
        await burner.status;
      }
    } finally {
      child.kill();
      await child.status;
    }
  },
});

Deno.test({
  name: "settle() with quietWindows needs that many quiet windows in a row (Linux)",
  ignore: Deno.build.os !== "linux",
  fn: async () => {
    // Idle for 0.7 s, then burning for 2 s: one quiet window passes, three in a row do not.
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "eval",
        "await new Promise((r) => setTimeout(r, 700)); const end = Date.now() + 2000; " +
        "let x = 0; while (Date.now() < end) x++; await new Promise((r) => setTimeout(r, 30_000));",
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      // Deno's start-up is busy too: wait until the child first idles.
      const procs = [{ name: "child", pid: child.pid }];
      assertEquals(await settle(procs, { maxMs: 5000 }), true);
      const started = Date.now();
      assertEquals(await settle(procs, { maxMs: 10_000, quietWindows: 3 }), true);
      assert(Date.now() - started >= 1500, `three windows took ${Date.now() - started} ms`);
    } finally {
      child.kill();
      await child.status;
    }
  },
});
