import { assertEquals, assertRejects } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import { gather, KeyLocks } from "./quorum.ts";

const nodes = ["up1", "up2", "down"].map((id) => ({ id, url: `http://${id}.test` }));

Deno.test("gather() calls a down replica in place of an up one that failed", async () => {
  const called: string[] = [];
  const got = await gather(nodes, 2, 2, (n) => {
    called.push(n.id);
    if (n.id === "up2") return Promise.reject(new RingkvError("node_unavailable", "gone"));
    return Promise.resolve(true);
  }, (v) => v);
  assertEquals([got.ok, called], [true, ["up1", "up2", "down"]]);
});

Deno.test("gather() does not call a down replica in place of an up one that refused", async () => {
  const called: string[] = [];
  const got = await gather(nodes, 2, 2, (n) => {
    called.push(n.id);
    return Promise.resolve(n.id !== "up2");
  }, (v) => v);
  assertEquals([got.ok, got.bad.length, called], [false, 1, ["up1", "up2"]]);
  assertEquals(got.skipped.map((n) => n.id), ["down"]);
});

Deno.test("KeyLocks.run() runs one operation per key at a time, in arrival order", async () => {
  const locks = new KeyLocks();
  const log: string[] = [];
  const held = Promise.withResolvers<void>();
  const op = (name: string, wait?: Promise<void>) => async () => {
    log.push(`${name} start`);
    await wait;
    log.push(`${name} end`);
    return name;
  };
  const runs = [
    locks.run("a", op("a1", held.promise)),
    locks.run("a", op("a2")),
    locks.run("b", op("b1")),
    locks.run("a", op("a3")),
  ];
  // Poll the event loop a bounded number of turns: a2 and a3 must not start while a1 holds "a".
  for (let i = 0; i < 20; i++) await Promise.resolve();
  assertEquals(log, ["a1 start", "b1 start", "b1 end"]);
  held.resolve();
  assertEquals(await Promise.all(runs), ["a1", "a2", "b1", "a3"]);
  assertEquals(log.slice(3), ["a1 end", "a2 start", "a2 end", "a3 start", "a3 end"]);
});

Deno.test("KeyLocks.run() releases a key whose operation failed", async () => {
  const locks = new KeyLocks();
  const failed = locks.run("a", () => Promise.reject(new RingkvError("unavailable", "no")));
  const next = locks.run("a", () => Promise.resolve("next"));
  await assertRejects(() => failed, RingkvError, "no");
  assertEquals(await next, "next");
  assertEquals(await locks.run("a", () => Promise.resolve("again")), "again");
});

Deno.test("KeyLocks.run() with a wait limit gives up on a key held too long, never runs what gave up, and keeps the order of the rest", async () => {
  const locks = new KeyLocks(50, (key, ms) => new RingkvError("unavailable", `${key} ${ms}`));
  const log: string[] = [];
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  const held = Promise.withResolvers<void>();
  const op = (name: string, wait?: Promise<unknown>) => async () => {
    log.push(`${name} start`);
    await wait;
    log.push(`${name} end`);
    return name;
  };
  const first = locks.run("a", op("a1", held.promise));
  const second = locks.run("a", op("a2"));
  const err = await assertRejects(() => second, RingkvError, "a 50");
  assertEquals(err.status, 503);
  const third = locks.run("a", op("a3"));
  held.resolve();
  assertEquals([await first, await third], ["a1", "a3"]);
  assertEquals(log, ["a1 start", "a1 end", "a3 start", "a3 end"], "a2 ran after it gave up");
  // The limit bounds the wait, not the operation: one that waited less runs to its end.
  const c1 = locks.run("c", op("c1", sleep(10)));
  const c2 = locks.run("c", op("c2", sleep(120)));
  assertEquals([await c1, await c2], ["c1", "c2"]);
});
