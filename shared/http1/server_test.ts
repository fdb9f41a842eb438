import { keyPathRefusal } from "../keys.ts";
import { assert, assertEquals, assertMatch } from "@std/assert";
import type { FastHandler } from "./fast.ts";
import { type Http1Handler, type Http1Options, type Http1Server, serveHttp1 } from "./server.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
/** Longest any test waits for a byte or a close: generous, for a loaded machine. */
const WAIT_MS = 5000;

/** Runs `fn` against a server on a free port of 127.0.0.1, shut down afterwards. */
async function withServer(
  handler: Http1Handler,
  fn: (port: number, server: Http1Server) => Promise<void>,
  options: Partial<Http1Options> & { fast?: FastHandler } = {},
): Promise<void> {
  const { fast, ...rest } = options;
  const server = serveHttp1(
    {
      hostname: "127.0.0.1",
      port: 0,
      limits: { maxUrlBytes: 8192, maxHeaderBytes: 16384 },
      ...rest,
    },
    handler,
    fast,
  );
  try {
    await fn(server.addr.port, server);
  } finally {
    await server.shutdown();
  }
}

/** One response as read off the wire. */
interface Answer {
  status: number;
  /** Header names in lower case; a repeated header keeps its last value. */
  headers: Map<string, string>;
  body: Uint8Array;
  text: string;
}

/** A raw HTTP/1.1 client connection that reads responses one by one. */
class RawClient {
  #buf = new Uint8Array(0);
  #closed = false;

  private constructor(private readonly conn: Deno.Conn) {}

  static async open(port: number): Promise<RawClient> {
    return new RawClient(await Deno.connect({ hostname: "127.0.0.1", port }));
  }

  async send(data: string | Uint8Array): Promise<void> {
    const bytes = typeof data === "string" ? encoder.encode(data) : data;
    for (let at = 0; at < bytes.byteLength;) at += await this.conn.write(bytes.subarray(at));
  }

