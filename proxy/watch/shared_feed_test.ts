import { assertEquals } from "@std/assert";
import type { WireChange } from "../../node/http/change_routes.ts";
import type { ChangeFeed, ChangePage } from "./change_feed.ts";
import { SharedFeed } from "./shared_feed.ts";

type Query = Parameters<ChangeFeed["page"]>[2];

/** A node log of `changes` (seq 1..n) behind the ChangeFeed calls, counting them. */
function fakeFeed(changes: WireChange[]) {
  const calls = { page: 0, versionsAt: 0 };
  const feed = {
    page(_n: unknown, _e: number, q: Query): Promise<ChangePage> {
      calls.page++;
      const last = changes.length;
      if (q.after === undefined) return Promise.resolve({ boot: "b", first: 1, last });
      const page = changes.filter((c) => c.s > q.after! && c.k.startsWith(q.prefix))
        .slice(0, q.limit);
      return Promise.resolve({ boot: "b", first: 1, last, changes: page });
    },
    versionsAt(_n: unknown, _e: number, _b: string, _at: number, keys: string[]) {
      calls.versionsAt++;
      return Promise.resolve(Object.fromEntries(keys.map((k) => [k, "node"])));
    },
  } as unknown as ChangeFeed;
  return { feed, calls };
}

function change(s: number, k: string, prev: string | null): WireChange {
  return { s, k, ver: `v${s}`, prev, v: "", t: "t" };
}

Deno.test("SharedFeed answers reads at the head from one shared read, by prefix, and reads behind it directly", async () => {
  const log: WireChange[] = [change(1, "a", null)];
  const { feed, calls } = fakeFeed(log);
  const shared = new SharedFeed(feed, 20);
  const node = { id: "n1", url: "http://n1" };
  const q = { boot: "b", after: 1, prefix: "x", waitMs: 20, limit: 10 };
  assertEquals((await shared.page(node, 1, q)).changes, []); // the buffer is not up yet: direct
  log.push(change(2, "x1", null), change(3, "y1", null), change(4, "x1", "v2"));
  const deadline = Date.now() + 5000;
  let page = await shared.page(node, 1, q);
  while (page.changes?.length !== 2 && Date.now() < deadline) page = await shared.page(node, 1, q);
  assertEquals(page.changes?.map((c) => c.s), [2, 4]);
  assertEquals(page.last, 4);
  const before = calls.page;
  const again = await shared.page(node, 1, { ...q, prefix: "" });
  assertEquals(again.changes?.map((c) => c.s), [2, 3, 4]);
  assertEquals(calls.page - before <= 1, true, "served from the buffer");
  // Versions at a position: from the buffer when a later change is there, else asked.
  assertEquals(await shared.versionsAt(node, 1, "b", 2, ["x1", "zz"]), { x1: "v2", zz: "node" });
  assertEquals(calls.versionsAt, 1);
  // Let the poller see no demand and stop.
  await new Promise((r) => setTimeout(r, 200));
});
