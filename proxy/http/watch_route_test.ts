import { assert, assertEquals, assertMatch } from "@std/assert";
import { nodeInfos, ownerOf, stableMap, startCluster } from "../../tests/doubles/test_cluster.ts";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { acceptsEventStream, eventJson, startLimitMs } from "./watch_route.ts";
import { EVENT_TEXTS_BYTES, EventTexts } from "./event_texts.ts";

const SSE = { accept: "text/event-stream" };

Deno.test("GET /watch refuses without Accept: text/event-stream, a bad cursor, a wrong token, and past the cap", async () => {
  const c = await startCluster({
    proxy: { clientToken: "tok", watch: { maxWatchers: 1, waitMs: 50, keepaliveMs: 60_000 } },
  });
  try {
    const auth = { authorization: "Bearer tok" };
    const codes = async (headers: Record<string, string>) => {
      const res = await c.proxy.request("/watch", { headers });
      const body = await res.json();
      return [res.status, body.error.code];
    };
    assertEquals(await codes(SSE), [401, "unauthorized"]);
    assertEquals(await codes(auth), [406, "not_acceptable"]);
    assertEquals(await codes({ ...SSE, ...auth, "last-event-id": "nope!" }), [
      400,
      "invalid_cursor",
    ]);
    const open = await c.proxy.request("/watch?prefix=a", { headers: { ...SSE, ...auth } });
    assertEquals(open.status, 200);
    assertEquals(open.headers.get("content-type"), "text/event-stream");
    assertEquals(await codes({ ...SSE, ...auth }), [503, "unavailable"]);
    const full = await c.proxy.request("/watch", { headers: { ...SSE, ...auth } });
    assertEquals(full.headers.get("retry-after"), "1");
    await full.body?.cancel();
    const reader = open.body!.pipeThrough(new TextDecoderStream()).getReader();
    // Put a key under the prefix and read until its event arrives (bounded).
    const put = await c.proxy.request("/kv/a1", { method: "PUT", body: "v", headers: auth });
    assertEquals(put.status, 201);
    let text = "";
    for (let i = 0; i < 200 && !text.includes('"key":"a1"'); i++) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
    assertEquals(text.includes('"key":"a1"') && text.includes('"value":"v"'), true, text);
    await reader.cancel();
    // The slot is free again once the stream is closed.
    const again = await c.proxy.request("/watch", { headers: { ...SSE, ...auth } });
    assertEquals(again.status, 200);
    await again.body?.cancel();
  } finally {
    await c.close();
  }
});

Deno.test("GET /watch names /watch in its 401, refuses a prefix longer than any key, and lists GET and HEAD in its 405", async () => {
  const c = await startCluster({
    proxy: { clientToken: "tok", watch: { maxWatchers: 1, waitMs: 50, keepaliveMs: 60_000 } },
  });
  try {
    const refused = await c.proxy.request("/watch", { headers: SSE });
    assertEquals(refused.status, 401);
    assertMatch((await refused.json()).error.message, /^Cannot use \/kv and \/watch: /);
    const headers = { ...SSE, authorization: "Bearer tok" };
    // As GET /kv?prefix= does: such a stream could never carry an event.
    const long = "a".repeat(DEFAULT_LIMITS.maxKeyBytes + 1);
    const res = await c.proxy.request(`/watch?prefix=${long}`, { headers });
    assertEquals(res.status, 400);
    const body = await res.json();
    assertEquals(body.error.code, "bad_request");
    assertMatch(body.error.message, /^Cannot watch: the prefix is longer than the longest key/);
    // The longest prefix a key can have still opens a stream (the one slot was not taken).
    const longest = "a".repeat(DEFAULT_LIMITS.maxKeyBytes);
    const ok = await c.proxy.request(`/watch?prefix=${longest}`, { headers });
    assertEquals(ok.status, 200);
    await ok.body?.cancel();
    const post = await c.proxy.request("/watch", { method: "POST", headers });
    assertEquals([post.status, post.headers.get("allow")], [405, "GET, HEAD"]);
    assertMatch((await post.json()).error.message, /allowed are GET, HEAD$/);
  } finally {
    await c.close();
  }
});

