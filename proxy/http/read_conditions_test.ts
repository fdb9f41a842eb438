import { assertEquals } from "@std/assert";
import { nodeInfos, stableMap, startCluster } from "../../tests/doubles/test_cluster.ts";

/** [status, error code or body text, error.version] of a GET or HEAD of `key`. */
async function read(
  proxy: { request: (path: string, init?: RequestInit) => Response | Promise<Response> },
  method: "GET" | "HEAD",
  key: string,
  ifMatch: string,
): Promise<[number, string, string | undefined]> {
  const res = await proxy.request(`/kv/${key}`, { method, headers: { "if-match": ifMatch } });
  const text = await res.text();
  if (res.status < 400 || method === "HEAD") return [res.status, text, undefined];
  const { error } = JSON.parse(text);
  return [res.status, error.code, error.version];
}

for (const replicas of [1, 3]) {
  Deno.test(`GET and HEAD evaluate If-Match (RFC 9110 13.1.1): 412 unless the version holds, ${replicas} replica(s)`, async () => {
    const c = await startCluster({ map: { ...stableMap(nodeInfos(3)), replicas } });
    try {
      const put = await c.proxy.request("/kv/k", { method: "PUT", body: "v" });
      assertEquals(put.status, 201);
      const etag = put.headers.get("etag")!;
      const version = etag.slice(1, -1);
      const stale = '"0190aabbccdd-0001-p1"';
      for (const method of ["GET", "HEAD"] as const) {
        const body = method === "GET" ? "v" : "";
        assertEquals(await read(c.proxy, method, "k", etag), [200, body, undefined]);
        assertEquals(await read(c.proxy, method, "k", version), [200, body, undefined]);
        assertEquals(await read(c.proxy, method, "k", "*"), [200, body, undefined]);
        const failed = method === "GET"
          ? [412, "precondition_failed", version]
          : [412, "", undefined];
        assertEquals(await read(c.proxy, method, "k", stale), failed);
        // An absent key: 412 before 404, as RFC 9110 13.2.2 orders them; also for *.
        const absent = method === "GET"
          ? [412, "precondition_failed", undefined]
          : [412, "", undefined];
        assertEquals(await read(c.proxy, method, "absent", etag), absent);
        assertEquals(await read(c.proxy, method, "absent", "*"), absent);
        // The same parsing as writes: one ETag, quotes optional; lists and weak ETags are 400.
        for (const bad of ['"a", "b"', `W/${etag}`, "", '"a" "b"']) {
          const refused = method === "GET"
            ? [400, "invalid_header", undefined]
            : [400, "", undefined];
          assertEquals(await read(c.proxy, method, "k", bad), refused, bad);
        }
      }
      const res = await c.proxy.request("/kv/k", { headers: { "if-match": stale } });
      assertEquals(
        (await res.json()).error.message,
        `Cannot read key "k": If-Match asked for version ${
          stale.slice(1, -1)
        }, its version is ${version}`,
      );
      const none = await c.proxy.request("/kv/absent", { headers: { "if-match": "*" } });
      assertEquals(
        (await none.json()).error.message,
        'Cannot read key "absent": If-Match: * asked for it to exist, it does not exist',
      );
    } finally {
      await c.close();
    }
  });
}

Deno.test("If-Match on a read is checked before If-None-Match: a failed If-Match is 412, not 304", async () => {
  const c = await startCluster();
  try {
    const etag = (await c.proxy.request("/kv/k", { method: "PUT", body: "v" })).headers.get(
      "etag",
    )!;
    const both = { "if-match": '"0190aabbccdd-0001-n1"', "if-none-match": etag };
    const res = await c.proxy.request("/kv/k", { headers: both });
    await res.body?.cancel();
    assertEquals(res.status, 412);
    const held = await c.proxy.request("/kv/k", { headers: { ...both, "if-match": etag } });
    assertEquals(held.status, 304);
  } finally {
    await c.close();
  }
});

Deno.test("If-Match: * is still refused on writes with 400", async () => {
  const c = await startCluster();
  try {
    const res = await c.proxy.request("/kv/k", {
      method: "PUT",
      body: "v",
      headers: { "if-match": "*" },
    });
    const { error } = await res.json();
    assertEquals([res.status, error.code], [400, "invalid_header"]);
    assertEquals(
      error.message,
      'Cannot use If-Match *: give one ETag, If-Match: "<version>" (If-Match: * is not supported on writes)',
    );
  } finally {
    await c.close();
  }
});
