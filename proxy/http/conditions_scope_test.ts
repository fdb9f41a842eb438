import { assertEquals, assertMatch } from "@std/assert";
import { startCluster } from "../../tests/doubles/test_cluster.ts";

Deno.test("POST /kv with If-Match or If-None-Match: 400 invalid_header naming the key routes, nothing written", async () => {
  const c = await startCluster();
  try {
    const put = await c.proxy.request("/kv/taken", { method: "PUT", body: "first" });
    assertEquals(put.status, 201);
    const before = c.calls.length;
    const body = JSON.stringify({ set: { taken: "second", fresh: "x" }, delete: ["taken"] });
    const conditions: Record<string, string>[] = [{ "if-match": '"nope"' }, {
      "if-none-match": "*",
    }];
    for (const headers of conditions) {
      const res = await c.proxy.request("/kv", { method: "POST", body, headers });
      const { error } = await res.json();
      assertEquals([res.status, error.code], [400, "invalid_header"], JSON.stringify(headers));
      assertMatch(error.message, /^Cannot use If-(None-)?Match on POST \/kv: POST \/kv has no/);
      assertMatch(error.message, /use PUT or DELETE \/kv\/\{key\} with If-Match/);
    }
    assertEquals(c.calls.length, before, "nothing reached a node");
    assertEquals(await (await c.proxy.request("/kv/taken")).text(), "first");
    assertEquals((await c.proxy.request("/kv/fresh")).status, 404);
  } finally {
    await c.close();
  }
});

Deno.test("routes without ETags refuse If-Match and If-None-Match; /kv/{key} still evaluates them", async () => {
  const c = await startCluster();
  try {
    const put = await c.proxy.request("/kv/a", { method: "PUT", body: "v" });
    const etag = put.headers.get("etag")!;
    const refused: [string, string, Record<string, string>][] = [
      ["GET", "/kv", { "if-match": 'W/"x"' }],
      ["GET", "/kv?prefix=a", { "if-match": "*" }],
      ["GET", "/kv", { "if-none-match": etag }],
      ["HEAD", "/kv", { "if-none-match": "*" }],
      ["GET", "/health", { "if-none-match": "*" }],
      ["GET", "/watch", { "if-match": "*", accept: "text/event-stream" }],
    ];
    for (const [method, path, headers] of refused) {
      const res = await c.proxy.request(path, { method, headers });
      const what = `${method} ${path} ${JSON.stringify(headers)}`;
      assertEquals(res.status, 400, what);
      if (method === "HEAD") continue;
      const { error } = await res.json();
      assertEquals(error.code, "invalid_header", what);
      assertMatch(error.message, /only \/kv\/\{key\} answers ETags to compare it with/);
    }
    const listed = await c.proxy.request("/kv");
    assertEquals([listed.status, (await listed.json()).keys], [200, ["a"]]);
    const notModified = await c.proxy.request("/kv/a?x=1", { headers: { "if-none-match": etag } });
    assertEquals(notModified.status, 304, "a /kv/{key} through Hono's routing is evaluated");
    const held = await c.proxy.request("/kv/a?ttl=60", {
      method: "PUT",
      body: "w",
      headers: { "if-match": etag },
    });
    assertEquals(held.status, 200);
  } finally {
    await c.close();
  }
});
