/**
 * A small HTTP/1.1 client for the proxy's hot calls to nodes (`POST /internal/batch`):
 * kept-alive connections per node, one request at a time on each, the answer read by its
 * `Content-Length` (or chunked coding). A `fetch` builds a `Request`, headers and a
 * `Response` and goes through hyper for every call; measured on this machine, that is
 * 58–71 µs of CPU per batch call against 24–29 µs here (`deno run -A
 * tasks/bench/fetch_cost.ts`). Every call has a timeout; a connection that
 * fails, times out or answers oddly is closed, never reused.
 *
 * @module
 */
import { concatBytes } from "../shared/bytes.ts";
import { closeQuietly } from "../shared/http1/server.ts";

/** One call. */
export interface NodeCall {
  method: string;
  /** The absolute URL (`http://host:port/path?query`). */
  url: string;
  headers: Record<string, string>;
  body?: string | undefined;
  timeoutMs: number;
}

/** Its answer. */
export interface NodeAnswer {
  status: number;
  text: string;
}

/** Options of a {@link NodeHttp}. */
export interface NodeHttpOptions {
  /** Extra CA certificates (PEM) to trust for `https` nodes (`--ca`). */
  caCerts?: string[];
  /** Idle connections kept per node (default 16). */
  maxIdle?: number;
}

/** Idle connections older than this are closed, well before a node's 120 s idle limit. */
const IDLE_MS = 60_000;
/** Largest answer read: a batch of 1,000 values of 1 MiB, in base64, fits. */
const MAX_ANSWER_BYTES = 1400 * 1024 * 1024;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const NON_ASCII = /[\u0080-\uffff]/;

interface Idle {
  conn: Deno.Conn;
  since: number;
}

/** Why a call failed: the message `unreachable()` (proxy/node_client.ts) shows. */
class CallError extends Error {
  override name = "CallError";
}

/** Kept-alive HTTP/1.1 connections to nodes. */
export class NodeHttp {
  readonly #idle = new Map<string, Idle[]>();

  /** Creates a client; nothing is opened until the first call. */
  constructor(private readonly options: NodeHttpOptions = {}) {}

  /**
   * Sends `call`; rejects on a timeout (a `TimeoutError` DOMException) or a broken
   * connection. One deadline covers the connect, the exchange and a retry.
   */
  async call(call: NodeCall): Promise<NodeAnswer> {
    const deadline = Date.now() + call.timeoutMs;
    const target = splitUrl(call.url);
    const request = encodeRequest(call, target);
    const headOnly = call.method === "HEAD";
    const reused = this.#take(target.origin);
    try {
      const conn = reused ?? await this.#connect(target, deadline);
      return await this.#exchange(target, conn, request, headOnly, deadline);
    } catch (err) {
      // A kept-alive connection the node had closed before reading anything: send once more
      // on a fresh one (as HTTP clients do); nothing was processed.
      if (reused === undefined || !(err instanceof ClosedBeforeAnswer)) throw err;
      const conn = await this.#connect(target, deadline);
      return await this.#exchange(target, conn, request, headOnly, deadline);
    }
  }

  /** Closes every idle connection. */
  close(): void {
    for (const list of this.#idle.values()) for (const idle of list) closeQuietly(idle.conn);
    this.#idle.clear();
  }

  #take(origin: string): Deno.Conn | undefined {
    const list = this.#idle.get(origin);
    const now = Date.now();
    while (list !== undefined && list.length > 0) {
      const idle = list.pop()!;
      if (now - idle.since < IDLE_MS) return idle.conn;
      closeQuietly(idle.conn);
    }
    return undefined;
  }

