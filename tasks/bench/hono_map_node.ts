/**
 * The per-node floor of the web-standard stack: a Hono app on `Deno.serve` with
 * `GET`/`PUT /kv/{key}` on a Map, nothing else (no auth, versions, disk or limits). The
 * bench compares a ringkv node reached directly with it. Started as
 * `hono_map_node.ts [prefix:count:bytes ...]`, it first fills the Map with the bench's keys
 * (tasks/bench/load.ts), as many as a ringkv node holds, then prints
 * `hono map node listening on <url>`.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { createHonoMapApp } from "./hono_map_node.ts";
 * const app = createHonoMapApp();
 * assertEquals((await app.request("/kv/a", { method: "PUT", body: "1" })).status, 201);
 * assertEquals(await (await app.request("/kv/a")).text(), "1");
 * ```
 */
import { Hono } from "hono";
import { benchKey, benchValue } from "./load.ts";

/** A stored value. */
export interface MapValue {
  bytes: Uint8Array<ArrayBuffer>;
  contentType: string;
}

/** The app: `GET` and `PUT /kv/{key}` on `map`. */
export function createHonoMapApp(map = new Map<string, MapValue>()): Hono {
  const app = new Hono();
  app.get("/kv/:key{.+}", (c) => {
    const value = map.get(c.req.param("key"));
    if (value === undefined) return c.body(null, 404);
    return c.body(value.bytes, 200, { "content-type": value.contentType });
  });
  app.put("/kv/:key{.+}", async (c) => {
    const key = c.req.param("key");
    const status = map.has(key) ? 200 : 201;
    const bytes = new Uint8Array(await c.req.arrayBuffer());
    map.set(key, { bytes, contentType: c.req.header("content-type") ?? "text/plain" });
    return c.body(null, status);
  });
  return app;
}

/** Reads one `prefix:count:bytes` argument (keys `<prefix><6 digits>`, values of `bytes`). */
export function parseFill(arg: string): { prefix: string; count: number; valueBytes: number } {
  const match = /^([^:]+):(\d+):(\d+)$/.exec(arg);
  if (match === null) {
    throw new RangeError(`Cannot read fill "${arg}": expected prefix:count:bytes`);
  }
  return { prefix: match[1]!, count: Number(match[2]), valueBytes: Number(match[3]) };
}

/** A Map holding the keys and values the bench loads into a ringkv node. */
export function filledMap(fills: readonly string[]): Map<string, MapValue> {
  const map = new Map<string, MapValue>();
  const encoder = new TextEncoder();
  for (const { prefix, count, valueBytes } of fills.map(parseFill)) {
    for (let i = 0; i < count; i++) {
      const bytes = encoder.encode(benchValue(i, valueBytes));
      map.set(benchKey(prefix, i), { bytes, contentType: "text/plain" });
    }
  }
  return map;
}

if (import.meta.main) {
  const app = createHonoMapApp(filledMap(Deno.args));
  Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(`hono map node listening on http://127.0.0.1:${port}`),
  }, app.fetch);
}
