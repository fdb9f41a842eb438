import { assertEquals } from "@std/assert";
import { asciiFromBase64, base64Bytes, base64Of, fromBytes, toBytes } from "./values.ts";

const EDGES = [
  "",
  "QQ",
  "QQ=",
  "QQ==",
  "QUI=",
  "Q",
  "Q===",
  " Q Q = = ",
  "QQ==QQ==",
  "QR==",
  "-_",
  "QQ\u00a0==",
  "\tQUJD\n",
  "QUJD=",
  "QU=JD",
  "====",
  "Q\vQ==",
  "ABCD\u0000",
];

function decodes(text: string): boolean {
  try {
    Uint8Array.fromBase64(text);
    return true;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return false;
  }
}

Deno.test("base64Bytes() accepts exactly what Uint8Array.fromBase64 decodes, and counts its bytes", () => {
  for (const text of EDGES) {
    const bytes = decodes(text) ? Uint8Array.fromBase64(text).length : undefined;
    assertEquals([text, base64Bytes(text)], [text, bytes]);
  }
});

Deno.test("asciiFromBase64() is the stored text of ASCII bytes, as fromBytes() makes it", () => {
  for (const text of ["aGk=", "", "AAECAwR/", "dmFsdWVz".repeat(20)]) {
    assertEquals(asciiFromBase64(text), fromBytes(Uint8Array.fromBase64(text)).data);
  }
});

Deno.test("asciiFromBase64() leaves bytes past ASCII and text that is not base64 to the caller", () => {
  const utf8 = new TextEncoder().encode("héllo").toBase64();
  assertEquals(asciiFromBase64(utf8), undefined);
  assertEquals(asciiFromBase64(new Uint8Array([0xff, 0]).toBase64()), undefined);
  assertEquals(asciiFromBase64("QQ="), undefined);
});

Deno.test("base64Of() is the base64 of toBytes() for ASCII, other UTF-8 and binary values", () => {
  const texts = ["", "hello", "\u007f\u0000", "é", "😀 x", "v".repeat(100)];
  const values = [
    ...texts.map((data) => ({ kind: "text" as const, data })),
    fromBytes(new Uint8Array([0, 255, 128, 1])),
    fromBytes(new TextEncoder().encode("plain")),
    { kind: "tombstone" as const, data: "" },
  ];
  for (const v of values) assertEquals(base64Of(v), toBytes(v)?.toBase64() ?? null, v.data);
});
