/**
 * The request head of HTTP/1.1 (RFC 9112), parsed strictly: a request line, header fields,
 * and what they say about framing. Everything a request smuggler or a fuzzer can send is
 * refused here with the status HTTP gives it and ringkv's JSON error code (400, 414, 431,
 * 501, 505), before any route runs. Pure: bytes in, a {@link RequestHead} or a thrown
 * {@link RingkvError} out.
 *
 * @module
 * @example
 * ```ts
 * import { parseHead } from "./head.ts";
 * const bytes = new TextEncoder().encode("GET /kv/a HTTP/1.1\r\nHost: x\r\n\r\n");
 * const head = parseHead(bytes, 0, bytes.length, { maxUrlBytes: 8192, maxHeaderBytes: 16384 });
 * console.assert(head.target === "/kv/a" && head.keepAlive);
 * ```
 */
import { RingkvError } from "../errors.ts";
import type { RequestLimits } from "../limits.ts";

/** Most header fields in one request (as many servers: hyper and Go allow about 100). */
export const MAX_HEADER_FIELDS = 100;

/** What a request head says. Header names are lower case; values are Latin-1 text. */
export interface RequestHead {
  method: string;
  /** The request target as sent (origin form `/path?query`, or absolute form). */
  target: string;
  /** Minor version: 1 for HTTP/1.1, 0 for HTTP/1.0. */
  minor: 0 | 1;
  headers: [string, string][];
  /** Declared body length, or null when there is no Content-Length. */
  contentLength: number | null;
  chunked: boolean;
  /** Whether the client lets the connection stay open after this request. */
  keepAlive: boolean;
  /** `Expect: 100-continue`: the client waits for a 100 before sending its body. */
  expectContinue: boolean;
  /** The Host header (validated), or "" for an HTTP/1.0 request without one. */
  host: string;
}

/** The limits {@link parseHead} applies. */
export type HeadLimits = Pick<RequestLimits, "maxUrlBytes" | "maxHeaderBytes">;

/** Most bytes a request head may take: the request line at its limit plus the header block. */
export function maxHeadBytes(limits: HeadLimits): number {
  return limits.maxUrlBytes + limits.maxHeaderBytes + 64;
}

/**
 * Index just past the blank line that ends the head starting at `start`, looking at
 * `buf[from, to)` (bytes before `from` were looked at already), or -1 when not there yet.
 */
export function headEnd(buf: Uint8Array, start: number, to: number, from = start): number {
  // A plain loop: indexOf would scan past `to` into stale bytes of the buffer.
  for (let i = Math.max(from, start + 3); i < to; i++) {
    // "\r\n\r\n": this LF ends a line, and the line before ended just before its CR.
    if (buf[i] === 10 && buf[i - 1] === 13 && buf[i - 2] === 10 && buf[i - 3] === 13) return i + 1;
  }
  return -1;
}

