import { assert, assertEquals, assertThrows } from "@std/assert";
import { RingkvError } from "../errors.ts";
import {
  headEnd,
  type HeaderCache,
  type HeadLimits,
  headTooLong,
  latin1,
  MAX_HEADER_FIELDS,
  maxHeadBytes,
  parseHead,
  type RequestHead,
} from "./head.ts";

const LIMITS: HeadLimits = { maxUrlBytes: 8192, maxHeaderBytes: 16384 };

/** One byte per character, so tests can put any byte on the "wire". */
function bytesOf(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
}

/** Parses `text`, which must hold a whole head (found by headEnd, as the server does). */
function parse(text: string, limits = LIMITS): RequestHead {
  const buf = bytesOf(text);
  const end = headEnd(buf, 0, buf.length);
  assert(end !== -1, `no end of head in ${JSON.stringify(text)}`);
  return parseHead(buf, 0, end, limits);
}

/** The status and code parseHead refuses `text` with. */
function refusal(text: string, limits = LIMITS): [number, string] {
  const err = assertThrows(() => parse(text, limits), RingkvError);
  return [err.status, err.code];
}

/** A GET head with `fields` (each "Name: value") and the blank line. */
function get(fields: string[], line = "GET /kv/a HTTP/1.1"): string {
  return [line, ...fields, "", ""].join("\r\n");
}

Deno.test("parseHead() reads the request line, lower-cases header names and trims values", () => {
  const head = parse(get(["Host: example.com:7000", "X-Thing: \t a b \t", "Accept: */*"]));
  assertEquals(head.method, "GET");
  assertEquals(head.target, "/kv/a");
  assertEquals(head.minor, 1);
  assertEquals(head.headers, [
    ["host", "example.com:7000"],
    ["x-thing", "a b"],
    ["accept", "*/*"],
  ]);
  assertEquals(head.host, "example.com:7000");
  assertEquals([head.contentLength, head.chunked, head.expectContinue], [null, false, false]);
});

Deno.test("parseHead() takes HTTP/1.1 and 1.0 and answers 505 to other versions", () => {
  assertEquals(parse(get(["Host: x"])).minor, 1);
  assertEquals(parse(get([], "GET / HTTP/1.0")).minor, 0);
  assertEquals(refusal(get(["Host: x"], "GET / HTTP/2.0")), [505, "http_version_not_supported"]);
  assertEquals(refusal(get(["Host: x"], "GET / HTTP/1.2")), [505, "http_version_not_supported"]);
  assertEquals(refusal(get(["Host: x"], "GET / HTTP/0.9")), [505, "http_version_not_supported"]);
});

Deno.test("parseHead() refuses request lines that are not method, target and version with single spaces", () => {
  for (
    const line of [
      "GET /",
      "GET  / HTTP/1.1",
      "GET / HTTP/1.1 ",
      " GET / HTTP/1.1",
      "GET / http/1.1",
      "GET / HTTP/1",
      "GET / HTTP/11.1",
      "GET\t/ HTTP/1.1",
    ]
  ) {
    assertEquals(refusal(get(["Host: x"], line)), [400, "bad_request"], line);
  }
});

Deno.test("parseHead() accepts any token as a method, as sent, and refuses others", () => {
  assertEquals(parse(get(["Host: x"], "PATCH / HTTP/1.1")).method, "PATCH");
  assertEquals(parse(get(["Host: x"], "get / HTTP/1.1")).method, "get");
  assertEquals(parse(get(["Host: x"], "M-SEARCH / HTTP/1.1")).method, "M-SEARCH");
  assertEquals(refusal(get(["Host: x"], "G(T / HTTP/1.1")), [400, "bad_request"]);
  assertEquals(refusal(get(["Host: x"], "G\xe9T / HTTP/1.1")), [400, "bad_request"]);
});

Deno.test("parseHead() keeps origin-form and absolute-form targets as sent", () => {
  assertEquals(parse(get(["Host: x"], "GET /kv/a%2Fb?x=1&y HTTP/1.1")).target, "/kv/a%2Fb?x=1&y");
  const absolute = parse(get(["Host: x"], "GET http://other:1/kv/a HTTP/1.1"));
  assertEquals(absolute.target, "http://other:1/kv/a");
  assertEquals(parse(get(["Host: x"], "OPTIONS * HTTP/1.1")).target, "*");
});

