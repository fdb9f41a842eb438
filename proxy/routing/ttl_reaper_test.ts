import { assert, assertEquals } from "@std/assert";
import { withExpiry } from "../../shared/expiry.ts";
import {
  nodeInfos,
  stableMap,
  startCluster,
  type TestCluster,
} from "../../tests/doubles/test_cluster.ts";
import { decide } from "../replication/decide.ts";
import type { NodeClient } from "../nodes/node_client.ts";
import type { Router } from "./router.ts";
import { TtlReaper } from "./ttl_reaper.ts";
import { RingkvError } from "../../shared/errors.ts";
import { Counter } from "../../shared/prom.ts";
import type { TopologySource } from "../cluster/topology.ts";

async function cluster(replicas: number): Promise<{ c: TestCluster; reaper: TtlReaper }> {
  let parts: { router: Router; client: NodeClient } | undefined;
  const c = await startCluster({
    map: { ...stableMap(nodeInfos(3)), replicas },
    proxy: { onRouter: (router, client) => parts = { router, client } },
  });
  return { c, reaper: new TtlReaper({ topology: c.topology, ...parts! }) };
}

function req(c: TestCluster, path: string, init: RequestInit = {}): Promise<Response> {
  return Promise.resolve(c.proxy.request(path, init));
}

async function status(c: TestCluster, path: string, init: RequestInit = {}): Promise<number> {
  const res = await req(c, path, init);
  await res.body?.cancel();
  return res.status;
}

