import { assert, assertEquals, assertMatch, assertRejects, assertStrictEquals } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import type { BatchOp, BatchResult } from "../../shared/wire.ts";
import { Dispatcher } from "./dispatcher.ts";
import type { NodeRef } from "../nodes/node_client.ts";

const N1: NodeRef = { id: "n1", url: "http://n1.test" };
const N2: NodeRef = { id: "n2", url: "http://n2.test" };

interface Call {
  node: string;
  epoch: number;
  keys: string[];
  release: (fail?: Error) => void;
}

/** A send that records each call and answers only when the test releases it. */
function gatedSend() {
  const calls: Call[] = [];
  const send = (node: NodeRef, epoch: number, ops: BatchOp[]) => {
    const { promise, resolve, reject } = Promise.withResolvers<BatchResult[]>();
    calls.push({
      node: node.id,
      epoch,
      keys: ops.map((o) => o.key),
      release: (fail) =>
        fail
          ? reject(fail)
          : resolve(ops.map((o) => ({ status: 200, value: `${node.id}:${o.key}` }))),
    });
    return promise;
  };
  return { calls, send };
}

/** Releases calls one by one as they are made, until `count` were released. */
async function releaseInTurn(calls: Call[], count: number): Promise<void> {
  for (let i = 0; i < count; i++) {
    for (let tick = 0; calls[i] === undefined && tick < 100; tick++) {
      await new Promise((r) => setTimeout(r, 0));
    }
    calls[i]!.release();
  }
}

const get = (key: string): BatchOp => ({ op: "get", key });

/** Lets the event loop's current turn end (the dispatcher sends then). */
const endOfTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

Deno.test("Dispatcher.submit() sends a request for an idle node at the end of the turn", async () => {
  const { calls, send } = gatedSend();
  const d = new Dispatcher(send);
  const done = d.submit(N1, 7, [get("a")]);
  assertEquals(calls.length, 0);
  assertEquals(d.stats(), { waiting: 1, inFlight: 0 });
  await endOfTurn();
  assertEquals(calls.map((c) => [c.node, c.epoch, c.keys]), [["n1", 7, ["a"]]]);
  calls[0]!.release();
  assertEquals(await done, [{ status: 200, value: "n1:a" }]);
  assertEquals(d.stats(), { waiting: 0, inFlight: 0 });
});

Deno.test("Dispatcher.submitOne() answers one op like submit()", async () => {
  const { calls, send } = gatedSend();
  const d = new Dispatcher(send);
  const one = d.submitOne(N1, 3, get("a"));
  const many = d.submit(N1, 3, [get("b")]);
  await endOfTurn();
  assertEquals(calls.map((c) => [c.epoch, c.keys]), [[3, ["a", "b"]]]);
  calls[0]!.release();
  assertEquals(await one, { status: 200, value: "n1:a" });
  assertEquals(await many, [{ status: 200, value: "n1:b" }]);
});

Deno.test("Dispatcher batches one turn's requests, and those arriving during a call", async () => {
  const { calls, send } = gatedSend();
  const d = new Dispatcher(send);
  const keys = ["k0", "k1", "k2", "k3", "k4", "k5"];
  const answers = keys.slice(0, 2).map((k) => d.submit(N1, 1, [get(k)]));
  await endOfTurn();
  answers.push(...keys.slice(2).map((k) => d.submit(N1, 1, [get(k)])));
  await endOfTurn();
  assertEquals(calls.length, 1);
  assertEquals(d.stats(), { waiting: 4, inFlight: 1 });
  calls[0]!.release();
  await answers[0];
  await endOfTurn();
  await endOfTurn();
  assertEquals(calls.map((c) => c.keys), [["k0", "k1"], ["k2", "k3", "k4", "k5"]]);
  calls[1]!.release();
  const results = await Promise.all(answers);
  assertEquals(results.map((r) => r[0]!.value), keys.map((k) => `n1:${k}`));
});

Deno.test("Dispatcher keeps one call in flight per node, and nodes do not wait for each other", async () => {
  const { calls, send } = gatedSend();
  const d = new Dispatcher(send);
  d.submit(N1, 1, [get("a")]);
  await endOfTurn();
  d.submit(N1, 1, [get("b")]);
  d.submit(N2, 1, [get("c")]);
  await endOfTurn();
  assertEquals(calls.map((c) => [c.node, c.keys]), [["n1", ["a"]], ["n2", ["c"]]]);
  for (const c of calls) c.release();
  await endOfTurn(); // the answers settle (the dispatcher's next send is queued for...)
  await endOfTurn(); // ...the end of this turn
  assertEquals(calls.map((c) => [c.node, c.keys])[2], ["n1", ["b"]]);
  calls[2]!.release();
});

