import { assert, assertEquals, assertMatch } from "@std/assert";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { createNodeApp } from "../http/node_app.ts";
import { gatedDisk, open, settle } from "../../tests/doubles/engine_test_helpers.ts";
import { refusedWrites } from "../../proxy/nodes/node_admin.ts";
import { stalledWrites } from "./disk_stall.ts";

/** Polls `check` until it holds; fails after `ms` (a deadline, not a sleep as proof). */
async function until(what: string, check: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting until ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

Deno.test("stalledWrites() names the wait once the log write under way passes the threshold", () => {
  assertEquals(stalledWrites(null, 5_000), undefined);
  assertEquals(stalledWrites({ since: 10_000, ms: 4_999 }, 5_000), undefined);
  const health = stalledWrites({ since: 10_000, ms: 7_250 }, 5_000)!;
  assertEquals([health.state, health.since, health.retries], ["stalled", 10_000, 0]);
  assertMatch(health.reason!, /wal\.jsonl\) has waited 7\.3 s/);
});

Deno.test("stalled disk: reads answer, /health says stalled, a write is acknowledged only after its fsync, health is ok again by itself", async () => {
  const { disk, release, hold, held } = gatedDisk();
  release();
  const engine = await open(disk, { stallAfterMs: 100 });
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
  try {
    assertEquals((await app.request("/kv/a", { method: "PUT", body: "one" })).status, 201);
    hold(); // the disk stalls: the next log fsync waits until release()
    let answered: number | undefined;
    const write = Promise.resolve(app.request("/kv/b", { method: "PUT", body: "two" })).then(
      (r) => {
        answered = r.status;
        return r;
      },
    );
    await until("the fsync is held", () => Promise.resolve(held() > 0));
    await until("/health reports the stall", async () => {
      const res = await app.request("/health");
      const body = await res.json();
      return res.status === 503 && body.status === "stalled";
    });
    const body = await (await app.request("/health")).json();
    assertEquals(body.writes.state, "stalled");
    assertMatch(body.writes.reason, /wal\.jsonl\) has waited/);
    // The proxy's probe reads it as alive, with writes it should not pile on.
    assertEquals(refusedWrites(body)?.state, "stalled");
    const metrics = await (await app.request("/metrics")).text();
    const wait = Number(/ringkv_node_fsync_wait_seconds\{[^}]*\} (\S+)/.exec(metrics)![1]);
    assert(wait >= 0.1, metrics);
    assertMatch(metrics, /ringkv_node_writable\{[^}]*\} 1/);
    const read = await app.request("/kv/a");
    assertEquals([read.status, await read.text()], [200, "one"]);
    await settle();
    assertEquals(answered, undefined, "a write was acknowledged before its fsync returned");
    release();
    assertEquals((await write).status, 201);
    const after = await app.request("/health");
    assertEquals([after.status, (await after.json()).status], [200, "ok"]);
    const idle = await (await app.request("/metrics")).text();
    assertMatch(idle, /ringkv_node_fsync_wait_seconds\{[^}]*\} 0\n/);
    assertEquals(await (await app.request("/kv/b")).text(), "two");
  } finally {
    release();
    await engine.close();
  }
});
