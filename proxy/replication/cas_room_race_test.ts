/**
 * Two compare-and-sets on one version through two proxies over real acceptors (a third proxy
 * writes the version and reads the outcome), while one node's accept of a large value waits in
 * the engine's room check (statfs) and the other proxy's prepare reaches that node meanwhile.
 * Before the acceptor decided an accept where the engine applies it (node/engine/
 * durable_engine.ts ingest's admit check, commit 1a38987), both answered 200.
 */
import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { until } from "../../tests/helpers/poll.ts";
import { startRealAcceptorCluster } from "../../tests/doubles/real_acceptor_cluster.ts";
import type { Hono } from "hono";

interface Answer {
  status: number;
  etag: string | null;
  body: string;
}

async function send(app: Hono, method: string, body?: string, ifMatch?: string): Promise<Answer> {
  const headers: Record<string, string> = ifMatch === undefined ? {} : { "if-match": ifMatch };
  const res = await app.request("/kv/k", { method, body, headers });
  return { status: res.status, etag: res.headers.get("etag"), body: await res.text() };
}

/** `answer`, with whether it has settled yet (for {@link until}, which bounds the wait). */
function track<T>(answer: Promise<T>): { answer: Promise<T>; settled: boolean } {
  const tracked = { answer, settled: false };
  const settle = () => void (tracked.settled = true);
  answer.then(settle, settle);
  return tracked;
}

Deno.test("two If-Match PUTs on one version are never both 200 while a node's accept of a large value waits for statfs", async () => {
  const c = await startRealAcceptorCluster({
    proxies: ["p0a1b2c3d4e5f", "p1a1b2c3d4e5f", "p2a1b2c3d4e5f"],
  });
  const [p0, p1, p2] = [...c.proxies.values()].map((p) => p.app) as [Hono, Hono, Hono];
  const pending: Promise<unknown>[] = [];
  try {
    const first = await send(p0, "PUT", "v0");
    assertEquals(first.status, 201);
    const v0 = first.etag!;
    const versions = () =>
      Promise.all(
        [...c.nodes.values()].map(async (n) => `"${(await n.engine.get("k"))?.version}"`),
      );
    await until("v0 is on every node", async () => (await versions()).every((v) => v === v0));

    // p1: v0 -> X (70 kB). n1 takes its accept into statfs; n2's and n3's are held on the wire.
    const statfs = c.holdStatfs("n1");
    const toN2 = c.hold("p1a1b2c3d4e5f", "n2", "/internal/accept");
    const toN3 = c.hold("p1a1b2c3d4e5f", "n3", "/internal/accept");
    const X = "X".repeat(70_000);
    const casX = track(send(p1, "PUT", X, v0));
    pending.push(casX.answer);
    await until("p1's accepts arrive", () => statfs.arrived + toN2.arrived + toN3.arrived === 3);
    toN3.release();
    await until(
      "n3 stores X",
      async () => (await c.nodes.get("n3")!.engine.get("k"))?.value?.length === 70_000,
    );

    // p2: v0 -> Y with n3's prepare held, so its quorum is n1 (X still in statfs) and n2.
    const prepareN3 = c.hold("p2a1b2c3d4e5f", "n3", "/internal/prepare");
    const casY = track(send(p2, "PUT", "Y", v0));
    pending.push(casY.answer);
    await until("p2's PUT answers (its quorum n1 and n2)", () => casY.settled);
    assert(!casX.settled, "p1's PUT answered while n1 and n2 still had its accept");

    statfs.release();
    toN2.release();
    prepareN3.release();
    await until("p1's PUT answers", () => casX.settled);
    const [x, y] = [await casX.answer, await casY.answer];
    const read = track(send(p0, "GET"));
    pending.push(read.answer);
    await until("the final read answers", () => read.settled);
    const final = await read.answer;
    const outcome = JSON.stringify({ x: x.status, y: y.status, final: final.body.slice(0, 9) });
    assertNotEquals([x.status, y.status], [200, 200], `both compare-and-sets took v0: ${outcome}`);
    for (const [put, value] of [[x, X], [y, "Y"]] as const) {
      assert([200, 412, 503].includes(put.status), outcome);
      if (put.status === 200) {
        assertEquals(final.etag, put.etag, outcome);
        assertEquals(final.body, value, outcome);
      }
    }
    const possible = ["v0", ...(x.status === 503 ? [X] : []), ...(y.status === 503 ? ["Y"] : [])];
    if (x.status !== 200 && y.status !== 200) assert(possible.includes(final.body), outcome);
  } finally {
    await c.close();
    await Promise.allSettled(pending);
  }
});
