import { assert, assertEquals, assertMatch } from "@std/assert";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { startCluster, type TestCluster } from "../../tests/doubles/test_cluster.ts";
import { parseProxyConfig } from "../proxy_config.ts";
import { MAX_NESTING } from "./batch_route.ts";

function batch(c: TestCluster, body: unknown, headers: HeadersInit = {}) {
  const text = typeof body === "string" ? body : JSON.stringify(body);
  return c.proxy.request("/kv", { method: "POST", body: text, headers });
}

Deno.test("POST /kv sets strings as text and other JSON as JSON, deletes, and reports each key", async () => {
  const c = await startCluster();
  try {
    await c.proxy.request("/kv/old", { method: "PUT", body: "x" });
    const res = await batch(c, {
      set: { s: "some text", o: { n: 1 }, a: [1, "b"], n: 42, t: true, z: null, "dir/k": "ü" },
      delete: ["old", "never"],
    });
    assertEquals(res.status, 200);
    const { results } = await res.json();
    for (const key of ["s", "o", "a", "n", "t", "z", "dir/k"]) {
      assertEquals(results[key].status, 201, key);
      assertMatch(results[key].version, /^[0-9a-f]{12}-/);
    }
    assertEquals(results.old.status, 204);
    assertEquals(results.never, { status: 404 });
    const expect: [string, string, string][] = [
      ["s", "some text", "text/plain; charset=utf-8"],
      ["o", '{"n":1}', "application/json"],
      ["a", '[1,"b"]', "application/json"],
      ["n", "42", "application/json"],
      ["z", "null", "application/json"],
      ["dir/k", "ü", "text/plain; charset=utf-8"],
    ];
    for (const [key, text, type] of expect) {
      const got = await c.proxy.request(`/kv/${key}`);
      assertEquals([await got.text(), got.headers.get("content-type")], [text, type], key);
      assertEquals(got.headers.get("etag"), `"${results[key].version}"`);
    }
    assertEquals((await c.proxy.request("/kv/old")).status, 404);
  } finally {
    await c.close();
  }
});

Deno.test("POST /kv sends the ops for one node in one batch call", async () => {
  const c = await startCluster();
  try {
    const set = Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`key${i}`, i]));
    const res = await batch(c, { set });
    assertEquals(res.status, 200);
    const batchCalls = c.calls.filter((call) => call.path === "/internal/batch");
    assertEquals(batchCalls.length, c.nodes.size);
    assertEquals(new Set(batchCalls.map((call) => call.node)).size, c.nodes.size);
  } finally {
    await c.close();
  }
});

Deno.test("POST /kv refuses malformed and oversized batches before applying anything", async () => {
  const limits = { ...DEFAULT_LIMITS, maxBatchOps: 3, maxValueBytes: 8, maxBatchBytes: 200 };
  const c = await startCluster({ limits });
  try {
    const cases: [unknown, number, string][] = [
      ["{", 400, "invalid_json"],
      ["[1]", 400, "invalid_batch"],
      [{ set: [] }, 400, "invalid_batch"],
      [{ set: null }, 400, "invalid_batch"],
      [{ delete: null }, 400, "invalid_batch"],
      [{ delete: "k" }, 400, "invalid_batch"],
      [{ delete: [1] }, 400, "invalid_batch"],
      [{ put: {} }, 400, "invalid_batch"],
      [{ set: { k: 1 }, delete: ["k"] }, 400, "invalid_batch"],
      [{ delete: ["k", "k"] }, 400, "invalid_batch"],
      // JSON.parse would keep the last of two equal names and drop the other write.
      ['{"set": {"a": 1}, "set": {"b": 2}}', 400, "invalid_batch"],
      ['{"set": {"a": 1, "a": 2}}', 400, "invalid_batch"],
      ['{"set": {"a": {"n": 1, "n": 2}}}', 400, "invalid_batch"],
      [{ set: { "": 1 } }, 400, "invalid_key"],
      [{ set: { a: 1, b: 2 }, delete: ["c", "d"] }, 413, "batch_too_large"],
      [{ set: { a: "123456789" } }, 413, "value_too_large"],
      [{ set: { a: "x".repeat(300) } }, 413, "batch_too_large"],
    ];
    for (const [i, [body, status, code]] of cases.entries()) {
      const res = await batch(c, body);
      assertEquals([res.status, (await res.json()).error.code], [status, code], `case ${i}`);
    }
    const bytes = new Uint8Array([0x7b, 0xff, 0x7d]);
    const notUtf8 = await c.proxy.request("/kv", { method: "POST", body: bytes });
    assertEquals((await notUtf8.json()).error.code, "invalid_json");
    assertEquals(c.calls.length, 0, "nothing reached a node");
    const empty = await batch(c, {});
    assertEquals([empty.status, await empty.json()], [200, { results: {} }]);
  } finally {
    await c.close();
  }
});

Deno.test("POST /kv answers 207 when a node is down, with the other pairs applied", async () => {
  const c = await startCluster();
  try {
    c.down.add("n2");
    const set = Object.fromEntries(Array.from({ length: 30 }, (_, i) => [`key${i}`, i]));
    const res = await batch(c, { set });
    assertEquals(res.status, 207);
    const { results } = await res.json();
    const failed = Object.keys(results).filter((k) => results[k].status === 503);
    const applied = Object.keys(results).filter((k) => results[k].status === 201);
    assertEquals(failed.length + applied.length, 30);
    assertEquals(
      failed.length > 0 && applied.length > 0,
      true,
      "keys on n2 fail, the others apply",
    );
    for (const key of failed) {
      assertMatch(results[key].error.message, /node n2/);
      assertEquals(results[key].error.node, "n2", "as the single-key call's error body");
    }
    c.down.clear();
    for (const key of applied) assertEquals((await c.proxy.request(`/kv/${key}`)).status, 200);
    for (const key of failed) assertEquals((await c.proxy.request(`/kv/${key}`)).status, 404);
  } finally {
    await c.close();
  }
});

