import { assertEquals, assertRejects } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import { FakeAcceptors, proposerOver } from "../../tests/doubles/fake_acceptors.ts";
import { gather, KeyLocks, quorumOf } from "./quorum.ts";

const nodes = ["up1", "up2", "down"].map((id) => ({ id, url: `http://${id}.test` }));

Deno.test("quorumOf() is a strict majority: 1, 2, 2, 3, 3 of 1 to 5 replicas", () => {
  assertEquals([1, 2, 3, 4, 5].map(quorumOf), [1, 2, 2, 3, 3]);
});

Deno.test("a PUT with 2 owners and one of them down is a 503: one of 2 is no majority", async () => {
  const nodes = new FakeAcceptors(["n1", "n2"]);
  const rep = proposerOver(nodes);
  for (const kind of ["read", "prepare", "accept"] as const) nodes.fault("n2", kind, "down");
  const owners = ["n1", "n2"].map((id) => ({ id, url: `http://${id}.test` }));
  const replicas = { owners, joining: [], key: "k", point: 7, epoch: 1 };
  const op = { op: "put" as const, key: "k", value: btoa("v"), contentType: "text/plain" };
  const err = await assertRejects(() => rep.run(replicas, op), RingkvError);
  assertEquals(err.status, 503);
  assertEquals(nodes.slot("n1", "k").entry, undefined, "accepted on one of 2 replicas");
});

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

Deno.test("KeyLocks.run() keeps arrival order for a run that comes while the second one holds the key", async () => {
  // Found by a mutation audit: the first run's release must not drop the key's tail when
  // runs are queued behind it, or a third run arriving meanwhile starts at once.
  const locks = new KeyLocks();
  const log: string[] = [];
  const first = Promise.withResolvers<void>();
  const second = Promise.withResolvers<void>();
  const op = (name: string, wait?: Promise<void>) => async () => {
    log.push(`${name} start`);
    await wait;
    log.push(`${name} end`);
    return name;
  };
  const r1 = locks.run("a", op("a1", first.promise));
  const r2 = locks.run("a", op("a2", second.promise));
  first.resolve();
  assertEquals(await r1, "a1");
  for (let i = 0; i < 20 && !log.includes("a2 start"); i++) await Promise.resolve();
  assertEquals(log, ["a1 start", "a1 end", "a2 start"]);
  const r3 = locks.run("a", op("a3"));
  await new Promise((r) => setTimeout(r, 0)); // every microtask of this turn has run
  assertEquals(log, ["a1 start", "a1 end", "a2 start"], "a3 started while a2 held the key");
  second.resolve();
  assertEquals([await r2, await r3], ["a2", "a3"]);
  assertEquals(log.slice(3), ["a2 end", "a3 start", "a3 end"]);
});