  #give(origin: string, conn: Deno.Conn): void {
    let list = this.#idle.get(origin);
    if (list === undefined) this.#idle.set(origin, list = []);
    if (list.length >= (this.options.maxIdle ?? 16)) return closeQuietly(conn);
    list.push({ conn, since: Date.now() });
  }

  async #connect(target: Target, deadline: number): Promise<Deno.Conn> {
    const { hostname, port } = target;
    const connecting: Promise<Deno.Conn> = target.tls
      ? Deno.connectTls({
        hostname,
        port,
        ...(this.options.caCerts ? { caCerts: this.options.caCerts } : {}),
      })
      : Deno.connect({ hostname, port });
    // An unanswered connect waits for the OS (minutes): the call's deadline ends it first.
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(timeoutError()), Math.max(0, deadline - Date.now()));
    });
    try {
      const conn = await Promise.race([connecting, late]);
      if (!target.tls) (conn as Deno.TcpConn).setNoDelay(true);
      return conn;
    } catch (err) {
      connecting.then(closeQuietly, () => {});
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  async #exchange(
    target: Target,
    conn: Deno.Conn,
    request: Uint8Array,
    headOnly: boolean,
    deadline: number,
  ): Promise<NodeAnswer> {
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      closeQuietly(conn);
    }, Math.max(0, deadline - Date.now()));
    try {
      for (let at = 0; at < request.byteLength;) at += await conn.write(request.subarray(at));
      const answer = await readAnswer(conn, headOnly);
      if (timedOut) throw timeoutError();
      // Bytes past the answer mean the connection is out of step: never reuse it.
      if (answer.keepAlive && !answer.leftover) this.#give(target.origin, conn);
      else closeQuietly(conn);
      return { status: answer.status, text: answer.text };
    } catch (err) {
      closeQuietly(conn);
      if (timedOut) throw timeoutError();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** The error of a call that ran out of time (what `fetch` rejects with on its timeout). */
export function timeoutError(): DOMException {
  return new DOMException("The call timed out", "TimeoutError");
}

interface Target {
  origin: string;
  tls: boolean;
  hostname: string;
  port: number;
  /** Host header value. */
  host: string;
  /** Path and query. */
  path: string;
}

function splitUrl(url: string): Target {
  const scheme = url.slice(0, 8).toLowerCase(); // URLs may spell the scheme in capitals
  const tls = scheme.startsWith("https://");
  if (!tls && !scheme.startsWith("http://")) throw new CallError(`Cannot call ${url}: not http(s)`);
  const hostStart = tls ? 8 : 7;
  const slash = url.indexOf("/", hostStart);
  const host = slash === -1 ? url.slice(hostStart) : url.slice(hostStart, slash);
  const path = slash === -1 ? "/" : url.slice(slash);
  const colon = host.lastIndexOf(":");
  const bracketed = host.startsWith("[");
  const hasPort = colon !== -1 && (!bracketed || colon > host.indexOf("]"));
  const name = hasPort ? host.slice(0, colon) : host;
  return {
    origin: url.slice(0, hostStart + host.length),
    tls,
    hostname: bracketed ? name.slice(1, -1) : name,
    port: hasPort ? Number(host.slice(colon + 1)) : tls ? 443 : 80,
    host,
    path,
  };
}

function encodeRequest(call: NodeCall, target: Target): Uint8Array {
  const body = call.body ?? "";
  // Batch bodies are JSON of ASCII keys and base64 values: their length is their byte count,
  // and head and body go out in one encode.
  const bodyBytes = NON_ASCII.test(body) ? encoder.encode(body).byteLength : body.length;
  let head = `${call.method} ${target.path} HTTP/1.1\r\nhost: ${target.host}\r\n`;
  for (const name in call.headers) head += `${name}: ${call.headers[name]}\r\n`;
  return encoder.encode(`${head}content-length: ${bodyBytes}\r\n\r\n${body}`);
}

/** The connection ended before any byte of an answer (a kept-alive one may be retried). */
class ClosedBeforeAnswer extends CallError {}

interface Answer {
  status: number;
  text: string;
  keepAlive: boolean;
  /** Bytes arrived past the answer (the connection is out of step). */
  leftover: boolean;
}

/** Reads one final answer off `conn` (interim 1xx answers are skipped). */
async function readAnswer(conn: Deno.Conn, headOnly: boolean): Promise<Answer> {
  const reader = new AnswerReader(conn);
  for (;;) {
    const headEnd = await reader.until("\r\n\r\n");
    const lines = decoder.decode(reader.take(headEnd + 4)).split("\r\n");
    const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(lines[0]!)?.[1]);
    if (!Number.isInteger(status)) {
      throw new CallError(`a node answered "${lines[0]!.slice(0, 60)}"`);
    }
    if (status === 101) throw new CallError("a node switched protocols");
    if (status < 200) continue; // 100 Continue, 103 Early Hints: the final answer follows
    const { text, keepAlive } = await readBody(reader, status, lines, headOnly);
    return { status, text, keepAlive, leftover: reader.buffered > 0 };
  }
}