const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const REQUEST_LINE = /^([^ ]+) ([^ ]+) HTTP\/(\d)\.(\d)$/;
const TARGET = /^[\x21-\x7e]+$/;
// deno-lint-ignore no-control-regex -- finding control characters is the point
const CONTROL = /[\x00-\x08\x0a-\x1f\x7f]/;
const HOST = /^[A-Za-z0-9.\-_~!$&'()*+,;=:[\]%]*$/;

/**
 * The last header block a connection parsed: clients send the same header lines request
 * after request (only the request line changes), and parsing is a pure function of them.
 */
export interface HeaderCache {
  block: string;
  minor: 0 | 1;
  fields: Omit<RequestHead, "method" | "target" | "minor">;
}

/** Parses the head in `buf[start, end)` (end just past the blank line); throws a 4xx/5xx RingkvError. */
export function parseHead(
  buf: Uint8Array,
  start: number,
  end: number,
  limits: HeadLimits,
  cache?: { last?: HeaderCache },
): RequestHead {
  // RFC 9112 2.2: ignore empty lines before the request line (some clients send one).
  while (start < end - 4 && (buf[start] === 13 || buf[start] === 10)) start++;
  const text = latin1(buf, start, end - 4);
  const lineEnd = text.indexOf("\r\n");
  const { method, target, minor } = requestLine(
    lineEnd === -1 ? text : text.slice(0, lineEnd),
    limits,
  );
  const block = lineEnd === -1 ? "" : text.slice(lineEnd + 2);
  const last = cache?.last;
  if (last !== undefined && last.block === block && last.minor === minor) {
    return { method, target, minor, ...last.fields };
  }
  const fields = headerBlock(block, minor, limits);
  if (cache !== undefined) cache.last = { block, minor, fields };
  return { method, target, minor, ...fields };
}

function headerBlock(block: string, minor: 0 | 1, limits: HeadLimits) {
  const lines = block === "" ? [] : block.split("\r\n");
  if (lines.length > MAX_HEADER_FIELDS) {
    throw tooLarge(`it has ${lines.length} header fields, the limit is ${MAX_HEADER_FIELDS}`);
  }
  const headers: [string, string][] = [];
  let bytes = 0;
  for (const line of lines) {
    const field = headerField(line);
    bytes += field[0].length + field[1].length + 4;
    headers.push(field);
  }
  if (bytes > limits.maxHeaderBytes) {
    throw tooLarge(`its headers are ${bytes} bytes, the limit is ${limits.maxHeaderBytes}`);
  }
  return { headers, ...framing(headers, minor) };
}

function requestLine(line: string, limits: HeadLimits) {
  const match = REQUEST_LINE.exec(line);
  if (match === null) throw bad(`the request line "${clip(line)}" is not HTTP/1.1`);
  const [, method, target, major, minor] = match as unknown as string[];
  if (major !== "1" || (minor !== "0" && minor !== "1")) {
    throw new RingkvError(
      "http_version_not_supported",
      `Cannot serve the request: HTTP/${major}.${minor} is not supported, only HTTP/1.1 and 1.0`,
    );
  }
  if (!TOKEN.test(method!)) throw bad(`the method "${clip(method!)}" is not a token`);
  if (target!.length > limits.maxUrlBytes) throw uriTooLong(target!.length, limits);
  if (!TARGET.test(target!)) throw bad("the request target has bytes that are not visible ASCII");
  return { method: method!, target: target!, minor: minor === "1" ? 1 as const : 0 as const };
}

function headerField(line: string): [string, string] {
  const colon = line.indexOf(":");
  const name = colon === -1 ? line : line.slice(0, colon);
  if (colon <= 0 || !TOKEN.test(name)) {
    // Covers obsolete line folding too: a line starting with a space has no token name.
    throw bad(`the header line "${clip(line)}" is not "name: value"`);
  }
  // Optional white space around the value: spaces and tabs only (not trim()'s wider set).
  let from = colon + 1;
  let to = line.length;
  while (from < to && (line.charCodeAt(from) === 32 || line.charCodeAt(from) === 9)) from++;
  while (to > from && (line.charCodeAt(to - 1) === 32 || line.charCodeAt(to - 1) === 9)) to--;
  const value = line.slice(from, to);
  if (CONTROL.test(value)) throw bad(`the value of header ${name} has a control character`);
  return [name.toLowerCase(), value];
}

/** Content-Length, Transfer-Encoding, Connection, Expect and Host, checked against smuggling. */
function framing(headers: readonly [string, string][], minor: 0 | 1) {
  let contentLength: string | undefined;
  let lengths = 0;
  const codings: string[] = [];
  const connection: string[] = [];
  let expectContinue = false;
  const hosts: string[] = [];
  for (const [name, value] of headers) {
    if (name === "content-length") (lengths++, contentLength = value);
    else if (name === "transfer-encoding") codings.push(value.toLowerCase());
    else if (name === "connection") connection.push(value.toLowerCase());
    else if (name === "expect") expectContinue = value.toLowerCase() === "100-continue";
    else if (name === "host") hosts.push(value);
  }
  if (lengths > 1) throw invalidHeader(`Content-Length appears ${lengths} times`);
  if (contentLength !== undefined && !/^\d{1,15}$/.test(contentLength)) {
    throw invalidHeader(`Content-Length "${clip(contentLength)}" is not a number`);
  }
  const chunked = codings.length > 0;
  if (chunked) {
    if (contentLength !== undefined) {
      throw invalidHeader("it has both Content-Length and Transfer-Encoding");
    }
    if (minor === 0) throw invalidHeader("Transfer-Encoding is not allowed in HTTP/1.0");
    if (codings.join(",").replace(/[ \t]/g, "") !== "chunked") {
      throw new RingkvError(
        "not_implemented",
        `Cannot serve the request: Transfer-Encoding "${
          clip(codings.join(", "))
        }" is not supported, only chunked`,
      );
    }
  }
  if (hosts.length > 1 || (minor === 1 && hosts.length === 0)) {
    throw bad(`an HTTP/1.1 request needs one Host header, it has ${hosts.length}`);
  }
  const host = hosts[0] ?? "";
  if (!HOST.test(host)) throw bad(`the Host "${clip(host)}" is not a host name and port`);
  const tokens = connection.length === 0
    ? []
    : connection.join(",").split(",").map((t) => t.trim());
  const keepAlive = minor === 1 ? !tokens.includes("close") : tokens.includes("keep-alive");
  const length = contentLength === undefined ? null : Number(contentLength);
  return { contentLength: length, chunked, keepAlive, expectContinue, host };
}

/** The text of `buf[start, end)`, one character per byte (HTTP field values are Latin-1). */
export function latin1(buf: Uint8Array, start: number, end: number): string {
  let text = "";
  for (let i = start; i < end; i += 8192) {
    text += String.fromCharCode.apply(null, buf.subarray(i, Math.min(end, i + 8192)) as never);
  }
  return text;
}

/** A refusal of a head that did not end within the limit (414 while still in the request line). */
export function headTooLong(buf: Uint8Array, start: number, end: number, limits: HeadLimits) {
  const lineEnd = buf.subarray(start, end).indexOf(10);
  if (lineEnd === -1) return uriTooLong(end - start, limits);
  return tooLarge(`its head is over ${end - start} bytes, the limit is ${maxHeadBytes(limits)}`);
}

function uriTooLong(length: number, limits: HeadLimits): RingkvError {
  return new RingkvError(
    "uri_too_long",
    `Cannot serve the request: its URL is ${length} bytes or more, the limit is ${limits.maxUrlBytes}`,
  );
}

function tooLarge(what: string): RingkvError {
  return new RingkvError("headers_too_large", `Cannot serve the request: ${what}`);
}

function bad(what: string): RingkvError {
  return new RingkvError("bad_request", `Cannot serve the request: ${what}`);
}

function invalidHeader(what: string): RingkvError {
  return new RingkvError("invalid_header", `Cannot read the request body: ${what}`);
}

/** At most 60 characters of client text for an error message. */
function clip(text: string): string {
  const printable = text.replace(/[^\x20-\x7e]/g, "?");
  return printable.length > 60 ? printable.slice(0, 57) + "..." : printable;
}
