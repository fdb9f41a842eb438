import { assert, assertEquals, assertRejects } from "@std/assert";
import { readCappedBody } from "./capped_body.ts";
import { RingkvError } from "./errors.ts";
import { SlotTimers } from "./slot_timers.ts";

const seen: [number, boolean][] = [];
const tooLarge = (size: number, exact: boolean) => (
  seen.push([size, exact]), new RingkvError("value_too_large", `${size} bytes`)
);

function streamed(chunks: Uint8Array[], thenHang = false): Request {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const c of chunks) controller.enqueue(c);
      if (!thenHang) controller.close();
    },
  });
  return new Request("http://x/", { method: "PUT", body });
}

Deno.test("readCappedBody() returns the body within the cap", async () => {
  const bytes = await readCappedBody(
    streamed([new Uint8Array(3), new Uint8Array(4)]),
    7,
    tooLarge,
    "it",
    1000,
  );
  assertEquals(bytes.length, 7);
  assertEquals((await readCappedBody(new Request("http://x/"), 7, tooLarge, "it", 1000)).length, 0);
});

Deno.test("readCappedBody() refuses a declared length past the cap before reading, and a streamed body as it passes", async () => {
  seen.length = 0;
  const declared = new Request("http://x/", {
    method: "PUT",
    body: "x".repeat(10),
    headers: { "content-length": "10" },
  });
  await assertRejects(() => readCappedBody(declared, 5, tooLarge, "it", 1000), RingkvError);
  await assertRejects(
    () =>
      readCappedBody(
        streamed([new Uint8Array(4), new Uint8Array(4)], true),
        5,
        tooLarge,
        "it",
        1000,
      ),
    RingkvError,
  );
  assertEquals(seen, [[10, true], [8, false]]);
});

Deno.test("readCappedBody() answers a bad Content-Length with 400 and a stalled body with 408", async () => {
  const bad = new Request("http://x/", {
    method: "PUT",
    body: "x",
    headers: { "content-length": "1x" },
  });
  const err = await assertRejects(() => readCappedBody(bad, 5, tooLarge, "it", 1000), RingkvError);
  assertEquals(err.code, "invalid_header");
  const stalled = await assertRejects(
    () => readCappedBody(streamed([new Uint8Array(1)], true), 5, tooLarge, "it", 50),
    RingkvError,
  );
  assertEquals(stalled.code, "request_timeout");
});

Deno.test("readCappedBody() with SlotTimers answers a stalled body with 408 and a prompt one as without", async () => {
  const timers = new SlotTimers(50);
  const started = performance.now();
  const stalled = await assertRejects(
    () => readCappedBody(streamed([new Uint8Array(1)], true), 5, tooLarge, "it", timers),
    RingkvError,
  );
  assertEquals(stalled.code, "request_timeout");
  assertEquals(
    stalled.message,
    "Cannot read it: the body did not arrive within 50 ms (--body-timeout-ms)",
  );
  assert(performance.now() - started >= 49);
  const chunks = [new Uint8Array([1, 2]), new Uint8Array([3])];
  assertEquals(
    await readCappedBody(streamed(chunks), 5, tooLarge, "it", timers),
    new Uint8Array([1, 2, 3]),
  );
  seen.length = 0;
  await assertRejects(
    () =>
      readCappedBody(
        streamed([new Uint8Array(4), new Uint8Array(4)], true),
        5,
        tooLarge,
        "it",
        timers,
      ),
    RingkvError,
  );
  assertEquals(seen, [[8, false]]);
});

Deno.test("readCappedBody() reads a body of a declared length whole, in one chunk or several", async () => {
  const declared = (body: BodyInit) =>
    new Request("http://x/", { method: "PUT", body, headers: { "content-length": "3" } });
  for (const timeout of [1000, new SlotTimers(1000)]) {
    assertEquals(
      await readCappedBody(declared("abc"), 5, tooLarge, "it", timeout),
      new TextEncoder().encode("abc"),
    );
    const parts = streamed([new Uint8Array([1]), new Uint8Array([2, 3])]).body!;
    assertEquals(
      await readCappedBody(declared(parts), 5, tooLarge, "it", timeout),
      new Uint8Array([1, 2, 3]),
    );
  }
});

Deno.test("readCappedBody() answers a declared-length body that stalls with 408, and one longer than the cap with 413", async () => {
  const declared = (chunks: Uint8Array[], length: number) =>
    new Request("http://x/", {
      method: "PUT",
      body: streamed(chunks, true).body,
      headers: { "content-length": String(length) },
    });
  for (const timeout of [50, new SlotTimers(50)]) {
    const stalled = await assertRejects(
      () => readCappedBody(declared([new Uint8Array(1)], 3), 5, tooLarge, "it", timeout),
      RingkvError,
    );
    assertEquals(stalled.code, "request_timeout");
  }
  // Over HTTP the framing holds a body to its declared length; a Request made in-process does
  // not, and its body is still refused past the cap.
  seen.length = 0;
  const longer = new Request("http://x/", {
    method: "PUT",
    body: "x".repeat(8),
    headers: { "content-length": "3" },
  });
  await assertRejects(() => readCappedBody(longer, 5, tooLarge, "it", 1000), RingkvError);
  assertEquals(seen, [[8, false]]);
});

Deno.test("readCappedBody() on Deno.serve: a body is read whole, and a client that stops or trickles after part of it gets 408", async () => {
  const timers = new SlotTimers(200);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    try {
      return new Response(String((await readCappedBody(req, 1000, tooLarge, "it", timers)).length));
    } catch (err) {
      return new Response((err as RingkvError).code, { status: 408 });
    }
  });
  const port = server.addr.port;
  const trickling = new AbortController();
  const conns: Deno.Conn[] = [];
  try {
    const put = await fetch(`http://127.0.0.1:${port}/`, { method: "PUT", body: "x".repeat(700) });
    assertEquals([put.status, await put.text()], [200, "700"]);
    const head = "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc";
    const answers = [false, true].map(async (trickle) => {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port });
      conns.push(conn);
      await conn.write(new TextEncoder().encode(head));
      const sending = trickle ? trickleUntil(conn, trickling.signal) : Promise.resolve();
      let answer = "";
      const buf = new Uint8Array(4096);
      // Bounded: with no 408 the read would wait for ever.
      const cut = setTimeout(() => conn.close(), 10_000);
      while (!answer.endsWith("request_timeout")) {
        const n = await conn.read(buf).catch(() => null);
        if (n === null) break;
        answer += new TextDecoder().decode(buf.subarray(0, n));
      }
      clearTimeout(cut);
      trickling.abort();
      await sending;
      return answer;
    });
    for (const answer of await Promise.all(answers)) {
      assert(answer.startsWith("HTTP/1.1 408"), answer);
      assert(answer.endsWith("request_timeout"), answer);
    }
  } finally {
    trickling.abort();
    for (const conn of conns) {
      try {
        conn.close();
      } catch { /* closed at its deadline */ }
    }
    await server.shutdown();
  }
});

/** Sends a byte of body every 50 ms until `stop`. */
async function trickleUntil(conn: Deno.Conn, stop: AbortSignal): Promise<void> {
  while (!stop.aborted) {
    await new Promise((r) => setTimeout(r, 50));
    if (!stop.aborted) await conn.write(new Uint8Array([120])).catch(() => {});
  }
}
