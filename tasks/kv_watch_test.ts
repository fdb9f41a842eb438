import { assertEquals, assertMatch, assertRejects } from "@std/assert";
import { CliError, EXIT } from "./kv_client.ts";
import { changeLine, eventJsonLine, takeEvents, watch } from "./kv_watch.ts";
import { resumeCommand } from "./kv_resume.ts";

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

Deno.test("eventJsonLine() gives every event as one JSON object with its id (the cursor): put, del, compacted", () => {
  const put = { id: "c1", event: "message", data: '{"key":"a b","version":"v1","value":"x"}' };
  assertEquals(JSON.parse(eventJsonLine(put)), {
    event: "put",
    id: "c1",
    key: "a b",
    version: "v1",
    value: "x",
  });
  const del = { id: "c2", event: "message", data: '{"key":"a","version":"v2","deleted":true}' };
  assertEquals(JSON.parse(eventJsonLine(del)), { event: "del", id: "c2", key: "a", version: "v2" });
  const gone = { id: "c3", event: "compacted", data: '{"reason":"history gone"}' };
  assertEquals(JSON.parse(eventJsonLine(gone)), {
    event: "compacted",
    id: "c3",
    reason: "history gone",
  });
  const reset = { event: "reset", data: '{"reason":"too many"}' };
  assertEquals(JSON.parse(eventJsonLine(reset)), { event: "reset", reason: "too many" });
});

Deno.test("watch() that gives up says the command that resumes after the last event it got", async () => {
  let calls = 0;
  const event = 'id: c7\ndata: {"key":"a","version":"v1","value":"x"}\n\n';
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    if (++calls === 1) {
      return new Response(event, { headers: { "content-type": "text/event-stream" } });
    }
    return Response.json({ error: { code: "unavailable", message: "gone" } }, { status: 503 });
  });
  const warned: string[] = [];
  try {
    const t = { url: `http://127.0.0.1:${server.addr.port}`, timeoutMs: 1000 };
    const err = await assertRejects(
      () =>
        watch(t, "kw/", () => {}, (l) => warned.push(l), {
          retryMs: 1,
          resume: (cursor) => resumeCommand(["watch", "kw/"], cursor),
        }),
      CliError,
    );
    assertEquals(err.code, EXIT.unavailable);
    assertMatch(
      err.message,
      /10 connections in a row failed\. To resume after the last event received: deno task kv watch kw\/ --after c7$/,
    );
    // Without any event there is no cursor: a new watch starts from the present, so re-list.
    calls = 1;
    const none = await assertRejects(
      () => watch(t, "kw/", () => {}, () => {}, { retryMs: 1 }),
      CliError,
    );
    assertMatch(
      none.message,
      /no event came .* re-list once it runs \(deno task kv ls --prefix kw\/\)/i,
    );
  } finally {
    await server.shutdown();
  }
});

Deno.test("watch() with after sends it as Last-Event-ID; a cursor the proxy refuses is an error that says to re-list", async () => {
  const seen: (string | null)[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    seen.push(req.headers.get("last-event-id"));
    const error = seen.length === 1
      ? { code: "invalid_cursor", message: "Cannot resume the watch: bad cursor" }
      : { code: "bad_request", message: "Cannot watch: the prefix is too long" };
    return Response.json({ error }, { status: 400 });
  });
  try {
    const t = { url: `http://127.0.0.1:${server.addr.port}`, timeoutMs: 1000 };
    const err = await assertRejects(
      () => watch(t, "p/", () => {}, () => {}, { after: "zzz" }),
      CliError,
    );
    assertEquals([err.code, seen], [EXIT.refused, ["zzz"]]);
    assertMatch(
      err.message,
      /^Cannot watch from cursor "zzz": 400 Cannot resume the watch: bad cursor\. .*re-list with deno task kv ls --prefix p\/ and watch again without --after$/,
    );
    // Another 400 is no refused cursor: the proxy's message, no re-list advice.
    const other = await assertRejects(
      () => watch(t, "p/", () => {}, () => {}, { after: "zzz" }),
      CliError,
    );
    assertEquals(other.message, "Cannot watch: 400 Cannot watch: the prefix is too long");
  } finally {
    await server.shutdown();
  }
});

