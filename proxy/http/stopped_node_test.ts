import { assert, assertEquals } from "@std/assert";
import type { ClusterMap } from "../../shared/wire.ts";
import {
  nodeInfos,
  ownerOf,
  stableMap,
  startCluster,
  type TestCluster,
} from "../../tests/doubles/test_cluster.ts";

/** Short, so the tests are quick; the bound below leaves a loaded machine 300 ms. */
const TIMEOUT_MS = 500;
/**
 * Answered by the timeout plus two slots (600 ms) at most, ~550 ms here; a request queued behind
 * a stuck call used to take twice the timeout and two slots (~1100 ms).
 */
const BOUND_MS = TIMEOUT_MS * 1.8;

/** Calls to `id` never answer (a SIGSTOPped node); resolves `started` at the first one. */
function stopNode(c: TestCluster, id: string): { started: Promise<void> } {
  const { promise, resolve } = Promise.withResolvers<void>();
  c.hook = (req, node) => {
    if (node.info.id !== id) return;
    resolve();
    return new Promise((_, reject) => {
      req.signal.addEventListener("abort", () => reject(req.signal.reason));
    });
  };
  return { started: promise };
}

/** The first `count` of `k0, k1, ...` owned by `id`. */
async function keysOn(c: TestCluster, id: string, count: number): Promise<string[]> {
  const topo = c.topology.current();
  const keys: string[] = [];
  for (let i = 0; keys.length < count && i < 10_000; i++) {
    if ((await ownerOf(topo, `k${i}`)) === id) keys.push(`k${i}`);
  }
  return keys;
}

/** `req`'s answer and how long it took. */
async function timed(
  req: Response | Promise<Response>,
): Promise<{ status: number; ms: number; body: string }> {
  const start = performance.now();
  const res = await req;
  const body = await res.text();
  return { status: res.status, ms: performance.now() - start, body };
}

Deno.test("with 1 replica a request queued behind a call to a stopped node answers 503 within about the timeout", async () => {
  const c = await startCluster({ proxy: { timeoutMs: TIMEOUT_MS } });
  try {
    const keys = await keysOn(c, "n2", 8);
    const { started } = stopNode(c, "n2");
    const first = c.proxy.request(`/kv/${keys[0]}`);
    await started; // a call to n2 is in flight; what follows queues behind it
    const p = (path: string, init?: RequestInit) => timed(c.proxy.request(path, init));
    const queued = {
      get: p(`/kv/${keys[1]}`),
      head: p(`/kv/${keys[2]}`, { method: "HEAD" }),
      put: p(`/kv/${keys[3]}`, { method: "PUT", body: "v" }),
      delete: p(`/kv/${keys[4]}`, { method: "DELETE" }),
      batch: p("/kv", {
        method: "POST",
        body: JSON.stringify({ set: { [keys[5]!]: "v" }, delete: [keys[6]] }),
      }),
    };
    assertEquals((await first).status, 503);
    for (const [what, answer] of Object.entries(queued)) {
      const { status, ms, body } = await answer;
      assertEquals(status, what === "batch" ? 207 : 503, `${what}: ${body}`);
      if (what !== "head") assert(body.includes("node_unavailable"), `${what}: ${body}`);
      assert(ms < BOUND_MS, `${what} answered after ${ms.toFixed(0)} ms`);
    }
  } finally {
    await c.close();
  }
});

const replicated = (): ClusterMap => ({ ...stableMap(nodeInfos(3)), replicas: 3 });

Deno.test("with 3 replicas and one node stopped, every request still succeeds", async () => {
  const c = await startCluster({ map: replicated(), proxy: { timeoutMs: TIMEOUT_MS } });
  try {
    const { started } = stopNode(c, "n2");
    assertEquals((await c.proxy.request("/kv/a", { method: "PUT", body: "1" })).status, 201);
    await started;
    const answers = await Promise.all([
      timed(c.proxy.request("/kv/a")),
      timed(c.proxy.request("/kv/a", { method: "HEAD" })),
      timed(c.proxy.request("/kv/b", { method: "PUT", body: "2" })),
      timed(c.proxy.request("/kv/a", { method: "DELETE" })),
      timed(c.proxy.request("/kv", {
        method: "POST",
        body: JSON.stringify({ set: { c: "3" }, delete: ["b"] }),
      })),
      timed(c.proxy.request("/kv?values=true")),
    ]);
    assertEquals(answers.map((a) => a.status), [200, 200, 201, 204, 200, 200]);
    const list = await c.proxy.request("/kv?values=true");
    assertEquals((await list.json()).items.map((i: { key: string }) => i.key), ["c"]);
  } finally {
    await c.close();
  }
});

Deno.test("with 3 replicas, one node down and one stopped, a request queued behind the stopped one answers 503 within about the timeout", async () => {
  const c = await startCluster({ map: replicated(), proxy: { timeoutMs: TIMEOUT_MS } });
  try {
    c.down.add("n1");
    const { started } = stopNode(c, "n2");
    const first = c.proxy.request("/kv/a");
    await started;
    const p = (path: string, init?: RequestInit) => timed(c.proxy.request(path, init));
    const queued = {
      get: p("/kv/b"),
      head: p("/kv/c", { method: "HEAD" }),
      put: p("/kv/d", { method: "PUT", body: "v" }),
      delete: p("/kv/e", { method: "DELETE" }),
      batch: p("/kv", { method: "POST", body: JSON.stringify({ set: { f: "v" }, delete: ["g"] }) }),
      listing: p("/kv?values=true"),
    };
    assertEquals((await first).status, 503);
    for (const [what, answer] of Object.entries(queued)) {
      const { status, ms, body } = await answer;
      assertEquals(status, what === "batch" ? 207 : 503, `${what}: ${body}`);
      assert(ms < BOUND_MS, `${what} answered after ${ms.toFixed(0)} ms`);
    }
  } finally {
    await c.close();
  }
});

Deno.test("with 3 replicas, one node down and one stopped, concurrent requests for one key each answer 503 within about the timeout (the n-th took n timeouts)", async () => {
  const c = await startCluster({ map: replicated(), proxy: { timeoutMs: TIMEOUT_MS } });
  try {
    c.down.add("n1");
    stopNode(c, "n2");
    const answers = await Promise.all(
      Array.from(
        { length: 4 },
        (_, i) =>
          timed(c.proxy.request("/kv/same", i % 2 ? { method: "PUT", body: `v${i}` } : undefined)),
      ),
    );
    for (const [i, { status, ms, body }] of answers.entries()) {
      assertEquals(status, 503, `request ${i}: ${body}`);
      assert(ms < BOUND_MS, `request ${i} answered after ${ms.toFixed(0)} ms`);
    }
  } finally {
    await c.close();
  }
});
