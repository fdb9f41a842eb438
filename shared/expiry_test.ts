import { assertEquals, assertThrows } from "@std/assert";
import { RingkvError } from "./errors.ts";
import {
  checkClientType,
  expiryOf,
  isExpired,
  MAX_TTL_SECONDS,
  parseTtl,
  plainType,
  ttlParam,
  withExpiry,
} from "./expiry.ts";

Deno.test("withExpiry() and plainType() round-trip a content type with parameters", () => {
  const stored = withExpiry("text/plain; charset=utf-8", 1_733_450_000_000);
  assertEquals(expiryOf(stored), 1_733_450_000_000);
  assertEquals(plainType(stored), "text/plain; charset=utf-8");
  assertEquals(withExpiry("a/b", undefined), "a/b");
  assertEquals(expiryOf("a/b"), undefined);
  assertEquals(isExpired(stored, 1_733_449_999_999), false);
  assertEquals(isExpired(stored, 1_733_450_000_000), true);
});

Deno.test("parseTtl() takes whole seconds from 1 to the maximum and refuses the rest with 400", () => {
  assertEquals(parseTtl("1", "k"), 1);
  assertEquals(parseTtl(String(MAX_TTL_SECONDS), "k"), MAX_TTL_SECONDS);
  for (const bad of ["0", "-1", "1.5", "", "abc", "1e3", " 2", String(MAX_TTL_SECONDS + 1)]) {
    const err = assertThrows(() => parseTtl(bad, "k"), RingkvError);
    assertEquals(err.status, 400, bad);
  }
});

Deno.test("checkClientType() refuses a client Content-Type that would pass for an expiry", () => {
  checkClientType("text/plain; charset=utf-8", "k");
  const err = assertThrows(() => checkClientType("a/b; ringkv-expires=1", "k"), RingkvError);
  assertEquals(err.code, "invalid_header");
  for (
    const named of [
      "a/b;ringkv-expires",
      'a/b; x="1;2"; RingKV-Expires = "7"',
      "a/b; ringkv-expires=1; c=d",
    ]
  ) {
    const refused = assertThrows(() => checkClientType(named, "k"), RingkvError);
    assertEquals(
      refused.message,
      `Cannot store key "k": its Content-Type has a "ringkv-expires" parameter, which ringkv reserves; set a TTL with ?ttl=SECONDS`,
    );
  }
  // An open quote would hide the name, yet the stored type would read as an expiry.
  const open = assertThrows(() => checkClientType('a/b; x="y; ringkv-expires=1', "k"), RingkvError);
  assertEquals(open.code, "invalid_header");
});

Deno.test("checkClientType() takes the text ringkv-expires outside a parameter name as text", () => {
  for (
    const type of [
      "application/vnd.ringkv-expires+json",
      'text/plain; a="x;ringkv-expires=1"',
      'text/plain; a="x; ringkv-expires=1"; charset=utf-8',
      'text/plain; a="q\\"; ringkv-expires=1"',
      "text/plain; note=ringkv-expires",
    ]
  ) {
    checkClientType(type, "k");
    assertEquals(expiryOf(type), undefined, type);
    assertEquals(plainType(withExpiry(type, 5)), type, type);
  }
});

Deno.test("ttlParam() gives the one ttl of a query, null without one, and a 400 for two", () => {
  assertEquals(ttlParam(new URLSearchParams("ttl=5&x=1"), "k"), "5");
  assertEquals(ttlParam(new URLSearchParams("x=1"), "k"), null);
  const err = assertThrows(() => ttlParam(new URLSearchParams("ttl=5&ttl=600"), "k"), RingkvError);
  assertEquals([err.status, err.code], [400, "bad_request"]);
});
