import { assertEquals, assertThrows } from "@std/assert";
import { createHonoMapApp, filledMap, parseFill } from "./hono_map_node.ts";
import { benchValue } from "./load.ts";

Deno.test("Hono Map node: PUT creates (201), replaces (200), GET answers the bytes and type", async () => {
  const app = createHonoMapApp();
  const put = (body: string) =>
    app.request("/kv/users/1", {
      method: "PUT",
      body,
      headers: { "content-type": "application/json" },
    });
  assertEquals((await put('{"a":1}')).status, 201);
  assertEquals((await put('{"a":2}')).status, 200);
  const res = await app.request("/kv/users/1");
  assertEquals(res.status, 200);
  assertEquals(res.headers.get("content-type"), "application/json");
  assertEquals(await res.text(), '{"a":2}');
});

Deno.test("Hono Map node: GET of an absent key is 404, other routes are not served", async () => {
  const app = createHonoMapApp();
  assertEquals((await app.request("/kv/nope")).status, 404);
  assertEquals((await app.request("/kv/a", { method: "DELETE" })).status, 404);
  assertEquals((await app.request("/health")).status, 404);
});

Deno.test("filledMap() holds the bench's keys and values, as loaded into a ringkv node", async () => {
  const map = filledMap(["k:3:100", "b:2:4096"]);
  assertEquals([...map.keys()], ["k000000", "k000001", "k000002", "b000000", "b000001"]);
  const res = await createHonoMapApp(map).request("/kv/b000001");
  assertEquals(await res.text(), benchValue(1, 4096));
});

Deno.test("parseFill() reads prefix:count:bytes and refuses anything else", () => {
  assertEquals(parseFill("k:100000:100"), { prefix: "k", count: 100_000, valueBytes: 100 });
  for (const bad of ["k:10", "k:x:1", ":1:1", "k:1:1:1"]) {
    assertThrows(() => parseFill(bad), RangeError, "prefix:count:bytes");
  }
});