Deno.test("HEAD /watch answers the stream's headers without holding one of the streams", async () => {
  const c = await startCluster({
    proxy: { watch: { maxWatchers: 1, waitMs: 50, keepaliveMs: 60_000 } },
  });
  try {
    for (let i = 0; i < 3; i++) {
      const head = await c.proxy.request("/watch", { method: "HEAD", headers: SSE });
      assertEquals([head.status, head.headers.get("content-type")], [200, "text/event-stream"]);
      await head.body?.cancel();
    }
    const res = await c.proxy.request("/watch", { headers: SSE });
    assertEquals(res.status, 200);
    await res.body?.cancel();
  } finally {
    await c.close();
  }
});

/** Reads an SSE body until its text includes `want`, or for at most `ms`; the text read. */
async function readFor(body: ReadableStream<Uint8Array>, want: string, ms: number) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const stop = setTimeout(() => reader.cancel(), ms);
  let text = "";
  try {
    while (!text.includes(want)) {
      const { value, done } = await reader.read();
      if (done) break;
      text += value;
    }
  } finally {
    clearTimeout(stop);
    await reader.cancel();
  }
  return text;
}

/** Whether `req` is a stream's read of a node's log head (where it starts). */
const headRead = (req: Request) => {
  const url = new URL(req.url);
  return url.pathname === "/internal/changes" && !url.searchParams.has("after");
};

for (const replicas of [1, 3]) {
  Deno.test(`GET /watch (replicas ${replicas}) answers once the stream has its start: a write sent after the headers comes, nodes slow to answer that read too`, async () => {
    const c = await startCluster({
      map: { ...stableMap(nodeInfos(3)), replicas },
      proxy: { watch: { waitMs: 50, keepaliveMs: 60_000 } },
    });
    let heads = 0;
    c.hook = async (req) => {
      if (!headRead(req)) return;
      heads++;
      await new Promise((r) => setTimeout(r, 300)); // a node slow to answer
    };
    try {
      const res = await c.proxy.request("/watch?prefix=w/", { headers: SSE });
      assertEquals(res.status, 200);
      const put = await c.proxy.request("/kv/w/k", { method: "PUT", body: "after open" });
      assertEquals(put.status, 201);
      await put.body?.cancel();
      const text = await readFor(res.body!, '"key":"w/k"', 3000);
      assert(heads >= 3, `the stream read the ${heads} nodes' heads`);
      assert(text.includes('"key":"w/k"'), `the acknowledged write came: ${JSON.stringify(text)}`);
    } finally {
      c.hook = undefined;
      await c.close();
    }
  });
}

Deno.test("GET /watch with a node that does not answer answers after that node's timeout, and the stream goes on without it", async () => {
  const c = await startCluster({
    proxy: { timeoutMs: 300, watch: { waitMs: 50, keepaliveMs: 60_000 } },
  });
  // n1 holds its head reads until the proxy gives up on them (a paused process).
  c.hook = (req, node) => {
    if (!headRead(req) || node.info.id !== "n1") return;
    return new Promise((_, reject) =>
      req.signal.addEventListener("abort", () => reject(req.signal.reason))
    );
  };
  try {
    const began = Date.now();
    const res = await c.proxy.request("/watch?prefix=w/", { headers: SSE });
    const took = Date.now() - began;
    assertEquals(res.status, 200);
    assert(took >= 250 && took < startLimitMs(300), `answered after ${took} ms`);
    let key = "";
    for (let i = 0; key === "" && i < 100; i++) {
      if (await ownerOf(c.topology.current(), `w/${i}`) !== "n1") key = `w/${i}`;
    }
    const put = await c.proxy.request(`/kv/${key}`, { method: "PUT", body: "v" });
    assertEquals(put.status, 201);
    await put.body?.cancel();
    const text = await readFor(res.body!, `"key":"${key}"`, 3000);
    assert(text.includes(`"key":"${key}"`), JSON.stringify(text));
  } finally {
    c.hook = undefined;
    await c.close();
  }
});

