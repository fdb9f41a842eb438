import { assertEquals, assertRejects } from "@std/assert";
import { EventCounter, Watchers } from "./watchers.ts";

const enc = new TextEncoder();

Deno.test("EventCounter counts event frames only, whatever the chunking", () => {
  const text = "retry: 1000\n: watching\n\nid: c1\ndata: {}\n\n: keepalive\n\n" +
    'event: compacted\ndata: {"reason":"x"}\n\nid: c2\ndata: {"value":"id: no"}\n\n';
  const bytes = enc.encode(text);
  for (let size = 1; size <= bytes.length; size++) {
    const counter = new EventCounter();
    for (let i = 0; i < bytes.length; i += size) counter.add(bytes.subarray(i, i + size));
    assertEquals(counter.events, 2, `chunks of ${size} bytes`);
  }
});

/** An SSE server sending `events` change events to each stream, its prefixes noted. */
function sseServer(events: number) {
  const prefixes: string[] = [];
  let closed = 0;
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req) => {
    const prefix = new URL(req.url).searchParams.get("prefix") ?? "";
    if (prefix === "refused") return new Response("full", { status: 503 });
    prefixes.push(prefix);
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        c.enqueue(enc.encode("retry: 1000\n: watching\n\n"));
        for (let i = 0; i < events; i++) c.enqueue(enc.encode(`id: ${i}\ndata: {}\n\n`));
      },
      cancel() {
        closed++;
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  return { server, prefixes, url: `http://127.0.0.1:${server.addr.port}`, closed: () => closed };
}

Deno.test("Watchers read each stream's events, per prefix, until closed", async () => {
  const s = sseServer(3);
  try {
    const w = await Watchers.open(s.url, ["k", "idle/"]);
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && w.counts().some((n) => n < 3)) {
      await new Promise((r) => setTimeout(r, 10));
    }
    assertEquals(w.counts(), [3, 3]);
    assertEquals(s.prefixes.sort(), ["idle/", "k"]);
    await w.close();
    // The streams are cancelled on the server's side once the client closed them.
    while (Date.now() < deadline && s.closed() < 2) await new Promise((r) => setTimeout(r, 10));
    assertEquals(s.closed(), 2);
  } finally {
    await s.server.shutdown();
  }
});

Deno.test("Watchers.open() fails when a stream is refused, closing those that opened", async () => {
  const s = sseServer(0);
  try {
    await assertRejects(() => Watchers.open(s.url, ["k", "refused"]), Error, "status 503 full");
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && s.closed() < 1) await new Promise((r) => setTimeout(r, 10));
    assertEquals(s.closed(), 1);
  } finally {
    await s.server.shutdown();
  }
});