Deno.test("parseHead() refuses a target with bytes that are not visible ASCII", () => {
  assertEquals(refusal(get(["Host: x"], "GET /kv/\xe9 HTTP/1.1")), [400, "bad_request"]);
  assertEquals(refusal(get(["Host: x"], "GET /kv/\x7f HTTP/1.1")), [400, "bad_request"]);
  assertEquals(refusal(get(["Host: x"], "GET /kv/\x01 HTTP/1.1")), [400, "bad_request"]);
});

Deno.test("parseHead() answers 414 uri_too_long to a target past maxUrlBytes, and takes one at it", () => {
  const limits = { ...LIMITS, maxUrlBytes: 100 };
  const at = "/" + "a".repeat(99);
  assertEquals(parse(get(["Host: x"], `GET ${at} HTTP/1.1`), limits).target, at);
  assertEquals(refusal(get(["Host: x"], `GET ${at}a HTTP/1.1`), limits), [414, "uri_too_long"]);
  // Too long is said before what is in it.
  assertEquals(refusal(get(["Host: x"], `GET ${at}\xe9 HTTP/1.1`), limits), [414, "uri_too_long"]);
});

Deno.test("parseHead() refuses whitespace before a header's colon, lines without one, and empty names", () => {
  for (const field of ["Host : x", "Host\t: x", "Host x", ": x", "X(y): z", "X\xe9: z"]) {
    assertEquals(refusal(get(["Host: x", field])), [400, "bad_request"], field);
  }
});

Deno.test("parseHead() refuses obsolete line folding", () => {
  assertEquals(refusal(get(["Host: x", "X-Long: a", " b"])), [400, "bad_request"]);
  assertEquals(refusal(get(["Host: x", "X-Long: a", "\tb: c"])), [400, "bad_request"]);
});

Deno.test("parseHead() refuses control characters in header values but keeps tabs and Latin-1", () => {
  for (const value of ["a\x00b", "a\rb", "a\nb", "a\x1bb", "a\x7fb"]) {
    const [status, code] = refusal(get(["Host: x", `X-A: ${value}`]));
    assertEquals([status, code], [400, "bad_request"], JSON.stringify(value));
  }
  const head = parse(get(["Host: x", "X-A: a\tb \xe9"]));
  assertEquals(head.headers[1], ["x-a", "a\tb \xe9"]);
});

Deno.test("parseHead() answers 431 past MAX_HEADER_FIELDS fields and takes exactly that many", () => {
  const fields = (
    n: number,
  ) => ["Host: x", ...Array.from({ length: n - 1 }, (_, i) => `X-${i}: v`)];
  assertEquals(parse(get(fields(MAX_HEADER_FIELDS))).headers.length, MAX_HEADER_FIELDS);
  assertEquals(refusal(get(fields(MAX_HEADER_FIELDS + 1))), [431, "headers_too_large"]);
});

Deno.test("parseHead() answers 431 when header lines pass maxHeaderBytes, counting name, value and 4", () => {
  const limits = { ...LIMITS, maxHeaderBytes: 100 };
  // "host" + "x" + 4 = 9 bytes, "x-a" + value + 4: 91 bytes in all at the limit.
  const value = "v".repeat(100 - 9 - 3 - 4);
  assertEquals(parse(get(["Host: x", `X-A: ${value}`]), limits).headers.length, 2);
  assertEquals(refusal(get(["Host: x", `X-A: ${value}v`]), limits), [431, "headers_too_large"]);
});

Deno.test("parseHead() reads Content-Length and refuses repeated, listed, signed, non-numeric or huge ones", () => {
  assertEquals(parse(get(["Host: x", "Content-Length: 42"])).contentLength, 42);
  assertEquals(parse(get(["Host: x", "Content-Length: 0"])).contentLength, 0);
  assertEquals(parse(get(["Host: x", "Content-Length: 999999999999999"])).contentLength, 1e15 - 1);
  for (
    const fields of [
      ["Content-Length: 5", "Content-Length: 5"],
      ["Content-Length: 5, 5"],
      ["Content-Length: +5"],
      ["Content-Length: -1"],
      ["Content-Length: 0x10"],
      ["Content-Length: 5 5"],
      ["Content-Length: "],
      ["Content-Length: 1e3"],
      ["Content-Length: 1000000000000000"],
    ]
  ) {
    assertEquals(refusal(get(["Host: x", ...fields])), [400, "invalid_header"], fields.join("|"));
  }
});

