import { assertEquals, assertRejects } from "@std/assert";
import { readCappedBody } from "./capped_body.ts";
import { RingkvError } from "./errors.ts";

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
