import { assertEquals } from "@std/assert";
import { guard, headerBytes, targetLength } from "./guard.ts";
import { DEFAULT_REQUEST_LIMITS } from "./limits.ts";

const ok = () => new Response("ok");

async function codeOf(res: Response): Promise<string> {
  return (await res.json()).error.code;
}

Deno.test("guard() answers 414 uri_too_long past maxUrlBytes of path and query", async () => {
  const handler = guard(ok, { ...DEFAULT_REQUEST_LIMITS, maxUrlBytes: 10 });
  assertEquals((await handler(new Request("http://h:1/123456789"), {})).status, 200);
  const res = await handler(new Request("http://h:1/12345?x=12"), {});
  assertEquals([res.status, await codeOf(res)], [414, "uri_too_long"]);
  assertEquals(targetLength("http://host:80/a?b"), 4);
});

Deno.test("guard() answers 431 headers_too_large past maxHeaderBytes", async () => {
  const handler = guard(ok, { ...DEFAULT_REQUEST_LIMITS, maxHeaderBytes: 100 });
  const small = new Request("http://h/", { headers: { "x-a": "v".repeat(80) } });
  assertEquals(headerBytes(small.headers), 3 + 80 + 4);
  assertEquals((await handler(small, {})).status, 200);
  const big = new Request("http://h/", {
    headers: { "x-a": "v".repeat(50), "x-b": "w".repeat(50) },
  });
  const res = await handler(big, {});
  assertEquals([res.status, await codeOf(res), res.headers.get("connection")], [
    431,
    "headers_too_large",
    "close",
  ]);
});

Deno.test("guard() answers 503 with Retry-After past maxInFlight and counts finished requests out", async () => {
  const release = Promise.withResolvers<void>();
  const handler = guard(async () => {
    await release.promise;
    return new Response("done");
  }, { ...DEFAULT_REQUEST_LIMITS, maxInFlight: 2 });
  const held = [handler(new Request("http://h/1"), {}), handler(new Request("http://h/2"), {})];
  assertEquals(handler.inFlight(), 2);
  const busy = await handler(new Request("http://h/3"), {});
  assertEquals([busy.status, busy.headers.get("retry-after"), await codeOf(busy)], [
    503,
    "1",
    "unavailable",
  ]);
  release.resolve();
  for (const res of await Promise.all(held)) assertEquals(await res.text(), "done");
  assertEquals(handler.inFlight(), 0);
  assertEquals((await handler(new Request("http://h/4"), {})).status, 200);
});

Deno.test("guard() marks 408 and 413 answers connection: close", async () => {
  const fetched = await fetch("data:,x").then((r) => new Response(r.body, { status: 413 }));
  const handler = guard(() => fetched, DEFAULT_REQUEST_LIMITS);
  assertEquals((await handler(new Request("http://h/"), {})).headers.get("connection"), "close");
});

Deno.test("guard() refuses a Host header that is not a host (it would change the path Deno.serve builds)", async () => {
  const handler = guard(() => new Response("ok"), DEFAULT_REQUEST_LIMITS);
  const withHost = (host: string) => new Request("http://h/kv/a", { headers: { host } });
  assertEquals((await handler(withHost("x/kv/b"), {})).status, 400);
  assertEquals((await handler(withHost("x?y"), {})).status, 400);
  assertEquals((await handler(withHost("127.0.0.1:7000"), {})).status, 200);
  assertEquals((await handler(withHost("[::1]:7000"), {})).status, 200);
});

Deno.test("guard() refuses a Host header no URL can hold (a bad port, a lone %, an open [)", async () => {
  const handler = guard(() => new Response("ok"), DEFAULT_REQUEST_LIMITS);
  const withHost = (host: string, method: string) =>
    new Request("http://h/kv?prefix=a", { method, headers: { host } });
  for (const host of ["x:99999999", "%", "[::1", "x%zz"]) {
    assertEquals((await handler(withHost(host, "HEAD"), {})).status, 400, host);
    const res = await handler(withHost(host, "GET"), {});
    assertEquals(res.status, 400, host);
    assertEquals((await res.json()).error.code, "bad_request");
  }
});

/** The header block a raw HTTP/1.1 `request` gets from `handler` served by Deno.serve. */
async function servedHead(handler: Deno.ServeHandler, request: string): Promise<string> {
  const stop = new AbortController();
  const server = Deno.serve(
    { port: 0, hostname: "127.0.0.1", signal: stop.signal, onListen() {} },
    handler,
  );
  try {
    const conn = await Deno.connect({ port: server.addr.port, hostname: "127.0.0.1" });
    try {
      await conn.write(new TextEncoder().encode(request));
      let text = "";
      const buf = new Uint8Array(4096);
      for (let i = 0; i < 100 && !text.includes("\r\n\r\n"); i++) {
        const n = await conn.read(buf);
        if (n === null) break;
        text += new TextDecoder().decode(buf.subarray(0, n));
      }
      return text.split("\r\n\r\n")[0]!;
    } finally {
      conn.close();
    }
  } finally {
    stop.abort();
    await server.finished;
  }
}

Deno.test("guard() refusals of a request with an unread body say connection: close once", async () => {
  const refuse413 = () => Response.json({ error: { code: "x", message: "y" } }, { status: 413 });
  const handler = guard(refuse413, { ...DEFAULT_REQUEST_LIMITS, maxUrlBytes: 100 });
  const body = `\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabc`;
  for (const request of [`PUT /k HTTP/1.1${body}`, `PUT /${"k".repeat(200)} HTTP/1.1${body}`]) {
    const head = await servedHead(handler, request);
    assertEquals(head.match(/^connection: close$/gim)?.length, 1, head);
  }
});

Deno.test("guard() hands back an answer made in the same turn as is, and one made later after it", async () => {
  let later = false;
  const handler = guard(
    () => later ? Promise.resolve(new Response("later")) : new Response("now"),
    DEFAULT_REQUEST_LIMITS,
  );
  const now = handler(new Request("http://h/"), {});
  assertEquals(now instanceof Response, true, "no promise for an answer made in this turn");
  assertEquals([handler.inFlight(), await (now as Response).text()], [0, "now"]);
  later = true;
  const pending = handler(new Request("http://h/"), {});
  assertEquals([pending instanceof Promise, handler.inFlight()], [true, 1]);
  assertEquals([await (await pending).text(), handler.inFlight()], ["later", 0]);
});

Deno.test("guard() rejects a handler's throw and counts the request out", async () => {
  const handler = guard(() => {
    throw new RangeError("broken");
  }, DEFAULT_REQUEST_LIMITS);
  const answer = handler(new Request("http://h/"), {});
  assertEquals(handler.inFlight(), 0);
  let caught: unknown;
  await Promise.resolve(answer).catch((err) => caught = err);
  assertEquals((caught as Error).message, "broken");
});

Deno.test("guard() refuses a bad Host header after the same guard accepted a good one", async () => {
  const handler = guard(ok, DEFAULT_REQUEST_LIMITS);
  const withHost = (host: string) => new Request("http://h/", { headers: { host } });
  for (const host of ["a.example:80", "a.example:80", "x/kv/b", "a.example:80", "[::1"]) {
    const res = await handler(withHost(host), {});
    const bad = host === "x/kv/b" || host === "[::1";
    assertEquals(res.status, bad ? 400 : 200, host);
    await res.body?.cancel();
  }
});
