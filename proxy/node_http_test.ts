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

/** A raw server: for each connection, `script` reads the request and writes what it wants. */
function rawServer(script: (conn: Deno.Conn, n: number) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let n = 0;
  const conns: Deno.Conn[] = [];
  const serving = (async () => {
    for await (const conn of listener) {
      conns.push(conn);
      void script(conn, n++).catch(() => {});
    }
  })();
  return {
    url: `http://127.0.0.1:${(listener.addr as Deno.NetAddr).port}`,
    connections: () => n,
    async close() {
      listener.close();
      await serving.catch(() => {});
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed already */ }
      }
    },
  };
}

async function readRequest(conn: Deno.Conn): Promise<void> {
  const buf = new Uint8Array(4096);
  let text = "";
  while (!text.includes("\r\n\r\n")) {
    const n = await conn.read(buf);
    if (n === null) return;
    text += new TextDecoder().decode(buf.subarray(0, n));
  }
}

const write = (conn: Deno.Conn, text: string) => conn.write(new TextEncoder().encode(text));

Deno.test("NodeHttp skips an interim 1xx answer and never reuses a connection with bytes past the answer", async () => {
  const server = rawServer(async (conn) => {
    for (;;) {
      await readRequest(conn);
      await write(
        conn,
        "HTTP/1.1 103 Early Hints\r\nlink: </x>\r\n\r\n" +
          "HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nokSTRAY",
      );
    }
  });
  const http = new NodeHttp();
  try {
    for (let i = 0; i < 2; i++) {
      const answer = await http.call({
        method: "GET",
        url: server.url,
        headers: {},
        timeoutMs: 5000,
      });
      assertEquals([answer.status, answer.text], [200, "ok"]);
    }
    assertEquals(server.connections(), 2, "the out-of-step connection was not reused");
  } finally {
    http.close();
    await server.close();
  }
});

Deno.test("NodeHttp times out an answer without a length that stalls, instead of returning a cut body", async () => {
  const server = rawServer(async (conn) => {
    await readRequest(conn);
    await write(conn, 'HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n\r\n{"results":[');
  });
  const http = new NodeHttp();
  try {
    const err = await assertRejects(() =>
      http.call({ method: "GET", url: server.url, headers: {}, timeoutMs: 300 })
    );
    assert(err instanceof DOMException && err.name === "TimeoutError", String(err));
  } finally {
    http.close();
    await server.close();
  }
});

Deno.test("NodeHttp gives up on a connect that is not answered when the call's time is up", async () => {
  // A listener that never accepts: once its queue is full, connects wait for the OS (minutes).
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  const held: Deno.Conn[] = [];
  const http = new NodeHttp();
  try {
    for (let i = 0; i < 4096; i++) {
      const attempt = Deno.connect({ hostname: "127.0.0.1", port });
      const conn = await Promise.race([
        attempt,
        new Promise<null>((r) => setTimeout(r, 200, null)),
      ]);
      if (conn === null) {
        attempt.then((c) => c.close(), () => {});
        break; // the queue is full
      }
      held.push(conn);
    }
    const started = Date.now();
    const err = await assertRejects(() =>
      http.call({ method: "GET", url: `http://127.0.0.1:${port}/`, headers: {}, timeoutMs: 300 })
    );
    assert(err instanceof DOMException && err.name === "TimeoutError", String(err));
    assert(Date.now() - started < 5000);
  } finally {
    http.close();
    for (const conn of held) conn.close();
    listener.close();
  }
});

Deno.test("NodeHttp accepts a node URL with the scheme in capitals", async () => {
  const { server, url } = recordingServer(() => new Response("ok"));
  const http = new NodeHttp();
  try {
    const answer = await http.call({
      method: "GET",
      url: url.replace("http://", "HTTP://"),
      headers: {},
      timeoutMs: 5000,
    });
    assertEquals(answer.text, "ok");
  } finally {
    http.close();
    await server.shutdown();
  }
});
