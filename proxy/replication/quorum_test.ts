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
