import { assert, assertEquals, assertMatch } from "@std/assert";
import { until } from "../../tests/helpers/poll.ts";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { createNodeApp } from "../http/node_app.ts";
import { gatedDisk, open, settle } from "../../tests/doubles/engine_test_helpers.ts";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import { writeTrouble } from "../../proxy/nodes/node_admin.ts";
import { stalledWrites } from "./disk_stall.ts";
import { Wal } from "../storage/wal.ts";
import { encodeLine } from "../storage/log_format.ts";
import { formatVersion } from "../../shared/version.ts";

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
    await until("the fsync is held", () => held() > 0);
    await until("/health reports the stall", async () => {
      const res = await app.request("/health");
      const body = await res.json();
      return res.status === 503 && body.status === "stalled";
    });
    const body = await (await app.request("/health")).json();
    assertEquals(body.writes.state, "stalled");
    assertMatch(body.writes.reason, /wal\.jsonl\) has waited/);
    // The proxy's probe reads it as alive, with writes it should not pile on.
    assertEquals(writeTrouble(body)?.state, "stalled");
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

Deno.test("Wal.busy() times a line queued behind a slow round from its append, not from its own round's start", async () => {
  const { disk, release, hold, held } = gatedDisk();
  const wal = new Wal(disk, "wal.jsonl", 0);
  hold();
  const first = wal.durable(wal.append(encodeLine({ n: 1 })));
  await until("the first round waits on its fsync", () => held() === 1);
  const second = wal.durable(wal.append(encodeLine({ n: 2 })));
  // Read after the append: the clock may tick between a reading before it and the append.
  const queuedBy = Date.now();
  await until("the wall clock moves past the append", () => Date.now() > queuedBy);
  release();
  hold(); // the second round's fsync waits
  await first;
  await until("the second round waits on its fsync", () => held() === 1);
  const busy = wal.busy()!;
  assert(busy.since <= queuedBy, `timed from ${busy.since}, the line was queued by ${queuedBy}`);
  release();
  await second;
  await until("nothing waits on the log", () => wal.busy() === null);
});

/** /health's status and write reason. */
async function healthOf(app: ReturnType<typeof createNodeApp>): Promise<[number, string]> {
  const res = await app.request("/health");
  return [res.status, (await res.json()).writes?.reason ?? ""];
}

/** The node's `ringkv_node_fsync_wait_seconds`. */
async function fsyncWait(app: ReturnType<typeof createNodeApp>): Promise<number> {
  const metrics = await (await app.request("/metrics")).text();
  return Number(/ringkv_node_fsync_wait_seconds\{[^}]*\} (\S+)/.exec(metrics)![1]);
}

/** Whether /health says stalled on a write of `file`. */
function stalledOn(app: ReturnType<typeof createNodeApp>, file: string) {
  return async () => {
    const [status, reason] = await healthOf(app);
    return status === 503 && reason.includes(`write of ${file} has waited`);
  };
}

Deno.test("stalled disk: a save of acceptor.json that waits on the disk makes /health say stalled, naming it, until it finishes", async () => {
  const engine = await open(createFakeDisk(), { stallAfterMs: 100 });
  const floorSave = Promise.withResolvers<void>();
  const floorStore = { load: () => Promise.resolve(null), save: () => floorSave.promise };
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS, floorStore });
  try {
    const ballot = formatVersion(Date.now() + 60_000, 0, "p1");
    const prepare = app.request("/internal/prepare", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ ops: [{ key: "k", ballot }] }),
    });
    await until("/health names acceptor.json", stalledOn(app, "acceptor.json"));
    assert(await fsyncWait(app) >= 0.1, "the gauge counts the acceptor.json save");
    floorSave.resolve();
    assertEquals((await prepare).status, 200);
    assertEquals((await healthOf(app))[0], 200);
    assertEquals(await fsyncWait(app), 0);
  } finally {
    floorSave.resolve();
    await engine.close();
  }
});

Deno.test("stalled disk: a save of cluster.json that waits on the disk makes /health say stalled, naming it, until it finishes", async () => {
  const inner = createFakeDisk();
  const gate = Promise.withResolvers<void>();
  let gated = false;
  const disk = new Proxy(inner, {
    get(target, prop) {
      if (prop === "writeAtomic" && gated) {
        return async (...args: Parameters<typeof target.writeAtomic>) => {
          await gate.promise;
          return target.writeAtomic(...args);
        };
      }
      const value = Reflect.get(target, prop);
      return typeof value === "function" ? value.bind(target) : value;
    },
  });
  const engine = await open(disk, { stallAfterMs: 100 });
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
  try {
    gated = true;
    const saving = engine.saveClusterMap({
      epoch: 2,
      replicas: 1,
      vnodes: 8,
      nodes: [],
      rebalancing: null,
    });
    await until("/health names cluster.json", stalledOn(app, "cluster.json"));
    gate.resolve();
    await saving;
    assertEquals((await healthOf(app))[0], 200);
  } finally {
    gate.resolve();
    await engine.close();
  }
});

Deno.test("stalled disk: a read of a key whose write waits on the fsync ends when its caller leaves (503), not when the disk moves", async () => {
  const { disk, release, hold, held } = gatedDisk();
  release();
  const engine = await open(disk, { stallAfterMs: 60_000 });
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
  try {
    hold();
    const write = Promise.resolve(app.request("/kv/b", { method: "PUT", body: "two" }));
    await until("the fsync is held", () => held() > 0);
    for (const [method, path] of [["GET", "/kv/b"], ["GET", "/kv/b?x=1"], ["HEAD", "/kv/b"]]) {
      const caller = new AbortController();
      let status: number | undefined;
      const read = Promise.resolve(
        app.request(new Request(`http://node${path}`, { method, signal: caller.signal })),
      ).then((r) => status = r.status);
      await settle();
      assertEquals(status, undefined, `${method} ${path} answered before its write was durable`);
      caller.abort();
      await read;
      assertEquals(status, 503, `${method} ${path}`);
    }
    release();
    assertEquals((await write).status, 201);
    assertEquals(await (await app.request("/kv/b")).text(), "two");
  } finally {
    release();
    await engine.close();
  }
});