Deno.test("POST /kv's 413 messages name only flags the proxy has", async () => {
  const limits = { ...DEFAULT_LIMITS, maxBatchOps: 2, maxValueBytes: 8, maxBatchBytes: 200 };
  const c = await startCluster({ limits });
  try {
    const bodies = [
      { set: { a: 1, b: 2, c: 3 } },
      { set: { a: "x".repeat(300) } },
      { set: { a: "123456789" } },
    ];
    for (const body of bodies) {
      const res = await batch(c, body);
      const { error } = await res.json();
      assertEquals(res.status, 413, error.message);
      for (const [flag] of error.message.matchAll(/--[a-z][a-z-]*/g)) {
        // The proxy takes every flag it names: one it lacks is "Unknown option".
        parseProxyConfig([flag, "64", "--nodes", "http://127.0.0.1:7001"], {});
      }
    }
  } finally {
    await c.close();
  }
});

Deno.test("POST /kv with a long name twice in one object: 400 invalid_batch, the name not echoed whole", async () => {
  const c = await startCluster();
  try {
    const name = "n".repeat(100_000);
    const res = await batch(c, `{"set": {"k": {"${name}": 1, "${name}": 2}}}`);
    assertEquals(res.status, 400);
    const { error } = await res.json();
    assertEquals(error.code, "invalid_batch");
    assertMatch(error.message, /the name "n{80}\.\.\." \(100000 bytes\) appears twice/);
  } finally {
    await c.close();
  }
});

Deno.test("POST /kv stores each number as the client wrote it, strings and whitespace as before", async () => {
  const c = await startCluster();
  try {
    const body = '{"set": {"n/big": 12345678901234567890, "n/obj": {"id": 9007199254740993, ' +
      '"e": 1e400, "f": [0.1, -0, 1E2]}, "n/text": "a:1, [2", "n/plain": {"s": "x"}}, ' +
      '"ttl": {"n/big": 3e1}}';
    const res = await batch(c, body);
    assertEquals(res.status, 200);
    const expect: [string, string, string][] = [
      ["n/big", "12345678901234567890", "application/json"],
      ["n/obj", '{"id":9007199254740993,"e":1e400,"f":[0.1,-0,1E2]}', "application/json"],
      ["n/text", "a:1, [2", "text/plain; charset=utf-8"],
      ["n/plain", '{"s":"x"}', "application/json"],
    ];
    for (const [key, text, type] of expect) {
      const got = await c.proxy.request(`/kv/${key}`);
      assertEquals([await got.text(), got.headers.get("content-type")], [text, type], key);
    }
    // The ttl's 3e1 is the number 30, as before: the key expires in 30 s.
    const big = await c.proxy.request("/kv/n/big", { method: "HEAD" });
    const left = Date.parse(big.headers.get("expires-at")!) - Date.now();
    assert(left > 25_000 && left <= 30_000, `expires in ${left} ms`);
    // A number where an object or key list belongs is refused as before, not read as one.
    for (const bad of ["5", '{"set": 5}', '{"delete": [1]}', '{"set": {"a": 1}, "ttl": 7}']) {
      const refused = await batch(c, bad);
      assertEquals([refused.status, (await refused.json()).error.code], [400, "invalid_batch"]);
    }
  } finally {
    await c.close();
  }
});

Deno.test("POST /kv keeps a number's text wherever the number alone starts after ':', ',' or '['", async () => {
  const c = await startCluster();
  try {
    // One number per body, so each position is the only one the guard can find.
    const bodies: [string, string][] = [
      ['{"set":{"a":1.0}}', "1.0"],
      ['{"set":{"a":[1.0]}}', "[1.0]"],
      ['{"set":{"a":["x",1.0]}}', '["x",1.0]'],
    ];
    for (const [body, stored] of bodies) {
      assertEquals((await batch(c, body)).status, 200, body);
      assertEquals(await (await c.proxy.request("/kv/a")).text(), stored, body);
    }
  } finally {
    await c.close();
  }
});

Deno.test("POST /kv refuses values nested past its limit alike with numbers or without, never a stack overflow", async () => {
  const c = await startCluster();
  try {
    const nested = (levels: number, leaf: string) =>
      `{"set":{"deep":${"[".repeat(levels)}${leaf}${"]".repeat(levels)}}}`;
    // The body and "set" are two levels: 998 arrays more is the limit's last.
    for (const leaf of ["1.50", '"s"']) {
      const ok = await batch(c, nested(MAX_NESTING - 2, leaf));
      assertEquals(ok.status, 200, leaf);
      for (const levels of [MAX_NESTING - 1, 5000, 50_000]) {
        const res = await batch(c, nested(levels, leaf));
        const { error } = await res.json();
        assertEquals([res.status, error.code], [400, "invalid_batch"], `${levels} ${leaf}`);
        assertMatch(error.message, /nest deeper than 1000 levels/);
      }
    }
    const kept = await (await c.proxy.request("/kv/deep")).text();
    assert(kept.includes("[1.50]") || kept.includes('["s"]'));
  } finally {
    await c.close();
  }
});
