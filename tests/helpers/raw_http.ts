/**
 * Raw HTTP/1.1 over TCP for tests that must send what `fetch` refuses to: malformed
 * request lines, conflicting framing headers, bodies that stop half-way, trickled bytes.
 *
 * @module
 */

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** What came back on one connection. */
export interface RawAnswer {
  /** Status of the first response, when one arrived. */
  status?: number;
  /** Its header block, lower-cased names. */
  headers: Map<string, string>;
  body: string;
  /** The server closed the connection (before or after answering). */
  closed: boolean;
  /** The deadline passed before a full response or a close. */
  timedOut: boolean;
  /** Milliseconds from the first byte sent to the answer (or close, or deadline). */
  ms: number;
}

/** One raw exchange: the bytes to send, then how long to wait for the answer. */
export interface RawRequest {
  /** Sent at once; a string is sent as UTF-8. */
  send: string | Uint8Array;
  /** Close our side right after sending (a client that disconnects mid-request). */
  hangUp?: boolean;
  /** How long to wait for a complete response or a close. */
  timeoutMs?: number;
}

/** Bytes of a string, with `\xNN` kept as single bytes (for invalid UTF-8 on the wire). */
export function latin1(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0xff);
}

function parseHead(head: string): { status?: number; headers: Map<string, string> } {
  const lines = head.split("\r\n");
  const status = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? "")?.[1];
  const headers = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    if (colon > 0) headers.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 1).trim());
  }
  return { status: status === undefined ? undefined : Number(status), headers };
}

/** Sends `req.send` on a new connection to `port` and reads one response. */
export async function rawExchange(port: number, req: RawRequest): Promise<RawAnswer> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const started = performance.now();
  const answer: RawAnswer = {
    headers: new Map(),
    body: "",
    closed: false,
    timedOut: false,
    ms: 0,
  };
  const timer = setTimeout(() => {
    answer.timedOut = true;
    conn.close();
  }, req.timeoutMs ?? 1000);
  try {
    const bytes = typeof req.send === "string" ? encoder.encode(req.send) : req.send;
    await conn.write(bytes).catch(() => {});
    if (req.hangUp) await conn.closeWrite().catch(() => {});
    await readAnswer(conn, answer);
  } finally {
    clearTimeout(timer);
    answer.ms = Math.round(performance.now() - started);
    if (!answer.timedOut) {
      try {
        conn.close();
      } catch { /* closed by the deadline */ }
    }
  }
  return answer;
}

async function readAnswer(conn: Deno.Conn, answer: RawAnswer): Promise<void> {
  let received = new Uint8Array(0);
  const buf = new Uint8Array(64 * 1024);
  for (;;) {
    let n: number | null;
    try {
      n = await conn.read(buf);
    } catch {
      n = null; // reset by the server, or closed by our deadline
    }
    if (n === null) {
      answer.closed = !answer.timedOut;
      fill(answer, received);
      return;
    }
    const next = new Uint8Array(received.length + n);
    next.set(received);
    next.set(buf.subarray(0, n), received.length);
    received = next;
    if (fill(answer, received)) return;
  }
}

/** Parses what arrived; true once a whole response (by Content-Length) is in. */
function fill(answer: RawAnswer, received: Uint8Array): boolean {
  let text = decoder.decode(received);
  // Interim answers (100 Continue) come before the real one.
  while (/^HTTP\/1\.[01] 1\d\d /.test(text) && text.includes("\r\n\r\n")) {
    text = text.slice(text.indexOf("\r\n\r\n") + 4);
  }
  const end = text.indexOf("\r\n\r\n");
  if (end === -1) return false;
  const { status, headers } = parseHead(text.slice(0, end));
  answer.status = status;
  answer.headers = headers;
  answer.body = text.slice(end + 4);
  const length = Number(headers.get("content-length") ?? "NaN");
  return Number.isFinite(length) && encoder.encode(answer.body).length >= length;
}
