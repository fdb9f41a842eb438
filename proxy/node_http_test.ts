import { assert, assertEquals, assertRejects } from "@std/assert";
import { serveHttp1 } from "../shared/http1/server.ts";
import { NodeHttp } from "./node_http.ts";

const LIMITS = { maxUrlBytes: 8192, maxHeaderBytes: 16384 };

/** A server that records the client port of every request it answers. */
function recordingServer(
  answer: (req: Request) => Response | Promise<Response>,
  timeouts: { idleMs?: number } = {},
) {
  const ports: number[] = [];
  const server = serveHttp1(
    { hostname: "127.0.0.1", port: 0, limits: LIMITS, timeouts },
    (req, info) => {
      ports.push(info.remoteAddr.port);
      return answer(req);
    },
  );
  return { server, ports, url: `http://127.0.0.1:${server.addr.port}` };
}

Deno.test("NodeHttp sends the method, path, headers and body, and keeps one connection for calls in a row", async () => {
  const { server, ports, url } = recordingServer(async (req) =>
    new Response(
      JSON.stringify({
        method: req.method,
        path: new URL(req.url).pathname + new URL(req.url).search,
        auth: req.headers.get("authorization"),
        body: await req.text(),
      }),
      { status: 201 },
    )
  );
  const http = new NodeHttp();
  try {
    for (let i = 0; i < 3; i++) {
      const answer = await http.call({
        method: "POST",
        url: `${url}/internal/batch?x=${i}`,
        headers: { authorization: "Bearer s", "content-type": "application/json" },
        body: `{"n":"é${i}"}`,
        timeoutMs: 5000,
      });
      assertEquals(answer.status, 201);
      assertEquals(JSON.parse(answer.text), {
        method: "POST",
        path: `/internal/batch?x=${i}`,
        auth: "Bearer s",
        body: `{"n":"é${i}"}`,
      });
    }
    assertEquals(new Set(ports).size, 1, "one kept-alive connection");
  } finally {
    http.close();
    await server.shutdown();
  }
});

Deno.test("NodeHttp reads a chunked answer and error statuses with their bodies", async () => {
  const { server, url } = recordingServer((req) => {
    if (req.url.endsWith("/stream")) {
      const parts = ["ab", "cd", "é"];
      return new Response(
        new ReadableStream({
          pull(controller) {
            const next = parts.shift();
            if (next === undefined) controller.close();
            else controller.enqueue(new TextEncoder().encode(next));
          },
        }),
      );
    }
    return new Response('{"error":{"code":"stale_epoch"}}', { status: 409 });
  });
  const http = new NodeHttp();
  try {
    const streamed = await http.call({
      method: "GET",
      url: `${url}/stream`,
      headers: {},
      timeoutMs: 5000,
    });
    assertEquals([streamed.status, streamed.text], [200, "abcdé"]);
    const refused = await http.call({
      method: "GET",
      url: `${url}/x`,
      headers: {},
      timeoutMs: 5000,
    });
    assertEquals([refused.status, JSON.parse(refused.text).error.code], [409, "stale_epoch"]);
  } finally {
    http.close();
    await server.shutdown();
  }
});

Deno.test("NodeHttp rejects with a TimeoutError when a node does not answer in time, and does not reuse that connection", async () => {
  const release = Promise.withResolvers<void>();
  const { server, ports, url } = recordingServer(async (req) => {
    if (req.url.endsWith("/slow")) await release.promise;
    return new Response("ok");
  });
  const http = new NodeHttp();
  try {
    const started = Date.now();
    const err = await assertRejects(() =>
      http.call({ method: "GET", url: `${url}/slow`, headers: {}, timeoutMs: 200 })
    );
    assert(err instanceof DOMException && err.name === "TimeoutError", String(err));
    assert(Date.now() - started < 5000);
    release.resolve();
    const ok = await http.call({ method: "GET", url: `${url}/fast`, headers: {}, timeoutMs: 5000 });
    assertEquals(ok.text, "ok");
    assertEquals(new Set(ports).size, 2, "a fresh connection after the timed-out one");
  } finally {
    release.resolve();
    http.close();
    await server.shutdown();
  }
});

Deno.test("NodeHttp sends again on a fresh connection when a node closed the idle one", async () => {
  const { server, ports, url } = recordingServer(() => new Response("ok"), { idleMs: 100 });
  const http = new NodeHttp();
  try {
    assertEquals(
      (await http.call({ method: "GET", url, headers: {}, timeoutMs: 5000 })).text,
      "ok",
    );
    await new Promise((r) => setTimeout(r, 600)); // the server closes it after 100 ms (+ sweep)
    assertEquals(
      (await http.call({ method: "GET", url, headers: {}, timeoutMs: 5000 })).text,
      "ok",
    );
    assertEquals(new Set(ports).size, 2);
  } finally {
    http.close();
    await server.shutdown();
  }
});

Deno.test("NodeHttp rejects when nothing listens", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  const http = new NodeHttp();
  await assertRejects(() =>
    http.call({ method: "GET", url: `http://127.0.0.1:${port}/`, headers: {}, timeoutMs: 2000 })
  );
  http.close();
});
