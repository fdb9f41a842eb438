import { assert, assertEquals, assertRejects } from "@std/assert";
import { CallDeadlines } from "./call_deadlines.ts";
import { NodeClient, sendToNode } from "./node_client.ts";
import { RingkvError } from "../../shared/errors.ts";
import type { NodeFetch } from "./node_client.ts";

/** A node that takes calls and never answers: each ends only when its signal aborts. */
const stalled: NodeFetch = (_url, { signal }) =>
  new Promise((_, reject) => signal!.addEventListener("abort", () => reject(signal!.reason)));

Deno.test("CallDeadlines: calls within one slot share a signal; a call after it gets a new one", () => {
  let now = 0;
  const deadlines = new CallDeadlines(50, () => now); // slots of 5 ms
  const a = deadlines.enter();
  now = 4.9;
  const b = deadlines.enter();
  now = 5;
  const c = deadlines.enter();
  assertEquals(a, b);
  assert(a.signal !== c.signal);
  for (const slot of [a, b, c]) deadlines.leave(slot);
  // The last call out cleared each slot's timer (the test's timer sanitizer checks it).
  assert(!a.signal.aborted && !c.signal.aborted);
});

Deno.test("CallDeadlines: a call that joins at a slot's very end still gets its whole timeout, in whole ms", () => {
  for (const timeoutMs of [15, 995, 2000, 7]) {
    let now = 1000.25;
    const deadlines = new CallDeadlines(timeoutMs, () => now);
    const first = deadlines.enter();
    const opened = now;
    now = first.ends - 0.001; // the latest start that still joins this slot
    const last = deadlines.enter();
    assertEquals(last, first);
    assert(Number.isInteger(first.firesAfterMs), `${timeoutMs}: ${first.firesAfterMs}`);
    assert(opened + first.firesAfterMs >= now + timeoutMs, `${timeoutMs}: ends too early`);
    deadlines.leave(first);
    deadlines.leave(last);
  }
});

Deno.test("CallDeadlines: once its last call is out, a slot's timer never fires", async () => {
  const deadlines = new CallDeadlines(20);
  const left = deadlines.enter();
  deadlines.leave(left);
  // A later slot of the same timeout: its timer fires after the first one's would have.
  const later = new CallDeadlines(20).enter();
  await new Promise((resolve) => later.signal.addEventListener("abort", resolve));
  assert(!left.signal.aborted);
});

Deno.test("CallDeadlines aborts a call in flight with a TimeoutError, never before its timeout", async () => {
  const deadlines = new CallDeadlines(60);
  const started = performance.now();
  const slot = deadlines.enter();
  try {
    const reason = await new Promise<unknown>((resolve) =>
      slot.signal.addEventListener("abort", () => resolve(slot.signal.reason))
    );
    // Timers never fire early; a loaded machine only makes this later.
    assert(performance.now() - started >= 59, `aborted after ${performance.now() - started} ms`);
    assert(reason instanceof DOMException && reason.name === "TimeoutError");
  } finally {
    deadlines.leave(slot);
  }
});

Deno.test("CallDeadlines never hands an aborted slot to a later call", async () => {
  const now = 0; // the clock stands still: only the abort can end the slot
  const deadlines = new CallDeadlines(20, () => now);
  const first = deadlines.enter();
  await new Promise((resolve) => first.signal.addEventListener("abort", resolve));
  const next = deadlines.enter();
  assert(!next.signal.aborted);
  deadlines.leave(first);
  deadlines.leave(next);
});

Deno.test("sendToNode() with shared deadlines ends a stalled call by its timeout", async () => {
  const deadlines = new CallDeadlines(50);
  const call = {
    method: "POST",
    url: "http://n1.test/internal/accept",
    headers: {},
    timeoutMs: 50,
  };
  const started = performance.now();
  const err = await assertRejects(() => sendToNode({ fetch: stalled }, { ...call, deadlines }));
  assert(err instanceof DOMException && err.name === "TimeoutError");
  assert(performance.now() - started >= 49);
});

Deno.test("sendToNode(): a call whose timeout is not its deadlines' gets a timer of its own", async () => {
  const deadlines = new CallDeadlines(60_000); // a slot's timer would hold the test for a minute
  const call = { method: "GET", url: "http://n1.test/health", headers: {}, timeoutMs: 30 };
  const started = performance.now();
  const err = await assertRejects(() => sendToNode({ fetch: stalled }, { ...call, deadlines }));
  assert(err instanceof DOMException && err.name === "TimeoutError");
  const took = performance.now() - started;
  assert(took >= 29 && took < 20_000, `took ${took} ms`); // its 30 ms, not the deadlines' minute
});

Deno.test("NodeClient.batch() to a node that never answers is node_unavailable after its timeout", async () => {
  const client = new NodeClient({ fetch: stalled, timeoutMs: 50 });
  const node = { id: "n1", url: "http://n1.test" };
  // Several calls in one slot, all stalled: each ends, and the slot's timer with them.
  const calls = [1, 2, 3].map((i) => client.batch(node, 1, [{ op: "get", key: `k${i}` }]));
  for (const call of calls) {
    const err = await assertRejects(() => call, RingkvError, "no answer before the timeout");
    assertEquals(err.code, "node_unavailable");
  }
});