async function readBody(
  reader: AnswerReader,
  status: number,
  lines: string[],
  headOnly: boolean,
): Promise<{ text: string; keepAlive: boolean }> {
  let length: number | undefined;
  let chunked = false;
  let close = lines[0]!.startsWith("HTTP/1.0");
  for (const line of lines.slice(1)) {
    const colon = line.indexOf(":");
    const name = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim().toLowerCase();
    if (name === "content-length") length = Number(value);
    else if (name === "transfer-encoding") chunked = value === "chunked";
    else if (name === "connection") close = value.split(",").some((t) => t.trim() === "close");
  }
  if (headOnly || status === 204 || status === 304) return { text: "", keepAlive: !close };
  if (chunked) return { text: decoder.decode(await reader.chunked()), keepAlive: !close };
  if (length !== undefined && Number.isSafeInteger(length) && length >= 0) {
    if (length > MAX_ANSWER_BYTES) throw new CallError(`an answer of ${length} bytes is too large`);
    return { text: decoder.decode(await reader.exactly(length)), keepAlive: !close };
  }
  return { text: decoder.decode(await reader.toEnd()), keepAlive: false };
}

/** Buffered reads of one answer. */
class AnswerReader {
  #buf = new Uint8Array(16 * 1024);
  #start = 0;
  #end = 0;
  #got = 0;

  constructor(private readonly conn: Deno.Conn) {}

  /** Reads until `marker` is buffered; its offset from the start of what is buffered. */
  async until(marker: string): Promise<number> {
    const bytes = encoder.encode(marker);
    for (;;) {
      const at = indexOf(this.#buf.subarray(this.#start, this.#end), bytes);
      if (at !== -1) return at;
      if (this.#end - this.#start > 64 * 1024) throw new CallError("an answer's head is too long");
      await this.#more();
    }
  }

  /** Consumes `n` buffered bytes (a copy). */
  take(n: number): Uint8Array {
    const out = this.#buf.slice(this.#start, this.#start + n);
    this.#start += n;
    return out;
  }

  async exactly(n: number): Promise<Uint8Array> {
    while (this.#end - this.#start < n) await this.#more(n - (this.#end - this.#start));
    return this.take(n);
  }

  async chunked(): Promise<Uint8Array> {
    const parts: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const lineEnd = await this.until("\r\n");
      const size = parseInt(decoder.decode(this.take(lineEnd)).split(";")[0]!.trim(), 16);
      this.take(2);
      if (!Number.isSafeInteger(size) || size < 0) throw new CallError("a chunk size is not hex");
      if (size === 0) {
        for (;;) { // trailer lines, then the empty line
          const end = await this.until("\r\n");
          this.take(end + 2);
          if (end === 0) return concatBytes(parts);
        }
      }
      total += size;
      if (total > MAX_ANSWER_BYTES) throw new CallError("a chunked answer is too large");
      parts.push(await this.exactly(size));
      await this.exactly(2);
    }
  }

  /** Everything until the node closes the connection (an answer without a length). */
  async toEnd(): Promise<Uint8Array> {
    while (await this.#read()) {
      if (this.#end - this.#start > MAX_ANSWER_BYTES) throw new CallError("an answer is too large");
    }
    return this.take(this.#end - this.#start);
  }

  /** Bytes read and not yet taken. */
  get buffered(): number {
    return this.#end - this.#start;
  }

  /** Reads more (with room for `want` bytes, up to 1 MiB at a time); throws at the end. */
  async #more(want = 1): Promise<void> {
    if (await this.#read(want)) return;
    if (this.#got === 0) throw new ClosedBeforeAnswer("the node closed the connection");
    throw new CallError("the node closed the connection in the middle of an answer");
  }

  /** Reads more; false at the end of the stream (errors, e.g. a timeout's close, are thrown). */
  async #read(want = 1): Promise<boolean> {
    const need = Math.min(Math.max(want, 1), 1 << 20);
    if (this.#buf.length - this.#end < need) {
      const live = this.#end - this.#start;
      if (live + need <= this.#buf.length) {
        this.#buf.copyWithin(0, this.#start, this.#end);
      } else {
        const bigger = new Uint8Array(Math.max(this.#buf.length * 2, live + need));
        bigger.set(this.#buf.subarray(this.#start, this.#end));
        this.#buf = bigger;
      }
      this.#start = 0;
      this.#end = live;
    }
    const n = await this.conn.read(this.#buf.subarray(this.#end));
    if (n === null) return false;
    this.#end += n;
    this.#got += n;
    return true;
  }
}

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  const first = needle[0]!;
  for (let i = haystack.indexOf(first); i !== -1; i = haystack.indexOf(first, i + 1)) {
    if (i + needle.length > haystack.length) return -1;
    let j = 1;
    while (j < needle.length && haystack[i + j] === needle[j]) j++;
    if (j === needle.length) return i;
  }
  return -1;
}
