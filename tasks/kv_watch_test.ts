import { assertEquals } from "@std/assert";
import { changeLine, takeEvents } from "./kv_watch.ts";

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
