/**
 * Values keep their exact bytes through real processes on the proxy's batched path (one
 * replica): nodes answer UTF-8 text as text and other bytes as base64 (docs/internal-api.md),
 * and the proxy's fast path writes either into its answer.
 */
import { assertEquals } from "@std/assert";
import { ProcessCluster } from "./helpers/process_cluster.ts";

const encoder = new TextEncoder();

const VALUES: Record<string, Uint8Array<ArrayBuffer>> = {
  ascii: encoder.encode("plain"),
  utf8: encoder.encode("h\u00e9llo w\u00f6rld \u{1F600}"),
  bom: encoder.encode("\uFEFFstarts with a BOM"),
  nul: encoder.encode("a\u0000b\u0001c"),
  lines: encoder.encode('{"a": "b\\n"}\r\n\t"quoted"\\'),
  binary: new Uint8Array([0xff, 0x00, 0xfe, 0x80, 0xc3]),
  big: encoder.encode("\u00e9".repeat(3000)), // 6,000 bytes, not ASCII
  empty: new Uint8Array(0),
};

Deno.test("values keep their bytes through the proxy and its nodes: GET, HEAD, concurrent GETs", async () => {
  const cluster = await ProcessCluster.create();
  try {
    const proxy = await cluster.startAll(3);
    for (const [key, bytes] of Object.entries(VALUES)) {
      const put = await fetch(`${proxy.url}/kv/v/${key}`, {
        method: "PUT",
        body: bytes,
        signal: AbortSignal.timeout(10_000),
      });
      assertEquals(put.status, 201, `${key}: ${await put.text()}`);
    }
    // Concurrent GETs share batch calls; each answer must carry its own value.
    const got = await Promise.all(
      Object.keys(VALUES).map(async (key) => {
        const res = await fetch(`${proxy.url}/kv/v/${key}`, {
          signal: AbortSignal.timeout(10_000),
        });
        const bytes = new Uint8Array(await res.arrayBuffer());
        return [key, res.status, res.headers.get("content-length"), bytes] as const;
      }),
    );
    for (const [key, status, length, bytes] of got) {
      assertEquals([status, length], [200, String(VALUES[key]!.length)], key);
      assertEquals(bytes, VALUES[key]!, key);
    }
    for (const [key, bytes] of Object.entries(VALUES)) {
      const head = await fetch(`${proxy.url}/kv/v/${key}`, {
        method: "HEAD",
        signal: AbortSignal.timeout(10_000),
      });
      await head.body?.cancel();
      assertEquals(head.headers.get("content-length"), String(bytes.length), `HEAD ${key}`);
    }
  } finally {
    await cluster.stop();
  }
});
