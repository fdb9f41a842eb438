import { assertEquals, assertRejects } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import { readJsonBody } from "./node_request_body.ts";

function declared(body: BodyInit, length: number): Request {
  return new Request("http://x/", {
    method: "POST",
    body,
    headers: { "content-length": String(length) },
  });
}

Deno.test("readJsonBody() reads a body with a declared length and one streamed without", async () => {
  const text = JSON.stringify({ entries: [{ k: "a" }] });
  assertEquals(await readJsonBody(declared(text, text.length), 1000, "it", 1000), {
    entries: [{ k: "a" }],
  });
  const stream = new Blob([text]).stream();
  assertEquals(
    await readJsonBody(
      new Request("http://x/", { method: "POST", body: stream }),
      1000,
      "it",
      1000,
    ),
    {
      entries: [{ k: "a" }],
    },
  );
});

Deno.test("readJsonBody() answers 408 when a declared body stalls, and 413 when more than the cap arrives", async () => {
  const hanging = new ReadableStream<Uint8Array>({
    start: (c) => c.enqueue(new TextEncoder().encode("{")),
  });
  const started = performance.now();
  const stalled = await assertRejects(
    () => readJsonBody(declared(hanging, 10), 1000, "it", 50),
    RingkvError,
  );
  assertEquals(stalled.code, "request_timeout");
  // Bounded: a read that waited for the body would never end.
  assertEquals(performance.now() - started < 5_000, true);
  const big = await assertRejects(
    () => readJsonBody(declared("[" + "1,".repeat(100) + "1]", 5), 100, "it", 1000),
    RingkvError,
  );
  assertEquals(big.code, "batch_too_large");
  const declaredBig = await assertRejects(
    () => readJsonBody(declared("[]", 101), 100, "it", 1000),
    RingkvError,
  );
  assertEquals(declaredBig.code, "batch_too_large");
});

Deno.test("readJsonBody() answers invalid_json to bytes that are not UTF-8 or not JSON", async () => {
  const notUtf8 = await assertRejects(
    () => readJsonBody(declared(new Uint8Array([0x7b, 0xff, 0x7d]), 3), 100, "it", 1000),
    RingkvError,
  );
  assertEquals(notUtf8.code, "invalid_json");
  const notJson = await assertRejects(
    () => readJsonBody(declared("{nope", 5), 100, "it", 1000),
    RingkvError,
  );
  assertEquals(notJson.code, "invalid_json");
});
