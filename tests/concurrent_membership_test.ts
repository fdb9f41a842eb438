/**
 * Membership changes sent at the same moment to two proxies (found by QA: both answered 202,
 * the proxies ended on two maps of one epoch, and 1,985 of 10,000 keys answered 404 through one
 * of them). The nodes choose each epoch's map once: one change is made, the other is 409.
 */
import { assert, assertEquals } from "@std/assert";
import {
  admin,
  clusterView,
  loadKeys,
  ProcessCluster,
  waitStable,
} from "./helpers/process_cluster.ts";

const KEYS = 800;

/** Every key's GET through `proxy`: the keys that did not answer 200 with their value. */
async function unreadable(proxy: string): Promise<string[]> {
  const bad: string[] = [];
  for (let start = 0; start < KEYS; start += 32) {
    await Promise.all(
      Array.from({ length: Math.min(32, KEYS - start) }, async (_, j) => {
        const i = start + j;
        const res = await fetch(`${proxy}/kv/k${i}`, { signal: AbortSignal.timeout(10_000) });
        const text = await res.text();
        if (res.status !== 200 || text !== `value-${i}`) bad.push(`k${i}: ${res.status}`);
      }),
    );
  }
  return bad;
}

/** Sends both calls at once; their statuses. */
async function atOnce(
  calls: [string, string, string, unknown?][],
): Promise<number[]> {
  const answers = await Promise.all(calls.map(([p, m, path, body]) => admin(p, m, path, body)));
  for (const a of answers) assert([202, 409].includes(a.status), JSON.stringify(a));
  return answers.map((a) => a.status);
}

async function assertSameMap(p1: string, p2: string, nodes: number) {
  const [one, two] = [await waitStable(p1), await waitStable(p2)];
  // The second proxy may poll once more before it has the last step.
  const deadline = Date.now() + 10_000;
  let view = two;
  while (view.epoch < one.epoch && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
    view = await clusterView(p2);
  }
  assertEquals(view.epoch, one.epoch);
  const ids = (v: typeof one) => v.nodes.map((n) => n.id).sort();
  assertEquals(ids(view), ids(one));
  assertEquals(one.nodes.length, nodes);
}

Deno.test("two membership changes sent at once to two proxies: one is made, the other is 409, and every key stays readable through both", async () => {
  const cluster = await ProcessCluster.create();
  try {
    const p1 = (await cluster.startAll(5, 1)).url;
    const p2 = (await cluster.startProxy("p2", ["--join", cluster.nodes.get("n1")!.url])).url;
    await loadKeys(p1, "k", KEYS);

    // Two removals of different nodes.
    const removals = await atOnce([
      [p1, "DELETE", "/cluster/nodes/n5"],
      [p2, "DELETE", "/cluster/nodes/n4"],
    ]);
    assert(removals.filter((s) => s === 202).length <= 1, `both removals started: ${removals}`);
    const removed = removals.filter((s) => s === 202).length;
    await assertSameMap(p1, p2, 5 - removed);
    assertEquals(await unreadable(p1), []);
    assertEquals(await unreadable(p2), []);

    // An add through one proxy and a removal through the other.
    const n6 = await cluster.startNode("n6");
    const mixed = await atOnce([
      [p1, "POST", "/cluster/nodes", { url: n6.url }],
      [p2, "DELETE", "/cluster/nodes/n1"],
    ]);
    assert(mixed.filter((s) => s === 202).length <= 1, `both changes started: ${mixed}`);
    const delta = mixed[0] === 202 ? 1 : mixed[1] === 202 ? -1 : 0;
    await assertSameMap(p1, p2, 5 - removed + delta);
    assertEquals(await unreadable(p1), []);
    assertEquals(await unreadable(p2), []);
  } finally {
    await cluster.stop();
  }
});
