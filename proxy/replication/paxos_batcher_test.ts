import { assert, assertEquals, assertRejects } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import type { Version } from "../../shared/version.ts";
import type { WireEntry } from "../../shared/wire.ts";
import type { NodeRef } from "../nodes/node_client.ts";
import { PaxosBatcher, type PaxosCalls } from "./paxos_batcher.ts";
import type { WireVote } from "../nodes/paxos_client.ts";

const N1: NodeRef = { id: "n1", url: "http://127.0.0.1:1" };
const N2: NodeRef = { id: "n2", url: "http://127.0.0.1:2" };

/** A client that records each call and answers when told to. */
function fakeClient() {
  const calls: { kind: string; node: string; keys: string[]; done: () => void }[] = [];
  const pending = (kind: string, node: NodeRef, keys: string[]) =>
    new Promise<void>((done) => calls.push({ kind, node: node.id, keys, done }));
  const client: PaxosCalls = {
    async read(node, _epoch, keys) {
      await pending("read", node, keys);
      if (keys.includes("boom")) throw new Error("node failed");
      return keys.map((k) => ({ k, v: `value of ${k}`, ver: "v" as Version, h: 0 }));
    },
    async prepare(node, _epoch, ops) {
      await pending("prepare", node, ops.map((o) => o.key));
      return ops.map(() => ({ ok: true, entry: null }));
    },
    async accept(node, _epoch, entries: WireEntry[]): Promise<WireVote[]> {
      await pending("accept", node, entries.map((e) => e.k));
      return entries.map(() => ({ ok: true }));
    },
  };
  return { client, calls };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

Deno.test("PaxosBatcher sends the first call at once and the calls made meanwhile as one batch", async () => {
  const { client, calls } = fakeClient();
  const batcher = new PaxosBatcher(client);
  const first = batcher.read(N1, 1, ["a"]);
  await tick();
  assertEquals(calls.map((c) => c.keys), [["a"]]);
  const more = [batcher.read(N1, 1, ["b"]), batcher.read(N1, 1, ["c", "d"])];
  const other = batcher.read(N2, 1, ["e"]); // another node has its own lane
  await tick();
  assertEquals(calls.map((c) => [c.node, c.keys]), [["n1", ["a"]], ["n2", ["e"]]]);
  calls[0]!.done();
  await tick();
  assertEquals(calls.map((c) => [c.node, c.keys]).at(-1), ["n1", ["b", "c", "d"]]);
  for (const c of calls) c.done();
  assertEquals((await first).map((e) => e?.k), ["a"]);
  assertEquals((await more[0]!).map((e) => e?.v), ["value of b"]);
  assertEquals((await more[1]!).map((e) => e?.k), ["c", "d"]);
  assertEquals((await other).map((e) => e?.k), ["e"]);
});

Deno.test("PaxosBatcher never puts a key twice in a batch and keeps each key's calls in order", async () => {
  const { client, calls } = fakeClient();
  const batcher = new PaxosBatcher(client);
  const ballot = "b" as Version;
  const first = batcher.prepare(N1, 1, [{ key: "x", ballot }]);
  await tick();
  const waiting = [
    batcher.prepare(N1, 1, [{ key: "a", ballot }]),
    batcher.prepare(N1, 1, [{ key: "a", ballot }]),
    batcher.prepare(N1, 1, [{ key: "b", ballot }]),
  ];
  calls[0]!.done();
  await tick();
  assertEquals(calls[1]!.keys, ["a", "b"]);
  calls[1]!.done();
  await tick();
  assertEquals(calls[2]!.keys, ["a"]);
  calls[2]!.done();
  await Promise.all([first, ...waiting]);
  assertEquals(calls.length, 3);
});

Deno.test("PaxosBatcher fails every call of a batch whose call failed, and goes on after it", async () => {
  const { client, calls } = fakeClient();
  const batcher = new PaxosBatcher(client);
  const first = batcher.read(N1, 1, ["a"]);
  await tick();
  const failing = [batcher.read(N1, 1, ["boom"]), batcher.read(N1, 1, ["b"])];
  calls[0]!.done();
  await first;
  await tick();
  calls[1]!.done();
  for (const call of failing) await assertRejects(() => call, Error, "node failed");
  const after = batcher.read(N1, 1, ["c"]);
  await tick();
  calls[2]!.done();
  assertEquals((await after).map((e) => e?.k), ["c"]);
});

Deno.test("PaxosBatcher keeps a batched call under a quarter of the batch byte limit (far from the node's 413 and the call timeout)", async () => {
  const { client, calls } = fakeClient();
  const batcher = new PaxosBatcher(client, 4 * 1200);
  const entry = (k: string): WireEntry => ({ k, v: "x".repeat(400), ver: "v" as Version, h: 0 });
  const first = batcher.accept(N1, 1, [entry("a")]);
  await tick();
  const waiting = ["b", "c", "d"].map((k) => batcher.accept(N1, 1, [entry(k)]));
  calls[0]!.done();
  await tick();
  assertEquals(calls[1]!.keys, ["b", "c"]); // about 1,130 estimated bytes; "d" would pass 1,200
  calls[1]!.done();
  await tick();
  assertEquals(calls[2]!.keys, ["d"]);
  calls[2]!.done();
  await Promise.all([first, ...waiting]);
});

/** A client whose every call fails after `ms`, as the real one's do at a paused node. */
function stuckClient(ms: number) {
  const sent: string[][] = [];
  const fail = (node: NodeRef, keys: string[]) => {
    sent.push(keys);
    return new Promise<never>((_, reject) =>
      setTimeout(
        () =>
          reject(
            new RingkvError("node_unavailable", `Cannot reach node ${node.id}: timeout`, {
              node: node.id,
            }),
          ),
        ms,
      )
    );
  };
  const client: PaxosCalls = {
    read: (node, _epoch, keys) => fail(node, keys),
    prepare: (node, _epoch, ops) => fail(node, ops.map((o) => o.key)),
    accept: (node, _epoch, entries) => fail(node, entries.map((e) => e.k)),
  };
  return { client, sent };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** How long `call` took to be rejected, from now. */
async function rejectedAfter(call: Promise<unknown>): Promise<number> {
  const start = performance.now();
  const err = await assertRejects(() => call, RingkvError);
  assertEquals([err.code, err.extra.node], ["node_unavailable", "n1"]);
  return performance.now() - start;
}

Deno.test("PaxosBatcher with a timeout fails calls queued behind a stuck one at their own deadlines", async () => {
  // Long enough that a loaded host's late timers (hundreds of ms) stay far from the old
  // behaviour's ~2 timeouts (a 400 ms one failed once at load 16).
  const timeoutMs = 1500;
  const { client, sent } = stuckClient(timeoutMs);
  const batcher = new PaxosBatcher(client, undefined, timeoutMs);
  const ballot = "b" as Version;
  const first = rejectedAfter(batcher.prepare(N1, 1, [{ key: "x", ballot }]));
  await sleep(300); // "y" goes once "x"'s call fails, 300 ms before its own deadline
  const queued = rejectedAfter(batcher.prepare(N1, 1, [{ key: "y", ballot }]));
  await sleep(10);
  // Same key: held back from the batch "y" goes in, it waits for that one's call.
  const held = rejectedAfter(batcher.prepare(N1, 1, [{ key: "y", ballot }]));
  await first;
  for (const [what, took] of [["queued", await queued], ["held", await held]] as const) {
    // Before: the rest of the stuck call's timeout, then one or two whole ones (~2.7, ~4.2 s).
    assert(took >= timeoutMs - 5 && took < timeoutMs * 1.5, `${what}: ${took} ms`);
  }
  assertEquals(sent, [["x"], ["y"]], "the held call's deadline passed before it could go");
  await sleep(timeoutMs); // the second call's own end, before the timer sanitizer looks
});

Deno.test("PaxosBatcher reads the keys a node's answer left out (its value budget) again, first", async () => {
  const calls: { keys: string[]; budget: number | undefined }[] = [];
  const client: PaxosCalls = {
    read(_node, _epoch, keys, valueBudget) {
      calls.push({ keys, budget: valueBudget });
      // This node's answers hold two entries at most.
      return Promise.resolve(keys.slice(0, 2).map((k) => ({ k, v: k, ver: "v" as Version, h: 0 })));
    },
    prepare: () => Promise.reject(new Error("not used")),
    accept: () => Promise.reject(new Error("not used")),
  };
  const batcher = new PaxosBatcher(client, 4000);
  const first = batcher.read(N1, 1, ["a"]);
  const waiting = [batcher.read(N1, 1, ["b", "c", "d"]), batcher.read(N1, 1, ["e"])];
  assertEquals((await first).map((e) => e?.k), ["a"]);
  assertEquals((await waiting[0]!).map((e) => e?.k), ["b", "c", "d"]);
  assertEquals((await waiting[1]!).map((e) => e?.k), ["e"]);
  assertEquals(calls.map((c) => c.keys.join("")), ["a", "bcde", "de"]);
  assertEquals(calls.map((c) => c.budget), [1000, 1000, 1000], "a quarter of the call limit");
});
