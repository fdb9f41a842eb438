import { assert, assertEquals } from "@std/assert";
import { ChangeLog } from "./change_log.ts";
import type { Stored } from "./packed.ts";

function stored(version: string, data = "v"): Stored {
  return { kind: "text", data, hash: 1, contentType: "text/plain", version };
}

Deno.test("ChangeLog publishes staged changes in order once their WAL record is durable", () => {
  const log = new ChangeLog("b");
  log.stage(1, [{ key: "a", stored: stored("v1"), prev: null }]);
  log.stage(2, [{ key: "b", stored: stored("v2"), prev: null }]);
  assertEquals(log.read(0, 10, ""), []);
  log.durable(1);
  assertEquals((log.read(0, 10, "") as { key: string }[]).map((c) => c.key), ["a"]);
  log.durable(2);
  const page = log.read(0, 10, "") as { key: string; seq: number }[];
  assertEquals(page.map((c) => [c.seq, c.key]), [[1, "a"], [2, "b"]]);
  assertEquals((log.read(1, 10, "b") as { key: string }[]).map((c) => c.key), ["b"]);
  assertEquals(log.read(0, 10, "z"), []);
});

Deno.test("ChangeLog drops its oldest changes past its bound and then says gone", () => {
  const log = new ChangeLog("b", { maxEntries: 2, maxBytes: 1 << 20 });
  for (let i = 1; i <= 3; i++) {
    log.stage(i, [{ key: `k${i}`, stored: stored(`v${i}`), prev: null }]);
    log.durable(i);
  }
  assertEquals([log.first, log.last], [2, 3]);
  assertEquals(log.read(0, 10, ""), "gone");
  assertEquals((log.read(1, 10, "") as unknown[]).length, 2);
  assertEquals(log.versionsAt(["k1"], 0, () => undefined), "gone");
});

Deno.test("ChangeLog.versionsAt() answers the version before the first later change, staged ones included", () => {
  const log = new ChangeLog("b");
  log.stage(1, [{ key: "a", stored: stored("v1"), prev: null }]);
  log.durable(1);
  log.stage(2, [{ key: "a", stored: stored("v2"), prev: "v1" }]);
  log.durable(2);
  log.stage(3, [{ key: "b", stored: stored("w2"), prev: "w1" }]);
  const current = (k: string) => ({ a: "v2", b: "w2", c: "x" } as Record<string, string>)[k];
  assertEquals(log.versionsAt(["a", "b", "c", "d"], 0, current), {
    a: null,
    b: "w1",
    c: "x",
    d: null,
  });
  assertEquals(log.versionsAt(["a"], 1, current), { a: "v1" });
  assertEquals(log.versionsAt(["a"], 2, current), { a: "v2" });
});

Deno.test("ChangeLog.wait() resolves on the next durable change or after its time", async () => {
  const log = new ChangeLog("b");
  const t0 = performance.now();
  await log.wait(0, 20);
  assert(performance.now() - t0 >= 15);
  const waiting = log.wait(0, 10_000);
  log.stage(1, [{ key: "a", stored: stored("v1"), prev: null }]);
  log.durable(1);
  await waiting;
  assertEquals(log.last, 1);
});

Deno.test("ChangeLog.close() ends the waits under way and every later one at once (a node's shutdown is not held by long polls)", async () => {
  const log = new ChangeLog("b");
  /** Whether `p` settles within 5 s (a wait not ended holds 60 s). */
  const settles = async (p: Promise<void>) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<false>((r) => timer = setTimeout(() => r(false), 5_000));
    const done = await Promise.race([p.then(() => true), late]);
    clearTimeout(timer);
    return done;
  };
  const waiting = log.wait(0, 60_000);
  log.close();
  assert(await settles(waiting), "the wait under way did not end");
  assert(await settles(log.wait(0, 60_000)), "a wait after close() did not end at once");
});
