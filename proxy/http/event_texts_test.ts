import { assert, assertEquals } from "@std/assert";
import {
  EVENT_TEXT_MAX_BYTES,
  EVENT_TEXTS_BYTES,
  EVENT_TEXTS_KEEP,
  EventTexts,
} from "./event_texts.ts";
import { eventJson } from "./watch_route.ts";

const write = (e: Parameters<typeof eventJson>[0]) => JSON.stringify(eventJson(e));

/** An event of `key` at version `n` whose value is `bytes` bytes of `byte`. */
function event(key: string, n: number, bytes: number, byte: number) {
  const value = new Uint8Array(bytes).fill(byte).toBase64();
  return { key, version: `v${String(n).padStart(6, "0")}`, value, contentType: "text/plain" };
}

Deno.test("EventTexts holds at most EVENT_TEXTS_BYTES of texts of large values, and gives each event's JSON", () => {
  const texts = new EventTexts(write);
  // 1 MiB of byte 0x01: ~6 MiB of JSON each (\u0001), never held.
  for (let n = 0; n < 5; n++) {
    const e = event("ctl/x", n, 1 << 20, 1);
    assertEquals(texts.of(e), write(e));
    assert(texts.bytes <= EVENT_TEXTS_BYTES, `${texts.bytes} bytes after ${n + 1} events`);
  }
  // 40 KB values: 80 KB counted each, held until their sum reaches the bound (~20 MB for 256).
  for (let n = 0; n < 256; n++) {
    const e = event("big/y", n, 40_000, 0x61);
    const text = texts.of(e);
    assertEquals(text, write(e));
    assert(texts.bytes <= EVENT_TEXTS_BYTES, `${texts.bytes} bytes after ${n + 1} events`);
    assert(texts.of(e) === text, "a recent text is held: written once");
  }
  assert(texts.bytes > EVENT_TEXTS_BYTES - 2 * EVENT_TEXT_MAX_BYTES, `${texts.bytes} bytes`);
});

Deno.test("EventTexts keeps the last 512 small texts, the same texts as written", () => {
  const texts = new EventTexts(write);
  const first = texts.of(event("k", 0, 100, 0x76));
  for (let n = 1; n < EVENT_TEXTS_KEEP; n++) texts.of(event("k", n, 100, 0x76));
  assert(texts.of(event("k", 0, 100, 0x76)) === first, "still held");
  texts.of(event("k", EVENT_TEXTS_KEEP, 100, 0x76));
  assertEquals(texts.size, EVENT_TEXTS_KEEP);
  texts.clear();
  assertEquals([texts.size, texts.bytes], [0, 0]);
});
