/**
 * Writing a `Response` on an HTTP/1.1 connection: the status line and headers in one
 * buffer with the body when the body is a single chunk (one write per small answer), and
 * chunked transfer coding for a body that streams. Framing headers (`Content-Length`,
 * `Transfer-Encoding`, `Connection`) are the server's to write, never the handler's.
 *
 * @module
 */
import type { FastAnswer } from "./fast.ts";

/** The writer side a connection needs (a `Deno.Conn` has it). */
export interface Writable {
  write(p: Uint8Array): Promise<number>;
}

const REASONS: Record<number, string> = {
  100: "Continue",
  200: "OK",
  201: "Created",
  204: "No Content",
  304: "Not Modified",
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  412: "Precondition Failed",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/** Headers the server writes itself from how it frames the body. */
const FRAMING = new Set(["connection", "content-length", "transfer-encoding", "keep-alive"]);

const encoder = new TextEncoder();
// HTTP/1.0 clients keep a connection only when told; HTTP/1.1 clients unless told otherwise.
const KEEP = "connection: keep-alive\r\n\r\n";

/** Writes all of `bytes` (a socket may take fewer per call). */
export async function writeAll(conn: Writable, bytes: Uint8Array): Promise<void> {
  for (let at = 0; at < bytes.byteLength;) at += await conn.write(bytes.subarray(at));
}

/** How the response goes out. */
export interface ResponseOptions {
  /** HEAD request: headers only, with the Content-Length the handler gave if any. */
  head: boolean;
  keepAlive: boolean;
  /** HTTP/1.0 client: no chunked coding; a streamed body ends with the connection. */
  minor: 0 | 1;
  /** The value of the Date header. */
  date: string;
}

/** Writes `res`; returns whether the connection may carry another request. */
export async function writeResponse(
  conn: Writable,
  res: Response,
  options: ResponseOptions,
): Promise<boolean> {
  const status = res.status;
  const noBody = options.head || status === 204 || status === 304 || status < 200;
  let keepAlive = options.keepAlive && res.headers.get("connection")?.toLowerCase() !== "close";
  let head = `HTTP/1.1 ${status} ${REASONS[status] ?? (res.statusText || "Unknown")}\r\n`;
  for (const [name, value] of res.headers) {
    if (!FRAMING.has(name)) head += `${name}: ${value}\r\n`;
  }
  head += `date: ${options.date}\r\n`;
  if (noBody) {
    const length = res.headers.get("content-length");
    if (options.head && length !== null) head += `content-length: ${length}\r\n`;
    await res.body?.cancel();
    await writeAll(conn, encodeHead(head, keepAlive, 0));
    return keepAlive;
  }
  const reader = res.body?.getReader();
  const first = reader === undefined ? undefined : await reader.read();
  const second = first === undefined || first.done ? first : await reader!.read();
  if (first === undefined || first.done || second!.done) {
    // The whole body is one chunk (or none): one write with its length.
    const body = first === undefined || first.done ? new Uint8Array(0) : first.value;
    head += `content-length: ${body.byteLength}\r\n`;
    await writeAll(conn, encodeHead(head, keepAlive, body.byteLength, body));
    return keepAlive;
  }
  if (options.minor === 0) keepAlive = false;
  else head += "transfer-encoding: chunked\r\n";
  const chunked = options.minor === 1;
  try {
    await writeAll(conn, encodeHead(head, keepAlive, 0));
    await writeChunk(conn, first.value, chunked);
    await writeChunk(conn, second!.value!, chunked);
    for (;;) {
      const { done, value } = await reader!.read();
      if (done) break;
      await writeChunk(conn, value, chunked);
    }
  } catch (err) {
    // The client left mid-stream: let the body's source stop (and free what it holds).
    await reader!.cancel().catch(() => {});
    throw err;
  }
  if (chunked) await writeAll(conn, encoder.encode("0\r\n\r\n"));
  return keepAlive;
}

/** Writes a fast path's answer in one write; returns whether the connection may go on. */
export async function writeFastAnswer(
  conn: Writable,
  answer: FastAnswer,
  options: ResponseOptions,
): Promise<boolean> {
  const status = answer.status;
  let head = `HTTP/1.1 ${status} ${REASONS[status] ?? "Unknown"}\r\n`;
  for (const name in answer.headers) head += `${name}: ${answer.headers[name]}\r\n`;
  // ASCII text is encoded straight into the answer's buffer (its length is its byte count).
  const body = typeof answer.body !== "string" || NON_ASCII.test(answer.body)
    ? bytesOf(answer.body)
    : answer.body;
  const bodyBytes = typeof body === "string" ? body.length : body.byteLength;
  head += `date: ${options.date}\r\ncontent-length: ${bodyBytes}\r\n`;
  const noBody = options.head || status === 204 || status === 304;
  const bytes = encodeHead(
    head,
    options.keepAlive,
    noBody ? 0 : bodyBytes,
    noBody ? undefined : body,
  );
  await writeAll(conn, bytes);
  return options.keepAlive;
}

const NON_ASCII = /[\u0080-\uffff]/;

function bytesOf(body: string | Uint8Array): Uint8Array {
  return typeof body === "string" ? encoder.encode(body) : body;
}

async function writeChunk(conn: Writable, bytes: Uint8Array, chunked: boolean): Promise<void> {
  if (bytes.byteLength === 0) return;
  if (!chunked) return await writeAll(conn, bytes);
  await writeAll(conn, encoder.encode(`${bytes.byteLength.toString(16)}\r\n`));
  await writeAll(conn, bytes);
  await writeAll(conn, encoder.encode("\r\n"));
}

/** The head (with its Connection header and blank line) and `body` (ASCII if text) in one buffer. */
function encodeHead(
  head: string,
  keepAlive: boolean,
  bodyBytes: number,
  body?: Uint8Array | string,
): Uint8Array {
  const text = head + (keepAlive ? KEEP : "connection: close\r\n\r\n");
  // Header values are byte strings: one byte per character, never UTF-8.
  const out = new Uint8Array(text.length + bodyBytes);
  if (!/[^\t\r\n -~]/.test(text)) encoder.encodeInto(text, out);
  else for (let i = 0; i < text.length; i++) out[i] = text.charCodeAt(i);
  if (typeof body === "string") encoder.encodeInto(body, out.subarray(text.length));
  else if (body !== undefined) out.set(body, text.length);
  return out;
}

/** The bytes of a bare `100 Continue`. */
export const CONTINUE = encoder.encode("HTTP/1.1 100 Continue\r\n\r\n");
