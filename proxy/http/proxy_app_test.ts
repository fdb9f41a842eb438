import { assert, assertEquals, assertMatch } from "@std/assert";
import { Hono } from "hono";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { ownerOf, startCluster, type TestCluster } from "../../tests/doubles/test_cluster.ts";

async function errorOf(res: Response): Promise<{ code: string; message: string }> {
  const body = await res.json();
  assertEquals(typeof body.error.message, "string");
  return body.error;
}

function put(c: TestCluster, key: string, body: BodyInit, headers: HeadersInit = {}) {
  return c.proxy.request(`/kv/${key}`, { method: "PUT", body, headers });
}

Deno.test("HEAD answers say the Content-Length GET would send, with no body (RFC 9110)", async () => {
  const c = await startCluster();
  try {
    await put(c, "a/1", "one");
    // A 404 error body, a listing, a status: Hono drops GET's body for HEAD, its length stays.
    for (const path of ["/kv/absent", "/kv?prefix=a/", "/health"]) {
      const got = await c.proxy.request(path);
      const bytes = (await got.arrayBuffer()).byteLength;
      const head = await c.proxy.request(path, { method: "HEAD" });
      assertEquals(head.status, got.status, path);
      assertEquals(head.headers.get("content-length"), String(bytes), path);
      assertEquals(await head.text(), "", path);
    }
  } finally {
    await c.close();
  }
});

Deno.test("PUT, GET, HEAD and DELETE /kv/{key} answer as the public API says", async () => {
  const c = await startCluster();
  try {
    const created = await put(c, "greeting", "hello", { "content-type": "text/plain" });
    assertEquals(created.status, 201);
    const etag = created.headers.get("etag")!;
    assertMatch(etag, /^"[0-9a-f]{12}-[0-9a-f]{4}-n\d"$/);
    assertEquals(await created.json(), { version: etag.slice(1, -1) });

    const got = await c.proxy.request("/kv/greeting");
    assertEquals([got.status, await got.text()], [200, "hello"]);
    assertEquals(got.headers.get("content-type"), "text/plain");
    assertEquals(got.headers.get("etag"), etag);

    const replaced = await put(c, "greeting", new TextEncoder().encode("hi"));
    assertEquals(replaced.status, 200);
    assert(replaced.headers.get("etag")! > etag, "a replacement has a newer version");
    const head = await c.proxy.request("/kv/greeting", { method: "HEAD" });
    assertEquals([head.status, head.headers.get("content-length"), await head.text()], [
      200,
      "2",
      "",
    ]);
    assertEquals(head.headers.get("content-type"), "application/octet-stream");

    const deleted = await c.proxy.request("/kv/greeting", { method: "DELETE" });
    assertEquals([deleted.status, await deleted.text()], [204, ""]);
    assert(deleted.headers.get("etag")! > replaced.headers.get("etag")!);
    const gone = await c.proxy.request("/kv/greeting");
    assertEquals([gone.status, (await errorOf(gone)).code], [404, "not_found"]);
    const again = await c.proxy.request("/kv/greeting", { method: "DELETE" });
    assertEquals([again.status, (await errorOf(again)).code], [404, "not_found"]);
  } finally {
    await c.close();
  }
});

Deno.test("a key is stored only on the node that owns it, slashes and encoding included", async () => {
  const c = await startCluster();
  try {
    const keys = ["users/42", "a/b/c", "ünï cödé", "x%y", "plain"];
    for (const key of keys) {
      const path = key.split("/").map(encodeURIComponent).join("/");
      assertEquals((await put(c, path, `v:${key}`)).status, 201, key);
    }
    assertEquals(await (await c.proxy.request("/kv/a%2Fb%2Fc")).text(), "v:a/b/c");
    for (const key of keys) {
      const owner = await ownerOf(c.topology.current(), key);
      for (const [id, node] of c.nodes) {
        const entry = await node.engine.get(key);
        assertEquals(entry !== undefined, id === owner, `${key} on ${id} (owner ${owner})`);
      }
    }
  } finally {
    await c.close();
  }
});