Deno.test("Dispatcher fails only the requests of a call that fails", async () => {
  const { calls, send } = gatedSend();
  const d = new Dispatcher(send);
  const first = d.submit(N1, 1, [get("a"), get("b")]);
  await endOfTurn();
  const second = d.submit(N1, 1, [get("c")]);
  const down = new RingkvError("node_unavailable", "Cannot reach node n1 at http://n1.test: boom");
  calls[0]!.release(down);
  const err = await assertRejects(() => first);
  assertStrictEquals(err, down);
  await endOfTurn();
  await endOfTurn();
  calls[1]!.release();
  assertEquals(await second, [{ status: 200, value: "n1:c" }]);
});

Deno.test("Dispatcher splits a queue at maxBatchOps and at a change of epoch", async () => {
  const { calls, send } = gatedSend();
  const d = new Dispatcher(send, { maxBatchOps: 2 });
  const all = [
    d.submit(N1, 1, [get("a")]),
    d.submit(N1, 1, [get("b"), get("c"), get("d")]),
    d.submit(N1, 2, [get("e")]),
  ];
  await releaseInTurn(calls, 3);
  await Promise.all(all);
  assertEquals(calls.map((c) => [c.epoch, c.keys]), [
    [1, ["a", "b"]],
    [1, ["c", "d"]],
    [2, ["e"]],
  ]);
});

Deno.test("Dispatcher splits a queue at a quarter of maxBatchBytes (each call far from the timeout)", async () => {
  const { calls, send } = gatedSend();
  const d = new Dispatcher(send, { maxBatchBytes: 4 * 3000 });
  const put = (key: string): BatchOp => ({ op: "put", key, value: "x".repeat(1000) });
  const all = [d.submit(N1, 1, [put("a")]), d.submit(N1, 1, [put("b"), put("c"), put("d")])];
  await releaseInTurn(calls, 2);
  await Promise.all(all);
  assertEquals(calls.map((c) => c.keys), [["a", "b"], ["c", "d"]]);
});

Deno.test("Dispatcher refuses requests with 503 unavailable when a node's queue is full", async () => {
  const { calls, send } = gatedSend();
  const d = new Dispatcher(send, { maxQueue: 2 });
  const sent = d.submit(N1, 1, [get("a")]);
  await endOfTurn();
  const queued = d.submit(N1, 1, [get("b"), get("c")]);
  const err = await assertRejects(() => d.submit(N1, 1, [get("d")]), RingkvError);
  assertEquals([err.code, err.status], ["unavailable", 503]);
  assertEquals(err.message.includes("n1"), true);
  await assertRejects(() => d.submitOne(N1, 1, get("e")), RingkvError);
  calls[0]!.release();
  await sent;
  await endOfTurn();
  await endOfTurn();
  calls[1]!.release();
  assertEquals((await queued).length, 2);
});

Deno.test("Dispatcher with maxInFlight 2 keeps two calls going to one node", async () => {
  const { calls, send } = gatedSend();
  const d = new Dispatcher(send, { maxInFlight: 2, maxBatchOps: 1 });
  d.submit(N1, 1, [get("a")]);
  d.submit(N1, 1, [get("b")]);
  d.submit(N1, 1, [get("c")]);
  await endOfTurn();
  assertEquals(calls.map((c) => c.keys), [["a"], ["b"]]);
  for (const c of calls) c.release();
  await endOfTurn();
  await endOfTurn();
  assertEquals(calls.map((c) => c.keys)[2], ["c"]);
  calls[2]!.release();
});

Deno.test("Dispatcher gives a node whose URL changed a queue of its own", async () => {
  const { calls, send } = gatedSend();
  const d = new Dispatcher(send);
  const moved: NodeRef = { id: "n1", url: "http://n1-new.test" };
  d.submit(N1, 1, [get("a")]);
  d.submit(moved, 1, [get("b")]);
  await endOfTurn();
  assertEquals(calls.map((c) => c.keys), [["a"], ["b"]]);
  for (const c of calls) c.release();
});

Deno.test("Dispatcher keeps one call in flight to a moved node's new URL after the old URL's queue drains", async () => {
  const { calls, send } = gatedSend();
  const urls: string[] = [];
  const d = new Dispatcher((node, epoch, ops) => {
    urls.push(node.url);
    return send(node, epoch, ops);
  });
  const moved: NodeRef = { id: "n1", url: "http://n1-new.test" };
  const old = d.submit(N1, 1, [get("a")]);
  await endOfTurn();
  const first = d.submit(moved, 1, [get("b")]); // a queue of its own: the old one is busy
  await endOfTurn();
  assertEquals(urls, [N1.url, moved.url]);
  calls[0]!.release();
  await old;
  await endOfTurn();
  await endOfTurn(); // the old URL's queue is idle now, and gone
  const second = d.submit(moved, 1, [get("c")]);
  await endOfTurn();
  await endOfTurn();
  // With maxInFlight 1, "c" must wait for the call to the new URL that is still in flight.
  assertEquals(
    urls,
    [N1.url, moved.url],
    "a second call went to the new URL while one was in flight",
  );
  calls[1]!.release();
  await first;
  await endOfTurn();
  await endOfTurn();
  calls[2]?.release();
  assertEquals(await second, [{ status: 200, value: "n1:c" }]);
});

