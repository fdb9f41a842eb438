import { assertEquals } from "@std/assert";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import { openEngine } from "../engine/open_engine.ts";
import type { NodeEngine } from "../engine/engine.ts";
import type { Range } from "../../shared/ring.ts";
import { digestsOf } from "./digest_routes.ts";

const encoder = new TextEncoder();

/** The digest as docs/internal-api.md defines it, computed the plain way. */
async function reference(engine: NodeEngine, ranges: readonly Range[]) {
  const keys = engine.scanKeys(ranges).sort();
  const text = keys.map((key) => `${key}\0${engine.peek(key)!.version}\n`).join("");
  const sum = new Uint8Array(await crypto.subtle.digest("SHA-1", encoder.encode(text)));
  return {
    count: keys.length,
    hash: [...sum].map((b) => b.toString(16).padStart(2, "0")).join(""),
  };
}

Deno.test("digestsOf() answers the documented digest per bucket from one pass over the store", async () => {
  const engine = await openEngine({
    disk: createFakeDisk(),
    id: "n1",
    hashKey: (key) => Promise.resolve((Number(key.slice(1)) * 7919) % 4096),
  });
  try {
    const value = encoder.encode("v");
    await engine.write(
      Array.from({ length: 300 }, (_, i) => ({ op: "put", key: `k${i}`, value, contentType: "t" })),
    );
    await engine.write([{ op: "delete", key: "k7" }]);
    const buckets = Array.from({ length: 32 }, (_, b) => [
      { start: b * 64, end: b * 64 + 64 },
      { start: 2048 + b * 64, end: 2048 + b * 64 + 64 },
    ]);
    const calls = { scanKeys: 0, scanBuckets: 0 };
    const counted = new Proxy(engine, {
      get(target, name) {
        if (name === "scanKeys" || name === "scanBuckets") calls[name]++;
        const member = Reflect.get(target, name);
        return typeof member === "function" ? member.bind(target) : member;
      },
    });
    const digests = await digestsOf(counted, buckets);
    // A scan of the whole store per bucket is what made every sweep stall the writes.
    assertEquals(calls, { scanKeys: 0, scanBuckets: 1 });
    const expected = [];
    for (const ranges of buckets) expected.push(await reference(engine, ranges));
    assertEquals(digests, expected);
    assertEquals(digests.reduce((n, d) => n + d.count, 0), 300);
  } finally {
    await engine.close();
  }
});