Deno.test("watch() says after compacted and after reset that changes may be missing and how to re-list", async () => {
  let calls = 0;
  const events = 'id: c1\nevent: compacted\ndata: {"reason":"history gone"}\n\n' +
    'event: reset\ndata: {"reason":"too many keys wait"}\n\n';
  const seen: (string | null)[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    seen.push(req.headers.get("last-event-id"));
    if (++calls > 1) return Response.json({ error: { code: "x", message: "no" } }, { status: 401 });
    return new Response(events, { headers: { "content-type": "text/event-stream" } });
  });
  const warned: string[] = [];
  try {
    const t = { url: `http://127.0.0.1:${server.addr.port}`, timeoutMs: 1000 };
    await assertRejects(() => watch(t, "p/", () => {}, (l) => warned.push(l)), CliError);
    assertEquals(warned, [
      "compacted: history gone (changes before this point may be missing: re-list with " +
      "deno task kv ls --prefix p/; the watch goes on from the present)",
      "reset: too many keys wait (the watch starts again from the present and changes may be " +
      "missing: re-list with deno task kv ls --prefix p/)",
    ]);
    assertEquals(seen, [null, null], "after a reset the watch starts again without a cursor");
  } finally {
    await server.shutdown();
  }
});

Deno.test("watch() retries a 503, resumes a stream gone quiet with Last-Event-ID, and on an error answer says how to resume", async () => {
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
    // Ended by the 401 after an event: once the token is right, the cursor resumes it.
    assertMatch(
      err.message,
      /^Cannot watch: 401 answer 401 .*\. To resume after the last event received: Last-Event-ID: c1$/,
    );
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
      { event: "put", id: "c1", key: "a b", version: "v1", value: "x" },
      { event: "compacted", reason: "gone" },
    ]);
    assertEquals(warned, []);
  } finally {
    await server.shutdown();
  }
});

Deno.test("watch() stopped (Ctrl-C) says the command that resumes after the last event printed, also while it waits to retry", async () => {
  let calls = 0;
  const event = 'id: c9\ndata: {"key":"a","version":"v1","value":"x"}\n\n';
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () => {
    if (++calls > 1) {
      return Response.json({ error: { code: "unavailable", message: "busy" } }, { status: 503 });
    }
    const body = new ReadableStream<Uint8Array>({
      start: (c) => c.enqueue(new TextEncoder().encode(event)), // then nothing: an open stream
    });
    return new Response(body, { headers: { "content-type": "text/event-stream" } });
  });
  try {
    const t = { url: `http://127.0.0.1:${server.addr.port}`, timeoutMs: 1000 };
    const stop = new AbortController();
    const printed: string[] = [];
    const watching = watch(
      t,
      "kw/",
      (l) => {
        printed.push(l);
        stop.abort();
      },
      () => {},
      { stop: stop.signal, resume: (c) => resumeCommand(["watch", "kw/"], c) },
    );
    const err = await assertRejects(() => watching, CliError);
    assertEquals([err.code, printed.length], [EXIT.interrupted, 1]);
    assertEquals(
      err.message,
      "Stopped. To resume after the last event received: deno task kv watch kw/ --after c9",
    );
    // Stopped while it waits a minute before it tries again (a 503): it ends at once.
    const waiting = new AbortController();
    const started = performance.now();
    const retrying = watch(t, "kw/", () => {}, () => waiting.abort(), {
      stop: waiting.signal,
      after: "c9",
      retryMs: 60_000,
    });
    const stopped = await assertRejects(() => retrying, CliError);
    assertEquals(stopped.code, EXIT.interrupted);
    assertMatch(stopped.message, /Last-Event-ID: c9$/);
    assertEquals(performance.now() - started < 30_000, true);
  } finally {
    await server.shutdown();
  }
});
