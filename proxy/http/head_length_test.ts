import { assert, assertEquals } from "@std/assert";
import { startCluster } from "../../tests/doubles/test_cluster.ts";

/** `Deno.serve` of `handler` on the first free port of 47100-47199 (the tests' range here). */
function serveInRange(handler: Deno.ServeHandler): Deno.HttpServer<Deno.NetAddr> {
  for (let port = 47100; port < 47200; port++) {
    try {
      return Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, handler);
    } catch (err) {
      if (!(err instanceof Deno.errors.AddrInUse)) throw err;
    }
  }
  throw new Error("Cannot serve the test proxy: ports 47100-47199 are all in use");
}

Deno.test("over Deno.serve, HEAD /watch has no Content-Length and HEAD /health has GET's", async () => {
  const c = await startCluster();
  const server = serveInRange((req) => c.proxy.fetch(req));
  const base = `http://127.0.0.1:${server.addr.port}`;
  try {
    const accept = { accept: "text/event-stream" };
    const head = await fetch(`${base}/watch`, { method: "HEAD", headers: accept });
    await head.body?.cancel();
    assertEquals(head.status, 200);
    assertEquals(head.headers.get("content-type"), "text/event-stream");
    assertEquals(head.headers.get("content-length"), null, "an event stream has no length");
    const get = await fetch(`${base}/health`);
    const length = (await get.arrayBuffer()).byteLength;
    const headHealth = await fetch(`${base}/health`, { method: "HEAD" });
    await headHealth.body?.cancel();
    assert(length > 0);
    assertEquals(headHealth.headers.get("content-length"), String(length));
  } finally {
    await server.shutdown();
    await c.close();
  }
});
