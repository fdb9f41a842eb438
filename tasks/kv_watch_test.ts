import { assertEquals, assertMatch, assertRejects } from "@std/assert";
import { CliError, EXIT } from "./kv_client.ts";
import { changeLine, eventJsonLine, takeEvents, watch } from "./kv_watch.ts";

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

Deno.test("changeLine() quotes a key with a space or an odd character, so the line splits one way", () => {
  assertEquals(
    changeLine('{"key":"a b","version":"v1","value":"c d"}'),
    'put "a b" v1 "c d"',
  );
  assertEquals(changeLine('{"key":"a b v2","version":"v2","deleted":true}'), 'del "a b v2" v2');
  assertEquals(changeLine('{"key":"\\"q","version":"v3","deleted":true}'), 'del "\\"q" v3');
  assertEquals(
    changeLine('{"key":"k","version":"v4","value":"x\u2028y"}'),
    'put k v4 "x\\u2028y"',
  );
});

Deno.test("eventJsonLine() gives every event as one JSON object: put, del, compacted", () => {
  const put = { id: "c1", event: "message", data: '{"key":"a b","version":"v1","value":"x"}' };
  assertEquals(JSON.parse(eventJsonLine(put)), {
    event: "put",
    key: "a b",
    version: "v1",
    value: "x",
  });
  const del = { event: "message", data: '{"key":"a","version":"v2","deleted":true}' };
  assertEquals(JSON.parse(eventJsonLine(del)), { event: "del", key: "a", version: "v2" });
  const gone = { event: "compacted", data: '{"reason":"history gone"}' };
  assertEquals(JSON.parse(eventJsonLine(gone)), { event: "compacted", reason: "history gone" });
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
      () => watch(t, "", (l) => printed.push(l), (l) => warned.push(l), { idleMs: 300 }),
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

Deno.test("watch() with json prints every event, compacted too, as a JSON line on stdout", async () => {
  let calls = 0;
  const events = 'id: c1\ndata: {"key":"a b","version":"v1","value":"x"}\n\n' +
    'event: compacted\ndata: {"reason":"gone"}\n\n';
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    if (++calls > 1) return Response.json({ error: { code: "x", message: "no" } }, { status: 401 });
    return new Response(events, { headers: { "content-type": "text/event-stream" } });
  });
  const printed: string[] = [];
  const warned: string[] = [];
  try {
    const t = { url: `http://127.0.0.1:${server.addr.port}`, timeoutMs: 1000 };
    const print = (l: string) => printed.push(l);
    await assertRejects(() => watch(t, "", print, (l) => warned.push(l), { json: true }), CliError);
    assertEquals(printed.map((l) => JSON.parse(l)), [
      { event: "put", key: "a b", version: "v1", value: "x" },
      { event: "compacted", reason: "gone" },
    ]);
    assertEquals(warned, []);
  } finally {
    await server.shutdown();
  }
});
