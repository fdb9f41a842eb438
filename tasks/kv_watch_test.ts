import { assertEquals, assertMatch, assertRejects } from "@std/assert";
import { CliError, EXIT } from "./kv_client.ts";
import { changeLine, takeEvents, watch } from "./kv_watch.ts";

Deno.test("takeEvents() splits complete SSE events and keeps the unfinished rest", () => {
  const text =
    'retry: 1000\n: hi\n\nid: c1\ndata: {"a":1}\n\nevent: compacted\ndata: {"reason":"x"}\n\nid: c2\nda';
  const { events, rest } = takeEvents(text);
  assertEquals(events, [
    { id: "c1", event: "message", data: '{"a":1}' },
    { event: "compacted", data: '{"reason":"x"}' },
  ]);
  assertEquals(rest, "id: c2\nda");
});

Deno.test("changeLine() prints puts with their value and deletes", () => {
  assertEquals(changeLine('{"key":"a","version":"v1","value":"hi there"}'), 'put a v1 "hi there"');
  assertEquals(changeLine('{"key":"a","version":"v2","deleted":true}'), "del a v2");
  assertEquals(
    changeLine('{"key":"b","version":"v3","valueBase64":"/w=="}'),
    "put b v3 base64:/w==",
  );
});

Deno.test("watch() retries a 503 and resumes a stream gone quiet with Last-Event-ID", async () => {
  const seen: (string | null)[] = [];
  const event = 'id: c1\ndata: {"key":"a","version":"v1","value":"x"}\n\n';
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    seen.push(req.headers.get("last-event-id"));
    const json = (status: number) =>
      Response.json({ error: { code: "x", message: `answer ${status}` } }, { status });
    if (seen.length === 1) return json(503); // a proxy still loading its map
    if (seen.length === 3) return json(401); // ends the watch
    // One event, then silence with the connection open (a proxy whose host went away).
    const body = new ReadableStream({
      start: (c) => c.enqueue(new TextEncoder().encode(event)),
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  const printed: string[] = [];
  const warned: string[] = [];
  try {
    const t = { url: `http://127.0.0.1:${server.addr.port}`, timeoutMs: 1000 };
    const err = await assertRejects(
      () => watch(t, "", (l) => printed.push(l), (l) => warned.push(l), 300),
      CliError,
    );
    assertEquals(err.code, EXIT.auth);
    assertEquals(printed, ['put a v1 "x"']);
    assertEquals(seen, [null, null, "c1"]);
    assertMatch(warned.join("\n"), /Cannot watch yet: answer 503; retrying/);
    assertMatch(warned.join("\n"), /broke \(nothing came for 300 ms\); resuming/);
  } finally {
    await server.shutdown();
  }
});
