import { assertEquals } from "@std/assert";
import { jsonQuoted, keyLine, quoted, valueJson } from "./kv_output.ts";

Deno.test("quoted() leaves a plain key bare and quotes one a reader could split or misread", () => {
  for (const key of ["users/1", "a-b_c.d", "ключ", "ü/é", "emoji😀", "a'b", "-"]) {
    assertEquals(quoted(key), key);
  }
  assertEquals(quoted("my key"), '"my key"');
  assertEquals(quoted(""), '""');
  assertEquals(quoted('say "hi"'), '"say \\"hi\\""');
  assertEquals(quoted("back\\slash"), '"back\\\\slash"');
  assertEquals(quoted("tab\there"), '"tab\\there"');
  assertEquals(quoted("line\nbreak"), '"line\\nbreak"');
  assertEquals(quoted("nbsp\u00a0x"), '"nbsp\\u00a0x"');
  assertEquals(quoted("zero\u200bwidth"), '"zero\\u200bwidth"');
  assertEquals(quoted("ls\u2028x"), '"ls\\u2028x"');
  assertEquals(quoted("tag\u{e0041}"), '"tag\\udb40\\udc41"');
  // Private-use and unassigned code points (noncharacters too) print as escapes, as documented.
  assertEquals(quoted("pua\ue000"), '"pua\\ue000"');
  assertEquals(quoted("non\ufffe"), '"non\\ufffe"');
  // Each quoted word reads back as JSON to the very key.
  for (const key of ["my key", 'say "hi"', "nbsp\u00a0x", "tag\u{e0041}", "\u0000"]) {
    assertEquals(JSON.parse(quoted(key)), key);
  }
});

Deno.test("jsonQuoted() always quotes, escaping what would not show", () => {
  assertEquals(jsonQuoted("brief"), '"brief"');
  assertEquals(jsonQuoted("a b\u2029"), '"a b\\u2029"');
});

Deno.test("valueJson() has the key, version, type, expiry and the value as text or base64", () => {
  const headers = new Headers({
    etag: '"0192a3b4c5d6-0000-n1"',
    "content-type": "text/plain",
    "expires-at": "2026-12-06T03:00:00.000Z",
  });
  assertEquals(valueJson("my key", headers, new TextEncoder().encode("héllo")), {
    key: "my key",
    version: "0192a3b4c5d6-0000-n1",
    contentType: "text/plain",
    value: "héllo",
    expiresAt: "2026-12-06T03:00:00.000Z",
  });
  const plain = new Headers({ etag: '"v1"', "content-type": "application/octet-stream" });
  assertEquals(valueJson("b", plain, new Uint8Array([0xff, 0x00])), {
    key: "b",
    version: "v1",
    contentType: "application/octet-stream",
    valueBase64: "/wA=",
  });
  // A byte-order mark is part of the value, not dropped by the decoder.
  const bom = valueJson("c", plain, new Uint8Array([0xef, 0xbb, 0xbf, 0x41])) as { value: string };
  assertEquals(bom.value, "\ufeffA");
});

Deno.test("keyLine() prints a plain key bare, an odd one quoted, and with json an object a line", () => {
  assertEquals(keyLine("users/1", false), "users/1");
  assertEquals(keyLine("two\u2028lines", false), '"two\\u2028lines"');
  assertEquals(keyLine("end ", false), '"end "');
  assertEquals(keyLine("users/1", true), '{"key":"users/1"}');
  for (const key of ["two\u2028lines", "nel\u0085", 'say "hi"', "ключ", "tag\u{e0041}"]) {
    const line = keyLine(key, true);
    assertEquals(JSON.parse(line), { key });
    assertEquals(/[\u0085\u2028\u2029]/.test(line), false, line);
  }
});