/** A send that answers each call after `ms` (or, with `fail`, rejects then as a timed-out call). */
function sendTaking(ms: number, fail = false) {
  const sent: string[][] = [];
  const send = (node: NodeRef, _epoch: number, ops: BatchOp[]) => {
    sent.push(ops.map((o) => o.key));
    return new Promise<BatchResult[]>((resolve, reject) =>
      setTimeout(
        () =>
          fail
            ? reject(new RingkvError("node_unavailable", `Cannot reach node ${node.id}: timeout`))
            : resolve(ops.map(() => ({ status: 200 }))),
        ms,
      )
    );
  };
  return { sent, send };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

Deno.test("Dispatcher with a timeout fails an op queued behind a stuck call at its own deadline, not a timeout after that call", async () => {
  // Margins that a loaded host's late timers (hundreds of ms) do not eat: "b" is sent once the
  // first call fails, 300 ms before its own deadline (400 and 40 ms failed under parallel load).
  const timeoutMs = 1500;
  // Every call runs into the node client's timeout, as to a paused node.
  const { sent, send } = sendTaking(timeoutMs, true);
  const d = new Dispatcher(send, { timeoutMs });
  const first = assertRejects(() => d.submitOne(N1, 1, get("a")), RingkvError);
  await sleep(300);
  const start = performance.now();
  const err = await assertRejects(() => d.submitOne(N1, 1, get("b")), RingkvError);
  const waited = performance.now() - start;
  assertEquals(err.code, "node_unavailable");
  assertEquals(err.extra.node, "n1");
  // Before: the rest of the first call's timeout, then a whole one of its own (~2.7 s).
  assert(waited >= timeoutMs - 5 && waited < timeoutMs * 1.5, `answered after ${waited} ms`);
  await first;
  assertEquals(sent, [["a"], ["b"]]);
  await sleep(timeoutMs); // the second call's own end, before the timer sanitizer looks
});

Deno.test("Dispatcher with a timeout never sends an op whose deadline passed while it waited", async () => {
  const { sent, send } = sendTaking(300);
  const d = new Dispatcher(send, { timeoutMs: 100 });
  const first = d.submitOne(N1, 1, get("a"));
  await endOfTurn();
  const err = await assertRejects(() => d.submitOne(N1, 1, get("b")), RingkvError);
  assertMatch(err.message, /^Cannot reach node n1 at http:\/\/n1\.test: no answer before/);
  assertEquals(await first, { status: 200 }, "the call itself is the node client's to time out");
  assertEquals(sent, [["a"]]);
});

Deno.test("Dispatcher with a timeout still answers ops queued behind a slow node that answers in time", async () => {
  const timeoutMs = 400;
  const { sent, send } = sendTaking(120);
  const d = new Dispatcher(send, { timeoutMs });
  const answers: Promise<BatchResult>[] = [];
  for (let i = 0; i < 6; i++) {
    answers.push(d.submitOne(N1, 1, get(`k${i}`)));
    await sleep(50); // each waits behind a call, most longer than a slot
  }
  assertEquals(await Promise.all(answers), answers.map(() => ({ status: 200 })));
  assert(sent.length >= 3, `${sent.length} calls`);
});

Deno.test("Dispatcher sends the reads a node left unread (over its value budget) first in its next call", async () => {
  const calls: { keys: string[]; budget: number }[] = [];
  const d = new Dispatcher((_node, _epoch, ops, valueBudget) => {
    calls.push({ keys: ops.map((o) => o.key), budget: valueBudget });
    // This node answers two reads per call and leaves the rest unread.
    let reads = 0;
    return Promise.resolve(ops.map((o) => {
      if (o.op === "get" && ++reads > 2) return null;
      return { status: 200, value: o.key };
    }));
  }, { valueBudget: 1234 });
  const first = d.submit(N1, 1, ["a", "b", "c", "d", "e"].map(get));
  const put = d.submit(N1, 1, [{ op: "put", key: "w", value: "" }]);
  const later = d.submit(N1, 1, [get("f")]);
  assertEquals((await first).map((r) => r.value), ["a", "b", "c", "d", "e"]);
  assertEquals((await put).map((r) => r.status), [200]);
  assertEquals((await later).map((r) => r.value), ["f"]);
  assertEquals(calls.map((c) => c.keys.join("")), ["abcdewf", "cdef", "ef"]);
  assertEquals(calls.map((c) => c.budget), [1234, 1234, 1234]);
});

Deno.test("Dispatcher with a timeout waits for a busy node that keeps answering, past the timeout (a bulk load on a loaded host got 503s)", async () => {
  const { sent, send } = sendTaking(120);
  const d = new Dispatcher(send, { timeoutMs: 200, maxBatchOps: 1 });
  const answers = Array.from({ length: 5 }, (_, i) => d.submitOne(N1, 1, get(`k${i}`)));
  // One op per call, each call 120 ms: the last waits ~480 ms, but the node never stops answering.
  assertEquals(await Promise.all(answers), answers.map(() => ({ status: 200 })));
  assertEquals(sent.length, 5);
});