Deno.test("If-None-Match: * and If-Match compare-and-set answer 412 when they do not hold", async () => {
  const c = await startCluster();
  try {
    const first = await put(c, "lock", "a", { "if-none-match": "*" });
    assertEquals(first.status, 201);
    const v1 = first.headers.get("etag")!;
    const taken = await put(c, "lock", "b", { "if-none-match": "*" });
    assertEquals([taken.status, (await errorOf(taken)).code], [412, "precondition_failed"]);

    const swapped = await put(c, "lock", "c", { "if-match": v1 });
    assertEquals(swapped.status, 200);
    const lost = await put(c, "lock", "d", { "if-match": v1 });
    const body = (await lost.json()).error;
    assertEquals([lost.status, body.code, body.version], [
      412,
      "precondition_failed",
      swapped.headers.get("etag")!.slice(1, -1),
    ]);
    assertEquals(await (await c.proxy.request("/kv/lock")).text(), "c");

    const staleDelete = await c.proxy.request("/kv/lock", {
      method: "DELETE",
      headers: { "if-match": v1 },
    });
    assertEquals(staleDelete.status, 412);
    const bare = swapped.headers.get("etag")!.slice(1, -1);
    const del = await c.proxy.request("/kv/lock", {
      method: "DELETE",
      headers: { "if-match": bare },
    });
    assertEquals(del.status, 204);
    const recreate = await put(c, "lock", "e", { "if-none-match": "*" });
    assertEquals(recreate.status, 201, "a deleted key counts as absent");
  } finally {
    await c.close();
  }
});

Deno.test("a 412 to If-Match and If-None-Match: * together names the one that failed", async () => {
  const c = await startCluster();
  try {
    const first = await put(c, "both", "a");
    const etag = first.headers.get("etag")!;
    // If-Match holds, so it is If-None-Match: * that fails (the key exists).
    const res = await put(c, "both", "b", { "if-match": etag, "if-none-match": "*" });
    const error = await errorOf(res);
    assertEquals([res.status, error.code], [412, "precondition_failed"]);
    assertMatch(error.message, /If-None-Match: \* asked for it to be absent/);
    const stale = await put(c, "both", "b", { "if-match": '"0"', "if-none-match": "*" });
    assertMatch((await errorOf(stale)).message, /If-Match asked for version 0,/);
    assertEquals(await (await c.proxy.request("/kv/both")).text(), "a");
  } finally {
    await c.close();
  }
});

Deno.test("GET with If-None-Match of the current ETag answers 304, with ETag but no Content-Type", async () => {
  const c = await startCluster();
  try {
    const etag = (await put(c, "k", "v")).headers.get("etag")!;
    const same = await c.proxy.request("/kv/k", { headers: { "if-none-match": `"x", ${etag}` } });
    assertEquals([same.status, same.headers.get("etag")], [304, etag]);
    // RFC 9110 15.4.5: no representation metadata on a 304 (over HEAD and a weak tag too).
    assertEquals(same.headers.get("content-type"), null);
    const ttl = await c.proxy.request("/kv/t?ttl=60", { method: "PUT", body: "v" });
    const weak = `W/${ttl.headers.get("etag")}`;
    const head = await c.proxy.request("/kv/t", {
      method: "HEAD",
      headers: { "if-none-match": weak },
    });
    assertEquals([head.status, head.headers.get("content-type")], [304, null]);
    assert(head.headers.has("expires-at"), "Expires-At says how long the copy stays good");
    const other = await c.proxy.request("/kv/k", { headers: { "if-none-match": '"other"' } });
    assertEquals(other.status, 200);
  } finally {
    await c.close();
  }
});

Deno.test("a write's query takes ttl on PUT and nothing else: a misspelt or foreign parameter is a 400", async () => {
  const c = await startCluster();
  try {
    await put(c, "k", "v");
    const cases: [string, string, RegExp][] = [
      ["PUT", "/kv/k?TTL=30", /parameter "TTL", and a PUT takes only ttl; did you mean ttl\?/],
      ["PUT", "/kv/k?ttl=30&prevExist=false", /parameter "prevExist"/],
      ["DELETE", "/kv/k?recursive=true", /a DELETE takes none \(POST \/kv deletes several keys\)/],
    ];
    for (const [method, path, message] of cases) {
      const res = await c.proxy.request(path, {
        method,
        ...(method === "PUT" ? { body: "w" } : {}),
      });
      const err = await errorOf(res);
      assertEquals([res.status, err.code], [400, "bad_request"], `${method} ${path}`);
      assertMatch(err.message, message);
    }
    // Nothing was written or deleted, and the key has no expiry; reads ignore other parameters.
    const read = await c.proxy.request("/kv/k?nocache=1");
    assertEquals([read.status, await read.text(), read.headers.get("expires-at")], [
      200,
      "v",
      null,
    ]);
    assertEquals((await c.proxy.request("/kv/k?", { method: "PUT", body: "w" })).status, 200);
  } finally {
    await c.close();
  }
});