/** Polls until `key` answers 404 (its TTL ran out on this proxy's clock). */
async function until404(c: TestCluster, key: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (await status(c, `/kv/${key}`) !== 404) {
    assert(Date.now() < deadline, `${key} still there after its TTL`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const replicas of [1, 3]) {
  Deno.test(`TTL with ${replicas} replica(s): Expires-At, 404 and no listing after expiry, reaped into tombstones`, async () => {
    const { c, reaper } = await cluster(replicas);
    try {
      const before = Date.now();
      const put = { method: "PUT", body: "v", headers: { "content-type": "text/plain" } };
      // What holds before expiry is checked on a key an hour from it (a loaded host can take
      // more than a second between two requests); what follows it, on keys of 1 s.
      assertEquals(await status(c, "/kv/hour?ttl=3600", put), 201);
      assertEquals(await status(c, "/kv/t1?ttl=1", put), 201);
      assertEquals(await status(c, "/kv/t2?ttl=1", put), 201);
      assertEquals(await status(c, "/kv/t2", put), 200); // no ttl: cleared
      const batch = { set: { b1: "x", b2: "y" }, ttl: { b1: 1 } };
      assertEquals(await status(c, "/kv", { method: "POST", body: JSON.stringify(batch) }), 200);
      const got = await req(c, "/kv/hour");
      assertEquals([got.status, await got.text()], [200, "v"]);
      assertEquals(got.headers.get("content-type"), "text/plain");
      const at = Date.parse(got.headers.get("expires-at")!);
      assert(at >= before + 3_600_000 && at <= Date.now() + 3_600_000, `Expires-At ${at}`);
      assertEquals((await req(c, "/kv/t2", { method: "HEAD" })).headers.get("expires-at"), null);
      const inm = { ...put, headers: { ...put.headers, "if-none-match": "*" } };
      assertEquals(await status(c, "/kv/hour", inm), 412);

      await until404(c, "t1");
      await until404(c, "b1"); // written a little after t1
      assertEquals(await status(c, "/kv/t1", { method: "HEAD" }), 404);
      assertEquals(await status(c, "/kv/t1", { method: "DELETE" }), 404);
      assertEquals((await (await req(c, "/kv")).json()).keys, ["b2", "hour", "t2"]);
      const items = (await (await req(c, "/kv?values=true")).json()).items;
      assertEquals(items.map((i: { key: string }) => i.key), ["b2", "hour", "t2"]);

      assertEquals(await reaper.sweep(), 2);
      for (const node of c.nodes.values()) {
        for (const key of ["t1", "b1"]) assertEquals(node.engine.peek(key)?.value ?? null, null);
        assertEquals(node.engine.expiredKeys(Date.now(), 10), []);
      }
      assertEquals(await reaper.sweep(), 0);
      assertEquals(await status(c, "/kv/t1", inm), 201);
    } finally {
      await c.close();
    }
  });
}

Deno.test("TTL: a ttl that is not whole seconds from 1 to a year, or given twice, or a reserved Content-Type, is a 400", async () => {
  const { c } = await cluster(1);
  try {
    for (const ttl of ["0", "-5", "1.5", "abc", "", "31536001"]) {
      const res = await req(c, `/kv/k?ttl=${ttl}`, { method: "PUT", body: "v" });
      assertEquals(res.status, 400, ttl);
      assertEquals((await res.json()).error.code, "bad_request");
    }
    // No value at all, alone or after another parameter: as empty, not a write without a TTL.
    for (const query of ["ttl", "x=1&ttl", "ttl=5&ttl"]) {
      const res = await req(c, `/kv/k?${query}`, { method: "PUT", body: "v" });
      assertEquals(res.status, 400, query);
      assertEquals((await res.json()).error.code, "bad_request");
    }
    // Given twice, neither is taken silently (URLSearchParams.get would take the first).
    const twice = await req(c, "/kv/k?ttl=5&ttl=600", { method: "PUT", body: "v" });
    assertEquals(twice.status, 400);
    assertEquals((await twice.json()).error.code, "bad_request");
    const reserved = { "content-type": "text/plain; ringkv-expires=1" };
    const res = await req(c, "/kv/k", { method: "PUT", body: "v", headers: reserved });
    assertEquals([res.status, (await res.json()).error.code], [400, "invalid_header"]);
    for (const body of [{ set: { a: 1 }, ttl: { b: 5 } }, { set: { a: 1 }, ttl: { a: "5" } }]) {
      const res = await req(c, "/kv", { method: "POST", body: JSON.stringify(body) });
      assertEquals(res.status, 400, JSON.stringify(body));
      await res.body?.cancel();
    }
    assertEquals(await status(c, "/kv/k"), 404);
  } finally {
    await c.close();
  }
});

Deno.test("TTL: a percent-encoded name is ttl, and the TTL counts from when the value has arrived", async () => {
  const { c } = await cluster(1);
  try {
    assertEquals(await status(c, "/kv/enc?%74tl=3600", { method: "PUT", body: "v" }), 201);
    const enc = await req(c, "/kv/enc");
    await enc.body?.cancel();
    assert(enc.headers.get("expires-at") !== null, "a TTL named %74tl is a TTL");
    // A value whose body takes 1.5 s to arrive: its TTL counts from then, not from the
    // request's first byte (a 30 s TTL, so that a loaded host cannot make it run out first).
    const body = new ReadableStream<Uint8Array>({
      async start(ctl) {
        await new Promise((r) => setTimeout(r, 1500));
        ctl.enqueue(new TextEncoder().encode("slow"));
        ctl.close();
      },
    });
    const started = Date.now();
    const put = await req(
      c,
      "/kv/slow?ttl=30",
      { method: "PUT", body, duplex: "half" } as RequestInit,
    );
    await put.body?.cancel();
    const answered = Date.now();
    const get = await req(c, "/kv/slow");
    assertEquals([put.status, get.status, await get.text()], [201, 200, "slow"]);
    const at = Date.parse(get.headers.get("expires-at") ?? "");
    assert(at >= started + 1500 + 30_000 - 50, `expires ${at - started} ms after the PUT began`);
    assert(at <= answered + 30_000, `expires ${at - answered} ms after the PUT's answer`);
  } finally {
    await c.close();
  }
});

Deno.test("decide(): the reaper's delete needs the key expired and still at its version", () => {
  const r = { owners: [], joining: [], key: "k", point: 1, epoch: 1 };
  const entry = { k: "k", v: "", t: withExpiry("a/b", 1000), ver: "v1", h: 1 };
  const reap = { op: "delete" as const, key: "k", ifMatch: "v1", expire: true as const };
  assertEquals(decide(reap, entry, "v2", r, 999).result.status, 412);
  assertEquals(decide({ ...reap, ifMatch: "v0" }, entry, "v2", r, 1000).result.status, 412);
  assertEquals(decide(reap, { ...entry, v: null }, "v2", r, 1000).result.status, 412);
  const done = decide(reap, entry, "v2", r, 1000);
  assertEquals([done.result.status, done.entry?.v], [204, null]);
  assertEquals(decide({ op: "delete", key: "k" }, entry, "v2", r, 1000).result.status, 404);
});

Deno.test("TtlReaper counts each delete's outcome: expired, kept (written again or deleted meanwhile), failed", async () => {
  const topology = {
    current: () => ({ map: { epoch: 1, nodes: [{ id: "n1", url: "http://n1.test" }] } }),
  } as unknown as TopologySource;
  const listed = ["a", "b", "c", "d"].map((k) => ({ k, ver: "v" }));
  const client = { expired: () => Promise.resolve(listed) } as unknown as NodeClient;
  const router = {
    run: () =>
      Promise.resolve([
        { status: 204 },
        { status: 412 },
        new RingkvError("node_unavailable", "no quorum"),
        { status: 204 },
      ]),
  } as unknown as Router;
  const counted = new Counter("ringkv_proxy_ttl_reaper_deletes_total", "test", ["outcome"]);
  const reaper = new TtlReaper({ topology, client, router, counted });
  assertEquals(await reaper.sweep(), 2);
  assertEquals(
    ["expired", "kept", "failed"].map((outcome) => counted.get({ outcome })),
    [2, 1, 1],
  );
});