Deno.test("parseHead() takes Transfer-Encoding: chunked in any case, without a length", () => {
  const head = parse(get(["Host: x", "Transfer-Encoding: chunked"]));
  assertEquals([head.chunked, head.contentLength], [true, null]);
  assertEquals(parse(get(["Host: x", "Transfer-Encoding: Chunked "])).chunked, true);
  assertEquals(parse(get(["Host: x"])).chunked, false);
});

Deno.test("parseHead() refuses Transfer-Encoding with Content-Length, or in HTTP/1.0", () => {
  assertEquals(
    refusal(get(["Host: x", "Content-Length: 5", "Transfer-Encoding: chunked"])),
    [400, "invalid_header"],
  );
  assertEquals(
    refusal(get(["Transfer-Encoding: chunked", "Host: x", "Content-Length: 5"])),
    [400, "invalid_header"],
  );
  assertEquals(
    refusal(get(["Transfer-Encoding: chunked"], "POST / HTTP/1.0")),
    [400, "invalid_header"],
  );
});

Deno.test("parseHead() answers 501 not_implemented to transfer codings other than chunked alone", () => {
  for (
    const fields of [
      ["Transfer-Encoding: gzip"],
      ["Transfer-Encoding: gzip, chunked"],
      ["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"],
      ["Transfer-Encoding: chunked, chunked"],
      ["Transfer-Encoding: identity"],
      ["Transfer-Encoding: "],
    ]
  ) {
    assertEquals(refusal(get(["Host: x", ...fields])), [501, "not_implemented"], fields.join("|"));
  }
});

Deno.test("parseHead() needs exactly one Host in HTTP/1.1, at most one in 1.0, and a host-like value", () => {
  assertEquals(refusal(get([])), [400, "bad_request"]);
  assertEquals(refusal(get(["Host: a", "Host: a"])), [400, "bad_request"]);
  assertEquals(parse(get([], "GET / HTTP/1.0")).host, "");
  assertEquals(parse(get(["Host: a"], "GET / HTTP/1.0")).host, "a");
  assertEquals(refusal(get(["Host: a", "Host: b"], "GET / HTTP/1.0")), [400, "bad_request"]);
  assertEquals(parse(get(["Host: [::1]:7000"])).host, "[::1]:7000");
  assertEquals(parse(get(["Host: "])).host, "");
  for (const host of ["a b", "a/b", "a@b", "a?b", "a#b", "a\\b", "\xe9"]) {
    assertEquals(refusal(get([`Host: ${host}`])), [400, "bad_request"], host);
  }
});

Deno.test("parseHead() keeps HTTP/1.1 connections unless closed, and 1.0 ones only when asked", () => {
  assertEquals(parse(get(["Host: x"])).keepAlive, true);
  assertEquals(parse(get(["Host: x", "Connection: close"])).keepAlive, false);
  assertEquals(parse(get(["Host: x", "Connection: Upgrade, Close"])).keepAlive, false);
  assertEquals(parse(get(["Host: x", "Connection: te", "Connection: close"])).keepAlive, false);
  assertEquals(parse(get(["Host: x", "Connection: keep-alive"])).keepAlive, true);
  assertEquals(parse(get([], "GET / HTTP/1.0")).keepAlive, false);
  assertEquals(parse(get(["Connection: Keep-Alive"], "GET / HTTP/1.0")).keepAlive, true);
  assertEquals(parse(get(["Connection: close"], "GET / HTTP/1.0")).keepAlive, false);
});

Deno.test("parseHead() sees Expect: 100-continue in any case, and nothing else as it", () => {
  assertEquals(parse(get(["Host: x", "Expect: 100-continue"])).expectContinue, true);
  assertEquals(parse(get(["Host: x", "Expect: 100-Continue"])).expectContinue, true);
  assertEquals(parse(get(["Host: x", "Expect: 200-ok"])).expectContinue, false);
});

Deno.test("parseHead() skips empty lines before the request line", () => {
  assertEquals(parse("\r\n" + get(["Host: x"])).target, "/kv/a");
  assertEquals(parse("\n" + get(["Host: x"])).target, "/kv/a");
});