Deno.test("bad keys, headers, sizes and methods get 4xx with the error body", async () => {
  const c = await startCluster({
    limits: { ...DEFAULT_LIMITS, maxValueBytes: 10, maxKeyBytes: 8 },
  });
  try {
    const cases: [Response | Promise<Response>, number, string][] = [
      [put(c, "", "v"), 400, "invalid_key"],
      [put(c, "%ZZ", "v"), 400, "invalid_key"],
      [put(c, "%01", "v"), 400, "invalid_key"],
      [put(c, "123456789", "v"), 414, "key_too_long"],
      [put(c, "k", "12345678901"), 413, "value_too_large"],
      [put(c, "k", "1", { "content-length": "999" }), 413, "value_too_large"],
      [put(c, "k", streamOf(6, 6)), 413, "value_too_large"],
      [put(c, "k", "v", { "if-match": "*" }), 400, "invalid_header"],
      [put(c, "k", "v", { "if-match": '"a", "b"' }), 400, "invalid_header"],
      [put(c, "k", "v", { "if-none-match": '"a"' }), 400, "invalid_header"],
      [put(c, "k", "v", { "content-type": "x/" + "y".repeat(300) }), 400, "invalid_header"],
      [c.proxy.request("/kv/k", { method: "POST" }), 405, "method_not_allowed"],
      [c.proxy.request("/kv", { method: "DELETE" }), 405, "method_not_allowed"],
      [c.proxy.request("/nope"), 404, "no_route"],
    ];
    for (const [i, [res, status, code]] of cases.entries()) {
      const r = await res;
      assertEquals([r.status, (await errorOf(r)).code], [status, code], `case ${i}`);
    }
    const notAllowed = await c.proxy.request("/kv/k", { method: "PATCH" });
    assertEquals(notAllowed.headers.get("allow"), "GET, HEAD, PUT, DELETE");
    assertEquals(c.calls.length, 0, "nothing reached a node");
  } finally {
    await c.close();
  }
});

/** A body without Content-Length: `chunks` chunks of `size` bytes. */
function streamOf(chunks: number, size: number): ReadableStream<Uint8Array> {
  let sent = 0;
  return new ReadableStream({
    pull(ctrl) {
      if (sent++ < chunks) ctrl.enqueue(new Uint8Array(size).fill(65));
      else ctrl.close();
    },
  });
}

Deno.test("a client token guards every /kv route", async () => {
  const c = await startCluster({ proxy: { clientToken: "t0k" } });
  try {
    const none = await put(c, "k", "v");
    assertEquals([none.status, (await errorOf(none)).code], [401, "unauthorized"]);
    assertEquals(none.headers.get("www-authenticate"), 'Bearer realm="ringkv"');
    const wrong = await c.proxy.request("/kv?limit=1", {
      headers: { authorization: "Bearer t0x" },
    });
    assertEquals(wrong.status, 401);
    const ok = await put(c, "k", "v", { authorization: "Bearer t0k" });
    assertEquals(ok.status, 201);
  } finally {
    await c.close();
  }
});

Deno.test("concurrent requests for one node travel in one batch call per node and round trip", async () => {
  const c = await startCluster();
  try {
    const keys = Array.from({ length: 30 }, (_, i) => `k${i}`);
    for (const k of keys) await put(c, k, `value ${k}`);
    const owners = new Set(await Promise.all(keys.map((k) => ownerOf(c.topology.current(), k))));
    const held: (() => void)[] = [];
    c.hook = () => new Promise<void>((resolve) => held.push(resolve));
    c.calls.length = 0;
    // One turn's requests: one call per node, carrying all of that node's keys.
    const first = keys.map((k) => c.proxy.request(`/kv/${k}`));
    for (let i = 0; held.length < owners.size && i < 1000; i++) {
      await new Promise((r) => setTimeout(r, 1));
    }
    assertEquals(held.length, owners.size, "one call per node");
    // Requests arriving while those calls are held: queued, then one more call per node.
    const second = keys.map((k) => c.proxy.request(`/kv/${k}`));
    await new Promise((r) => setTimeout(r, 10));
    assertEquals(c.calls.length, owners.size, "nothing more is sent while a call is in flight");
    c.hook = undefined;
    for (const release of held) release();
    const texts = await Promise.all([...first, ...second].map(async (a) => await (await a).text()));
    assertEquals(texts, [...keys, ...keys].map((k) => `value ${k}`));
    assertEquals(c.calls.every((call) => call.path === "/internal/batch"), true);
    assertEquals(c.calls.length, 2 * owners.size, "one batch per node for each wave");
  } finally {
    await c.close();
  }
});

Deno.test("the proxy mounts the admin app as given and answers GET /health", async () => {
  const admin = new Hono();
  admin.get("/cluster", (c) => c.json({ admin: true }));
  const c = await startCluster({ proxy: { admin } });
  try {
    assertEquals(await (await c.proxy.request("/cluster")).json(), { admin: true });
    const health = await c.proxy.request("/health");
    assertEquals(await health.json(), { status: "ok", epoch: 1, nodes: 3 });
  } finally {
    await c.close();
  }
});
