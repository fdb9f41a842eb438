import { assertEquals, assertThrows } from "@std/assert";
import fc from "fast-check";
import { RingkvError } from "./errors.ts";
import { checkKey, keyFromPath, keyToPath, utf8Length } from "./keys.ts";

function codeOf(fn: () => unknown): string {
  return assertThrows(fn, RingkvError).code;
}

Deno.test("keyFromPath() decodes percent-encoding, slashes included", () => {
  assertEquals(keyFromPath("users%2F42", 1024), "users/42");
  assertEquals(keyFromPath("a/b/c", 1024), "a/b/c");
  assertEquals(keyFromPath("%E2%82%AC", 1024), "€");
});

Deno.test("keyFromPath() refuses invalid encodings, empty keys and control characters", () => {
  assertEquals(codeOf(() => keyFromPath("%E2%82", 1024)), "invalid_key");
  assertEquals(codeOf(() => keyFromPath("%zz", 1024)), "invalid_key");
  assertEquals(codeOf(() => keyFromPath("%FF", 1024)), "invalid_key");
  assertEquals(codeOf(() => keyFromPath("", 1024)), "invalid_key");
  assertEquals(codeOf(() => keyFromPath("a%00b", 1024)), "invalid_key");
  assertEquals(codeOf(() => keyFromPath("a%0Ab", 1024)), "invalid_key");
});

Deno.test("checkKey() counts UTF-8 bytes against the limit", () => {
  assertEquals(checkKey("x".repeat(1024), 1024).length, 1024);
  assertEquals(codeOf(() => checkKey("x".repeat(1025), 1024)), "key_too_long");
  assertEquals(codeOf(() => checkKey("€".repeat(342), 1024)), "key_too_long"); // 1026 bytes
  assertEquals(checkKey("€".repeat(341), 1024).length, 341); // 1023 bytes
  assertEquals(codeOf(() => keyFromPath("%41".repeat(4000), 1024)), "key_too_long");
});

Deno.test("utf8Length() counts bytes, not code units", () => {
  assertEquals(utf8Length("abc"), 3);
  assertEquals(utf8Length("é€😀"), 2 + 3 + 4);
});

Deno.test("keyToPath() round-trips through keyFromPath()", () => {
  for (const key of ["a/b", "spaces and ?&#", "€uro", "100%", "a/../b", "./x", "x/.", "..."]) {
    assertEquals(keyFromPath(keyToPath(key), 1024), key);
  }
});

Deno.test("keyFromPath() refuses . and .. segments, plain or encoded, and the keys . and ..", () => {
  for (const path of ["..", ".", "a/../b", "a/./b", "%2e%2E", "a/.%2e", "x/..", "../x"]) {
    assertThrows(() => keyFromPath(path, 1024), RingkvError, "path segment");
  }
  for (const key of [".", ".."]) assertThrows(() => checkKey(key, 1024), RingkvError, "no URL");
});

Deno.test("keyFromPath() refuses a raw # (a fragment to URL clients) and reads %23 as #", () => {
  assertThrows(() => keyFromPath("a#b", 1024), RingkvError, "raw #");
  assertEquals(keyFromPath("a%23b", 1024), "a#b");
});

Deno.test("keyFromPath() answers plain keys as it answers them through decoding", () => {
  // The plain-key shortcut must agree with the decoding path: compare both on keys that take
  // the shortcut, and on their neighbours that do not.
  const viaDecoding = (encoded: string, max: number) =>
    keyFromPath(encoded + "%41", max + 1).slice(0, -1);
  for (const key of ["k000123", "A-b_c~9", "x", "~", "z".repeat(1024)]) {
    assertEquals(keyFromPath(key, 1024), key);
    assertEquals(viaDecoding(key, 1024), key);
  }
  assertEquals(codeOf(() => keyFromPath("", 1024)), "invalid_key");
  assertEquals(codeOf(() => keyFromPath("z".repeat(1025), 1024)), "key_too_long");
  assertEquals(codeOf(() => keyFromPath("z".repeat(11), 10)), "key_too_long");
  assertEquals(codeOf(() => keyFromPath("..", 1024)), "invalid_key");
  assertEquals(codeOf(() => keyFromPath("a#b", 1024)), "invalid_key");
  assertEquals(keyFromPath("a.b", 1024), "a.b");
});

Deno.test("keyFromPath() of any plain string: the same key or refusal as through decoding", () => {
  const plain = fc.constantFrom(..."aZ09-_~".split(""));
  const outcome = (fn: () => string) => {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof RingkvError)) throw err;
      return `refused: ${err.code}`;
    }
  };
  fc.assert(fc.property(fc.array(plain, { minLength: 1, maxLength: 40 }), (chars) => {
    const key = chars.join("");
    // "%41" takes the decoding path and adds one byte, so the limit is one more.
    const decoded = outcome(() => keyFromPath(key + "%41", 21).slice(0, -1));
    assertEquals(outcome(() => keyFromPath(key, 20)), decoded);
  }));
});