  /** Reads the next response (an interim 1xx one too); `head`: it answers a HEAD request. */
  async response(head = false): Promise<Answer> {
    let end = this.#find("\r\n\r\n");
    while (end === -1) {
      if (!(await this.#more())) {
        throw new Error(`the server closed before a whole head: ${this.#text()}`);
      }
      end = this.#find("\r\n\r\n");
    }
    const lines = decoder.decode(this.#take(end + 4)).slice(0, -4).split("\r\n");
    const status = Number(/^HTTP\/1\.1 (\d{3}) /.exec(lines[0]!)?.[1]);
    assert(Number.isInteger(status), `not a status line: ${lines[0]}`);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(":");
      headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
    }
    let body: Uint8Array;
    if (head || status < 200 || status === 204 || status === 304) body = new Uint8Array(0);
    else if (headers.get("transfer-encoding") === "chunked") body = await this.#chunked();
    else if (headers.has("content-length")) {
      body = await this.#bytes(Number(headers.get("content-length")));
    } else body = await this.#rest();
    return { status, headers, body, text: decoder.decode(body) };
  }

  /** Whether the server closes the connection without sending anything more. */
  async closesEmpty(): Promise<boolean> {
    return !(await this.#more()) && this.#buf.length === 0;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.conn.close();
  }

  /** Reads more bytes; false at the end of the stream. Throws after WAIT_MS of silence. */
  async #more(): Promise<boolean> {
    const chunk = new Uint8Array(64 * 1024);
    let timedOut = false;
    const timer = setTimeout(() => (timedOut = true, this.close()), WAIT_MS);
    let n: number | null;
    try {
      n = await this.conn.read(chunk);
    } catch (err) {
      if (timedOut) throw new Error(`the server sent nothing for ${WAIT_MS} ms: ${this.#text()}`);
      if (!(err instanceof Deno.errors.ConnectionReset)) throw err;
      n = null;
    } finally {
      clearTimeout(timer);
    }
    if (n === null) return false;
    const next = new Uint8Array(this.#buf.length + n);
    next.set(this.#buf);
    next.set(chunk.subarray(0, n), this.#buf.length);
    this.#buf = next;
    return true;
  }

  #find(text: string): number {
    return decoder.decode(this.#buf).indexOf(text);
  }

  #text(): string {
    return JSON.stringify(decoder.decode(this.#buf));
  }

  #take(n: number): Uint8Array {
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.slice(n);
    return out;
  }

  async #bytes(n: number): Promise<Uint8Array> {
    while (this.#buf.length < n) {
      if (!(await this.#more())) throw new Error(`the server closed in a body: ${this.#text()}`);
    }
    return this.#take(n);
  }

  async #line(): Promise<string> {
    while (this.#find("\r\n") === -1) {
      if (!(await this.#more())) throw new Error(`the server closed in a chunk: ${this.#text()}`);
    }
    return decoder.decode(this.#take(this.#find("\r\n") + 2)).slice(0, -2);
  }

  async #chunked(): Promise<Uint8Array> {
    const parts: number[] = [];
    // Bounded: every round consumes a chunk, and reading stops at the server's close.
    for (;;) {
      const size = parseInt(await this.#line(), 16);
      if (size === 0) break;
      parts.push(...await this.#bytes(size));
      assertEquals(await this.#line(), "");
    }
    assertEquals(await this.#line(), "");
    return Uint8Array.from(parts);
  }

  async #rest(): Promise<Uint8Array> {
    while (await this.#more());
    return this.#take(this.#buf.length);
  }
}

/** Runs `fn` with a raw connection to `port`, closed afterwards. */
async function withClient(port: number, fn: (client: RawClient) => Promise<void>): Promise<void> {
  const client = await RawClient.open(port);
  try {
    await fn(client);
  } finally {
    client.close();
  }
}

/** Polls `check` every 10 ms until it holds, for at most WAIT_MS. */
async function until(check: () => boolean, what: string): Promise<void> {
  for (const started = Date.now(); !check();) {
    if (Date.now() - started > WAIT_MS) throw new Error(`${what} did not happen in ${WAIT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** The error code of a JSON error answer. */
function codeOf(answer: Answer): string {
  return JSON.parse(answer.text).error.code;
}

/** Answers with the method, the URL and the body it read. */
const echo: Http1Handler = async (req) => {
  const body = req.body === null ? "" : await req.text();
  return new Response(`${req.method} ${new URL(req.url).pathname} ${body}`);
};

const GET = (path: string, extra = "") => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;
const POST = (path: string, body: string, extra = "") =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`;

Deno.test("serveHttp1() answers several requests one after the other on a kept-alive connection", async () => {
  await withServer(echo, async (port, server) => {
    await withClient(port, async (client) => {
      for (const path of ["/a", "/b", "/c"]) {
        await client.send(GET(path));
        const answer = await client.response();
        assertEquals([answer.status, answer.text], [200, `GET ${path} `]);
        assertEquals(answer.headers.get("connection"), "keep-alive");
        assertEquals(answer.headers.get("content-length"), String(answer.body.length));
        assertMatch(answer.headers.get("date")!, /GMT$/);
      }
      assertEquals(server.connections(), 1);
    });
  });
});

Deno.test("serveHttp1() answers pipelined requests sent in one write, in order", async () => {
  await withServer(echo, async (port) => {
    await withClient(port, async (client) => {
      await client.send(GET("/1") + POST("/2", "two") + GET("/3", "Connection: close\r\n"));
      assertEquals((await client.response()).text, "GET /1 ");
      assertEquals((await client.response()).text, "POST /2 two");
      const last = await client.response();
      assertEquals([last.text, last.headers.get("connection")], ["GET /3 ", "close"]);
      assert(await client.closesEmpty());
    });
  });
});

Deno.test("serveHttp1() streams a Content-Length body larger than its buffer to the handler", async () => {
  const body = Uint8Array.from({ length: 200 * 1024 }, (_, i) => (i * 7) % 251);
  const handler: Http1Handler = async (req) => new Response(await req.bytes());
  await withServer(handler, async (port) => {
    await withClient(port, async (client) => {
      await client.send(`PUT /big HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n`);
      await client.send(body);
      const answer = await client.response();
      assertEquals([answer.status, answer.body], [200, body]);
      await client.send(GET("/after"));
      assertEquals((await client.response()).status, 200);
    });
    const res = await fetch(`http://127.0.0.1:${port}/big`, { method: "PUT", body });
    assertEquals(await res.bytes(), body);
  });
});

Deno.test("serveHttp1() decodes a chunked body with extensions and trailers, and keeps the connection", async () => {
  await withServer(echo, async (port) => {
    await withClient(port, async (client) => {
      await client.send(
        "POST /c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" +
          '5;name=value\r\nhello\r\n6 ; a ; b="c"\r\n world\r\nA\r\n, 10 bytes\r\n' +
          "0\r\nX-Checksum: 1\r\nX-Other: 2\r\n\r\n",
      );
      const answer = await client.response();
      assertEquals([answer.status, answer.text], [200, "POST /c hello world, 10 bytes"]);
      assertEquals(answer.headers.get("connection"), "keep-alive");
      await client.send(GET("/next"));
      assertEquals((await client.response()).text, "GET /next ");
    });
    const stream = ReadableStream.from([encoder.encode("from "), encoder.encode("fetch")]);
    const res = await fetch(`http://127.0.0.1:${port}/f`, { method: "POST", body: stream });
    assertEquals(await res.text(), "POST /f from fetch");
  });
});

Deno.test("serveHttp1() sends 100 Continue only once the handler reads the body", async () => {
  let reading = false;
  const handler: Http1Handler = async (req) => {
    reading = true;
    return new Response(`got ${await req.text()}`);
  };
  await withServer(handler, async (port) => {
    await withClient(port, async (client) => {
      await client.send(
        "PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n",
      );
      const interim = await client.response();
      assertEquals([interim.status, reading], [100, true]);
      await client.send("body");
      const answer = await client.response();
      assertEquals([answer.status, answer.text], [200, "got body"]);
      assertEquals(answer.headers.get("connection"), "keep-alive");
    });
  });
});

Deno.test("serveHttp1() answers a handler that refuses an expected body without a 100, and closes", async () => {
  const handler: Http1Handler = () => new Response("too big", { status: 413 });
  await withServer(handler, async (port) => {
    await withClient(port, async (client) => {
      await client.send(
        "PUT /e HTTP/1.1\r\nHost: x\r\nContent-Length: 99999\r\nExpect: 100-continue\r\n\r\n",
      );
      const answer = await client.response();
      assertEquals([answer.status, answer.text], [413, "too big"]);
      assertEquals(answer.headers.get("connection"), "close");
      assert(await client.closesEmpty());
    });
  });
});

/** A response whose body is three chunks from a stream. */
const streaming: Http1Handler = () =>
  new Response(ReadableStream.from(["one ", "two ", "three"].map((t) => encoder.encode(t))));

Deno.test("serveHttp1() sends a streamed body chunked to HTTP/1.1 clients and keeps the connection", async () => {
  await withServer(streaming, async (port) => {
    await withClient(port, async (client) => {
      await client.send(GET("/s"));
      const answer = await client.response();
      assertEquals(answer.headers.get("transfer-encoding"), "chunked");
      assertEquals(answer.headers.has("content-length"), false);
      assertEquals([answer.text, answer.headers.get("connection")], [
        "one two three",
        "keep-alive",
      ]);
      await client.send(GET("/again"));
      assertEquals((await client.response()).text, "one two three");
    });
  });
});

Deno.test("serveHttp1() ends a streamed body to an HTTP/1.0 client by closing the connection", async () => {
  await withServer(streaming, async (port) => {
    await withClient(port, async (client) => {
      await client.send("GET /s HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
      const answer = await client.response();
      assertEquals(answer.headers.has("transfer-encoding"), false);
      assertEquals(answer.headers.has("content-length"), false);
      assertEquals([answer.text, answer.headers.get("connection")], ["one two three", "close"]);
    });
  });
});

Deno.test("serveHttp1() answers HEAD with headers only and the handler's Content-Length", async () => {
  const handler: Http1Handler = () =>
    new Response("hello", { headers: { "content-length": "5", "x-kind": "greeting" } });
  await withServer(handler, async (port) => {
    await withClient(port, async (client) => {
      await client.send("HEAD /h HTTP/1.1\r\nHost: x\r\n\r\n");
      const answer = await client.response(true);
      assertEquals([answer.status, answer.headers.get("content-length")], [200, "5"]);
      assertEquals(answer.headers.get("x-kind"), "greeting");
      // Had the body been sent, it would be read as the next response's head.
      await client.send(GET("/g"));
      assertEquals((await client.response()).text, "hello");
    });
  });
});

Deno.test("serveHttp1() answers 204 without a body or a Content-Length", async () => {
  const handler: Http1Handler = (req) =>
    new URL(req.url).pathname === "/none" ? new Response(null, { status: 204 }) : echo(req, {
      remoteAddr: { transport: "tcp", hostname: "", port: 0 },
    });
  await withServer(handler, async (port) => {
    await withClient(port, async (client) => {
      await client.send(GET("/none") + GET("/some"));
      const none = await client.response();
      assertEquals([none.status, none.headers.has("content-length")], [204, false]);
      assertEquals((await client.response()).text, "GET /some ");
    });
  });
});

Deno.test("serveHttp1() answers 408 to a head that does not arrive within headerMs, and closes", async () => {
  await withServer(echo, async (port) => {
    await withClient(port, async (client) => {
      await client.send("GET / HTTP/1.1\r\nHo");
      const answer = await client.response();
      assertEquals([answer.status, codeOf(answer)], [408, "request_timeout"]);
      assertEquals(answer.headers.get("connection"), "close");
      assert(await client.closesEmpty());
    });
  }, { timeouts: { headerMs: 300 } });
});

Deno.test("serveHttp1() closes a connection that sends nothing within headerMs, without an answer", async () => {
  await withServer(echo, async (port, server) => {
    await withClient(port, async (client) => {
      assert(await client.closesEmpty());
    });
    await until(() => server.connections() === 0, "the close");
  }, { timeouts: { headerMs: 300 } });
});

Deno.test("serveHttp1() closes a kept-alive connection idle for idleMs", async () => {
  await withServer(echo, async (port) => {
    await withClient(port, async (client) => {
      await client.send(GET("/a"));
      assertEquals((await client.response()).headers.get("connection"), "keep-alive");
      assert(await client.closesEmpty());
    });
  }, { timeouts: { idleMs: 300 } });
});

Deno.test("serveHttp1() answers 408 to a small body that does not arrive within bodyMs, and closes", async () => {
  let calls = 0;
  const fast: FastHandler = () => (calls++, null);
  await withServer(echo, async (port) => {
    await withClient(port, async (client) => {
      await client.send("PUT /kv/a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
      const answer = await client.response();
      assertEquals([answer.status, codeOf(answer)], [408, "request_timeout"]);
      assertMatch(JSON.parse(answer.text).error.message, /body did not arrive within 300 ms/);
      assert(await client.closesEmpty());
    });
  }, { fast, timeouts: { bodyMs: 300 } });
  assertEquals(calls, 0);
});

Deno.test("serveHttp1() answers 503 with Retry-After past maxConnections and closes", async () => {
  await withServer(echo, async (port, server) => {
    await withClient(port, async (first) => {
      await until(() => server.connections() === 1, "the first connection");
      await withClient(port, async (second) => {
        const answer = await second.response();
        assertEquals([answer.status, codeOf(answer)], [503, "unavailable"]);
        assertEquals(answer.headers.get("retry-after"), "1");
        assertEquals(answer.headers.get("connection"), "close");
        assert(await second.closesEmpty());
      });
      await first.send(GET("/still"));
      assertEquals((await first.response()).text, "GET /still ");
    });
  }, { maxConnections: 1 });
});

Deno.test("serveHttp1() shutdown() closes idle connections and lets an answer in progress finish", async () => {
  const entered = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const handler: Http1Handler = async (req) => {
    if (new URL(req.url).pathname !== "/slow") return new Response("quick");
    entered.resolve();
    await release.promise;
    return new Response("slow done");
  };
  await withServer(handler, async (port, server) => {
    await withClient(port, async (idle) => {
      await withClient(port, async (busy) => {
        await idle.send(GET("/quick"));
        assertEquals((await idle.response()).text, "quick");
        await busy.send(GET("/slow"));
        await entered.promise;
        const stopped = server.shutdown();
        assert(await idle.closesEmpty());
        release.resolve();
        assertEquals((await busy.response()).text, "slow done");
        assert(await busy.closesEmpty());
        await stopped;
        assertEquals(server.connections(), 0);
      });
    });
  });
});

Deno.test("serveHttp1() answers from the fast path when it answers, and from the handler with the body intact when it declines", async () => {
  const seen: string[] = [];
  const fast: FastHandler = (req) => {
    seen.push(`${req.method} ${req.path} ${decoder.decode(req.body)}`);
    if (req.path !== "/fast") return null;
    return { status: 201, headers: { "x-path": "fast" }, body: `fast ${req.header("x-a")}` };
  };
  await withServer(echo, async (port) => {
    await withClient(port, async (client) => {
      await client.send(GET("/fast?q=1", "X-A: 1\r\nX-A: 2\r\n") + POST("/slow", "the body"));
      const quick = await client.response();
      assertEquals([quick.status, quick.text, quick.headers.get("x-path")], [
        201,
        "fast 1, 2",
        "fast",
      ]);
      assertEquals(quick.headers.get("content-length"), "9");
      assertEquals(quick.headers.get("connection"), "keep-alive");
      assertEquals((await client.response()).text, "POST /slow the body");
    });
  }, { fast });
  assertEquals(seen, ["GET /fast ", "POST /slow the body"]);
});

Deno.test("serveHttp1() writes a fast answer's text as UTF-8 with its length in bytes", async () => {
  const bodies: Record<string, string | Uint8Array> = {
    "/ascii": "plain",
    "/utf8": "h\u00e9llo \u{1F600}",
    "/bytes": new Uint8Array([0x68, 0x69]),
    "/empty": "",
  };
  const fast: FastHandler = (req) => ({ status: 200, headers: {}, body: bodies[req.path]! });
  await withServer(echo, async (port) => {
    await withClient(port, async (client) => {
      await client.send(GET("/ascii") + GET("/utf8") + GET("/bytes") + GET("/empty"));
      const got = [];
      for (let i = 0; i < 4; i++) {
        const r = await client.response();
        got.push([r.text, r.headers.get("content-length")]);
      }
      assertEquals(got, [["plain", "5"], ["h\u00e9llo \u{1F600}", "11"], ["hi", "2"], ["", "0"]]);
    });
  }, { fast });
});

Deno.test("serveHttp1() lets a fast handler take longer than headerMs: a slow answer is not a slow client", async () => {
  const fast: FastHandler = async (req) => {
    await new Promise((r) => setTimeout(r, 700));
    return { status: 200, headers: {}, body: `slow ${req.method} ${req.body.byteLength}` };
  };
  await withServer(() => new Response("slow path"), async (port) => {
    await withClient(port, async (client) => {
      await client.send("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
      assertEquals((await client.response()).text, "slow GET 0");
      await client.send("PUT /a HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
      assertEquals((await client.response()).text, "slow PUT 3");
    });
  }, { fast, timeouts: { headerMs: 300, bodyMs: 300 } });
});

Deno.test("serveHttp1() ignores empty lines before a request line", async () => {
  await withServer(() => new Response("ok"), async (port) => {
    await withClient(port, async (client) => {
      await client.send("\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
      assertEquals((await client.response()).text, "ok");
      await client.send("GET / HTTP/1.1\r\nHost: x\r\n\r\n\r\n");
      assertEquals((await client.response()).text, "ok");
    });
  });
});

Deno.test("serveHttp1() cancels a streamed answer's source when the client leaves mid-stream", async () => {
  const canceled = Promise.withResolvers<void>();
  const handler: Http1Handler = () =>
    new Response(
      new ReadableStream<Uint8Array>({
        async pull(controller) {
          await new Promise((r) => setTimeout(r, 5));
          controller.enqueue(new Uint8Array(64 * 1024));
        },
        cancel() {
          canceled.resolve();
        },
      }),
    );
  await withServer(handler, async (port) => {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    await conn.write(encoder.encode("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
    await conn.read(new Uint8Array(1024));
    conn.close();
    const timer = setTimeout(() => canceled.reject(new Error("not canceled")), WAIT_MS);
    try {
      await canceled.promise;
    } finally {
      clearTimeout(timer);
    }
  });
});

Deno.test("serveHttp1() answers 500 internal with the JSON body when the handler throws", async () => {
  const logged: unknown[] = [];
  const error = console.error;
  console.error = (...args: unknown[]) => logged.push(args);
  try {
    await withServer(() => Promise.reject(new Error("bug")), async (port) => {
      await withClient(port, async (client) => {
        await client.send(GET("/boom"));
        const answer = await client.response();
        assertEquals([answer.status, codeOf(answer)], [500, "internal"]);
        assertEquals(answer.headers.get("content-type"), "application/json");
        await client.send(GET("/again"));
        assertEquals((await client.response()).status, 500);
      });
    });
  } finally {
    console.error = error;
  }
  assertEquals(logged.length, 2);
});

Deno.test("serveHttp1() answers 400 to a broken chunked body, whatever the handler said, and closes", async () => {
  const handler: Http1Handler = async (req) => {
    await req.text().catch(() => {});
    return new Response("read it");
  };
  await withServer(handler, async (port) => {
    for (
      const broken of [
        "zz\r\n",
        "3\r\nabcd\r\n",
        "3\nabc\r\n",
        "3\r\nabc\r\n0\r\n" + "x".repeat(1100) + "\r\n",
      ]
    ) {
      await withClient(port, async (client) => {
        await client.send(
          `POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n${broken}`,
        );
        const answer = await client.response();
        assertEquals([answer.status, codeOf(answer)], [400, "bad_request"], broken);
        assertEquals(answer.headers.get("connection"), "close");
        assert(await client.closesEmpty());
      });
    }
  });
});

Deno.test("serveHttp1() keeps the handler's 408 when body bytes arrive after it gave up on the body", async () => {
  const bytesSent = Promise.withResolvers<void>();
  const handler: Http1Handler = async (req) => {
    const reader = req.body!.getReader();
    const reading = reader.read(); // a read in progress when the handler gives up
    await new Promise((r) => setTimeout(r, 50));
    await reader.cancel();
    await reading;
    await bytesSent.promise; // the in-progress read gets its bytes now
    await new Promise((r) => setTimeout(r, 100));
    return new Response("too slow", { status: 408 });
  };
  await withServer(handler, async (port) => {
    await withClient(port, async (client) => {
      // 20 KiB declared: past what is read with the head, so the body is streamed.
      await client.send("PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 20480\r\n\r\n");
      await new Promise((r) => setTimeout(r, 100));
      await client.send("abc");
      bytesSent.resolve();
      const answer = await client.response();
      assertEquals([answer.status, answer.text], [408, "too slow"]);
    });
  });
});

Deno.test("serveHttp1() refuses a dot segment in the path instead of resolving it", async () => {
  let calls = 0;
  const handler: Http1Handler = () => (calls++, new Response("reached"));
  const cases = [
    ["/kv/a/../b", "invalid_key"],
    ["/kv/%2e%2E/b", "invalid_key"],
    ["/kv/./a", "invalid_key"],
    ["/admin/../kv/a", "bad_request"],
    ["/x/.", "bad_request"],
    ["http://x/kv/../admin", "invalid_key"],
    ["http://x/a/../kv/b", "bad_request"],
  ];
  // With the apps' refusal (keys get their own error), and without one (a plain 400).
  for (const dotSegment of [keyPathRefusal, undefined]) {
    await withServer(handler, async (port) => {
      for (const [path, code] of cases) {
        await withClient(port, async (client) => {
          await client.send(GET(path!));
          const answer = await client.response();
          const expected = dotSegment === undefined ? "bad_request" : code;
          assertEquals([answer.status, codeOf(answer)], [400, expected], path);
        });
      }
    }, dotSegment === undefined ? {} : { dotSegment });
  }
  assertEquals(calls, 0);
});

Deno.test("serveHttp1() keeps a backslash of the target in req.url, percent-encoded", async () => {
  const urls: string[] = [];
  const handler: Http1Handler = (req) => (urls.push(req.url), new Response("ok"));
  await withServer(handler, async (port) => {
    await withClient(port, async (client) => {
      await client.send(GET("/kv/a\\b?x=\\") + GET("http://other:1/kv/c\\d"));
      assertEquals((await client.response()).status, 200);
      assertEquals((await client.response()).status, 200);
    });
  });
  assertEquals(urls, ["http://x/kv/a%5Cb?x=%5C", "http://other:1/kv/c%5Cd"]);
});

Deno.test("serveHttp1() answers a malformed or oversized head with the JSON error body, and closes", async () => {
  let calls = 0;
  const handler: Http1Handler = () => (calls++, new Response("reached"));
  // maxHeadBytes is 100 + 200 + 64: a head that long without its end is refused unread.
  const limits = { maxUrlBytes: 100, maxHeaderBytes: 200 };
  const line = "GET / HTTP/1.1\r\nHost: x\r\n";
  const rows: [string, number, string][] = [
    ["GET /" + "a".repeat(359), 414, "uri_too_long"],
    [line + "X-A: " + "v".repeat(364 - line.length - 5), 431, "headers_too_large"],
    [GET("/" + "a".repeat(100)), 414, "uri_too_long"],
    [`${line}X-A: ${"v".repeat(200)}\r\n\r\n`, 431, "headers_too_large"],
    ["GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505, "http_version_not_supported"],
    [line + "Transfer-Encoding: gzip\r\n\r\n", 501, "not_implemented"],
    [line + "Content-Length: 1\r\nContent-Length: 1\r\n\r\n", 400, "invalid_header"],
    ["GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400, "bad_request"],
    ["OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400, "bad_request"],
    [GET("/a#b"), 400, "bad_request"],
    ["TRACE / HTTP/1.1\r\nHost: x\r\n\r\n", 405, "method_not_allowed"],
  ];
  await withServer(handler, async (port) => {
    for (const [sent, status, code] of rows) {
      await withClient(port, async (client) => {
        await client.send(sent);
        const answer = await client.response();
        assertEquals([answer.status, codeOf(answer)], [status, code], sent.slice(0, 40));
        assertEquals(answer.headers.get("content-type"), "application/json");
        if (status !== 405) {
          assertEquals(answer.headers.get("connection"), "close");
          assert(await client.closesEmpty());
        }
      });
    }
  }, { limits });
  assertEquals(calls, 0);
});

/** Resolves after `ms`. */
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test("serveHttp1() gives sendMs to each write only, not to a handler pausing between chunks", async () => {
  const handler: Http1Handler = () => {
    const chunks = ["one ", "two ", "three"];
    return new Response(
      new ReadableStream({
        async pull(controller) {
          if (chunks.length === 1) await sleep(1200);
          const next = chunks.shift();
          if (next === undefined) controller.close();
          else controller.enqueue(encoder.encode(next));
        },
      }),
    );
  };
  await withServer(handler, async (port) => {
    await withClient(port, async (client) => {
      await client.send(GET("/s"));
      assertEquals((await client.response()).text, "one two three");
    });
  }, { timeouts: { sendMs: 300 } });
});

Deno.test("serveHttp1() gives the head after an idle wait headerMs from its first byte", async () => {
  await withServer(echo, async (port) => {
    await withClient(port, async (client) => {
      await client.send(GET("/first"));
      assertEquals((await client.response()).status, 200);
      await sleep(500);
      await client.send("GET /second HTTP/1.1\r\n");
      // Past the idle deadline of 2000 ms, well within headerMs of the head's first byte.
      await sleep(2000);
      await client.send("Host: x\r\n\r\n");
      const answer = await client.response();
      assertEquals([answer.status, answer.text], [200, "GET /second "]);
    });
  }, { timeouts: { idleMs: 2000, headerMs: 10_000 } });
});