Deno.test("GET /watch answers 503 when its stream cannot read where it starts in time, and frees the stream's slot", async () => {
  const c = await startCluster({
    proxy: { timeoutMs: 100, watch: { maxWatchers: 1, waitMs: 50, keepaliveMs: 60_000 } },
  });
  // A transport that ignores its deadline: the head read never ends.
  c.hook = (req) => headRead(req) ? new Promise(() => {}) : undefined;
  try {
    const began = Date.now();
    const res = await c.proxy.request("/watch?prefix=w/", { headers: SSE });
    assertEquals(res.status, 503);
    assertEquals(res.headers.get("retry-after"), "1");
    const body = await res.json();
    assertEquals(body.error.code, "unavailable");
    assertMatch(body.error.message, /^Cannot watch: the stream did not read/);
    assert(Date.now() - began < startLimitMs(100) + 500, "answered at the limit");
    c.hook = undefined;
    const again = await c.proxy.request("/watch?prefix=w/", { headers: SSE });
    assertEquals(again.status, 200, "the slot is free and a new stream starts");
    await again.body?.cancel();
  } finally {
    c.hook = undefined;
    await c.close();
  }
});

Deno.test("eventJson() gives an ASCII or UTF-8 value as text and any other bytes as valueBase64", () => {
  const of = (bytes: Uint8Array) =>
    eventJson({ key: "k", version: "v1", value: bytes.toBase64(), contentType: "text/plain" });
  const ascii = new Uint8Array(128).map((_, i) => i);
  assertEquals(of(ascii).value, String.fromCharCode(...ascii));
  assertEquals(of(new TextEncoder().encode("ключ 😀")).value, "ключ 😀");
  // A leading byte-order mark is part of the value (the decoder drops it unless told).
  assertEquals(of(new TextEncoder().encode("\uFEFFbom")).value, "\uFEFFbom");
  for (const bad of [[0xff], [0x61, 0x80], [0xc3], [0xed, 0xa0, 0x80]]) {
    const got = of(new Uint8Array(bad));
    assertEquals([got.value, got.valueBase64], [undefined, new Uint8Array(bad).toBase64()]);
  }
  assertEquals(eventJson({ key: "k", version: "v2", value: null }), {
    key: "k",
    version: "v2",
    deleted: true,
  });
});

Deno.test("acceptsEventStream() takes text/event-stream by name with a weight above 0", () => {
  for (
    const yes of [
      "text/event-stream",
      "TEXT/Event-Stream",
      "application/json, text/event-stream;q=0.5",
    ]
  ) {
    assertEquals(acceptsEventStream(yes), true, yes);
  }
  for (
    const no of [
      "",
      "*/*",
      "text/*",
      "text/event-stream;q=0",
      "text/event-stream-x",
      "text/plain; x=text/event-stream",
    ]
  ) {
    assertEquals(acceptsEventStream(no), false, no);
  }
});

Deno.test("GET /watch holds the events' texts within EVENT_TEXTS_BYTES with values of control characters, and none once the last stream left", async () => {
  const texts = new EventTexts((e) => JSON.stringify(eventJson(e)));
  const c = await startCluster({
    proxy: { watch: { waitMs: 50, keepaliveMs: 60_000, eventTexts: texts } },
  });
  try {
    const res = await c.proxy.request("/watch?prefix=ctl/", { headers: SSE });
    assertEquals(res.status, 200);
    const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let most = 0;
    const reading = (async () => {
      let events = 0;
      const deadline = Date.now() + 30_000;
      while (events < 11 && Date.now() < deadline) {
        const { value, done } = await reader.read();
        if (done) break;
        events += value.split("\ndata: ").length - 1;
        most = Math.max(most, texts.bytes);
      }
      return events;
    })();
    // Each is ~600 KiB of JSON (\u0001 per byte; read as it comes: under the 4 MiB unread
    // bound), 12 MiB as the texts count it; then a small one, held.
    const ctl = "\u0001".repeat(100 << 10);
    for (let i = 0; i < 10; i++) {
      const put = await c.proxy.request(`/kv/ctl/${i}`, { method: "PUT", body: ctl });
      assertEquals(put.status, 201);
    }
    await c.proxy.request("/kv/ctl/small", { method: "PUT", body: "s" });
    assertEquals(await reading, 11);
    assert(most <= EVENT_TEXTS_BYTES, `the texts held ${most} bytes, over ${EVENT_TEXTS_BYTES}`);
    assert(texts.size > 0, "the small event's text is held");
    await reader.cancel();
    const gone = Date.now() + 5000;
    while (texts.size > 0 && Date.now() < gone) await new Promise((r) => setTimeout(r, 10));
    assertEquals([texts.size, texts.bytes], [0, 0]);
  } finally {
    await c.close();
  }
});