Deno.test("parseHead() reads the head at an offset of a buffer that holds other bytes around it", () => {
  const before = "POST /x HTTP/1.1\r\nHost: y\r\nContent-Length: 2\r\n\r\nhi";
  const head = get(["Host: x"]);
  const buf = bytesOf(before + head + "GET /next");
  const end = headEnd(buf, before.length, buf.length);
  assertEquals(end, before.length + head.length);
  assertEquals(parseHead(buf, before.length, end, LIMITS).target, "/kv/a");
});

Deno.test("headEnd() finds the end of the blank line, or -1 before it arrived", () => {
  const text = get(["Host: x"]);
  const buf = bytesOf(text + "body");
  assertEquals(headEnd(buf, 0, buf.length), text.length);
  assertEquals(headEnd(buf, 0, text.length), text.length);
  assertEquals(headEnd(buf, 0, text.length - 1), -1);
  // Resuming from where a previous look stopped finds the same end.
  assertEquals(headEnd(buf, 0, buf.length, text.length - 3), text.length);
  assertEquals(headEnd(bytesOf("GET / HTTP/1.1\nHost: x\n\n"), 0, 24), -1);
});

Deno.test("headEnd() does not look before `start` or at `to` and past it", () => {
  // The previous request's bytes end in "\r\n\r"; this one's first byte is "\n".
  const buf = bytesOf("xx\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
  assertEquals(headEnd(buf, 5, buf.length), buf.length);
  assertEquals(headEnd(buf, 6, buf.length), buf.length);
  // Stale bytes after `to` (a buffer reused for a longer request) are not read.
  const stale = bytesOf("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  assertEquals(headEnd(stale, 0, stale.length - 1), -1);
  assertEquals(headEnd(stale, 0, stale.length - 2), -1);
});

Deno.test("headTooLong() answers 414 while still in the request line, else 431", () => {
  const limits = { maxUrlBytes: 100, maxHeaderBytes: 100 };
  const line = bytesOf("GET /" + "a".repeat(300));
  const inLine = headTooLong(line, 0, line.length, limits);
  assertEquals([inLine.status, inLine.code], [414, "uri_too_long"]);
  const headers = bytesOf("GET / HTTP/1.1\r\nX-A: " + "v".repeat(300));
  const inHeaders = headTooLong(headers, 0, headers.length, limits);
  assertEquals([inHeaders.status, inHeaders.code], [431, "headers_too_large"]);
  assertEquals(maxHeadBytes(limits), 264);
});

Deno.test("latin1() maps each byte to one character, across its 8192-byte steps", () => {
  const bytes = Uint8Array.from({ length: 20000 }, (_, i) => i % 256);
  const text = latin1(bytes, 0, bytes.length);
  assertEquals(text.length, 20000);
  assertEquals([text.charCodeAt(255), text.charCodeAt(8192), text.charCodeAt(19999)], [
    255,
    8192 % 256,
    19999 % 256,
  ]);
  assertEquals(latin1(bytesOf("xx\xe9yy"), 2, 3), "\xe9");
});

Deno.test("parseHead() with a cache reuses the header lines of the previous request only when they are the same", () => {
  const limits = { maxUrlBytes: 8192, maxHeaderBytes: 16384 };
  const cache: { last?: HeaderCache } = {};
  const parse = (text: string) => {
    const bytes = new TextEncoder().encode(text);
    return parseHead(bytes, 0, bytes.length, limits, cache);
  };
  const first = parse("GET /a HTTP/1.1\r\nHost: x\r\n\r\n");
  const second = parse("PUT /b HTTP/1.1\r\nHost: x\r\n\r\n");
  assertEquals([second.method, second.target, second.headers], ["PUT", "/b", [["host", "x"]]]);
  assertEquals(second.headers === first.headers, true, "the same block is parsed once");
  const other = parse("GET /c HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  assertEquals([other.keepAlive, other.headers.length], [false, 2]);
  // The same lines under HTTP/1.0 mean something else (keep-alive, Host optional).
  const old = parse("GET /d HTTP/1.0\r\nHost: x\r\nConnection: close\r\n\r\n");
  assertEquals([old.minor, old.keepAlive], [0, false]);
  const again = parse("GET /e HTTP/1.0\r\nHost: x\r\nConnection: keep-alive\r\n\r\n");
  assertEquals(again.keepAlive, true);
  // A bad block is refused every time, never cached as good.
  for (let i = 0; i < 2; i++) {
    assertThrows(() => parse("GET /f HTTP/1.1\r\nHost: x\r\nBad Name: y\r\n\r\n"), RingkvError);
  }
});
