/**
 * One HTTP/1.1 connection: read a head (within the header timeout), build the `Request`,
 * let the handler answer, write the answer, and go on with the next request while both
 * sides keep the connection. Every wait has a deadline that the server's sweeper enforces
 * by calling {@link ConnWatch.expire}: the head (`headerMs` from the accept or from the
 * head's first byte), the pause between requests (`idleMs`), and each write of an answer
 * (`sendMs`). The handler owns the time it takes to read a body (it answers 408).
 *
 * @module
 */
import { RingkvError } from "../errors.ts";
import { ConnInput } from "./conn_input.ts";
import {
  answerAndClose,
  fastCandidate,
  PREFETCH_BODY_BYTES,
  serveFast,
  serveRequest,
} from "./exchange.ts";
import type { FastHandler } from "./fast.ts";
import {
  headEnd,
  type HeaderCache,
  type HeadLimits,
  headTooLong,
  maxHeadBytes,
  parseHead,
  type RequestHead,
} from "./head.ts";
import type { Writable } from "./response.ts";

/** What the handler gets besides the request (as `Deno.serve` gives). */
export interface ConnInfo {
  remoteAddr: Deno.NetAddr;
}

/** The handler of every request. */
export type Http1Handler = (req: Request, info: ConnInfo) => Response | Promise<Response>;

/** The waits a connection may make, in ms. */
export interface Http1Timeouts {
  /** From a connection's accept, or a head's first byte, to the end of that head. */
  headerMs: number;
  /** Between the end of an answer and the first byte of the next request. */
  idleMs: number;
  /** For each write of an answer to a client that does not read. */
  sendMs: number;
  /** For a small body read with its head (the app's --body-timeout-ms; larger ones, the app's). */
  bodyMs: number;
}

/** What a connection shares with its server. */
export interface ConnContext {
  handler: Http1Handler;
  /** Tried first for requests whose whole body is small (see PREFETCH_BODY_BYTES in exchange.ts). */
  fast?: FastHandler;
  limits: HeadLimits;
  timeouts: Http1Timeouts;
  scheme: "http" | "https";
  /** The Date header's value now. */
  date(): string;
  /** Whether the server is shutting down (no more requests on any connection). */
  stopping(): boolean;
  /** The refusal of a path with a dot segment (Http1Options.dotSegment). */
  dotSegment?: (path: string) => RingkvError | undefined;
}

/** A connection as its server's sweeper sees it. */
export interface ConnWatch {
  /** `Date.now()` after which the sweeper calls `expire`. */
  deadline: number;
  /** Waiting for a request (not in a handler or a write): shutdown may close it at once. */
  idle: boolean;
  /** Ends the connection: 408 first when part of a head arrived, else a plain close. */
  expire(): void;
}

/** Starts serving `conn`; `done` settles when the connection is closed, and never rejects. */
export function openConnection(
  conn: Deno.Conn,
  ctx: ConnContext,
): ConnWatch & { done: Promise<void> } {
  const input = new ConnInput(conn, maxHeadBytes(ctx.limits) + PREFETCH_BODY_BYTES);
  // The parsed header lines of the last request: most clients repeat them (shared, read-only).
  const headerCache: { last?: HeaderCache } = {};
  // What part of a request has started to arrive: a timeout then answers 408, not a close.
  let arriving: "" | "head" | "body" = "";
  // The first head has headerMs from the accept; a later one, from its first byte.
  let served = false;
  let closed = false;
  // Set by the sweeper: a head or body completing just after its 408 is not served.
  let expired = false;
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      conn.close();
    } catch { /* closed by the other side first */ }
  };
  const watch = {
    deadline: Date.now() + ctx.timeouts.headerMs,
    idle: true,
    expire() {
      expired = true;
      watch.deadline = Infinity;
      if (arriving === "") return close();
      const message = arriving === "head"
        ? `its head did not arrive within ${ctx.timeouts.headerMs} ms (--header-timeout-ms)`
        : `its body did not arrive within ${ctx.timeouts.bodyMs} ms (--body-timeout-ms)`;
      const timeout = new RingkvError("request_timeout", `Cannot serve the request: ${message}`);
      // A client that trickles its request may not read either: the write gets one send timeout.
      const writing = answerAndClose(conn, timeout, ctx);
      const timer = setTimeout(close, ctx.timeouts.sendMs);
      void writing.finally(() => (clearTimeout(timer), close()));
    },
    done: Promise.resolve(),
  };
  const out: Writable = {
    write: async (bytes) => {
      watch.deadline = Date.now() + ctx.timeouts.sendMs;
      const n = await conn.write(bytes);
      watch.deadline = Infinity; // between writes the handler has the time (a stream may pause)
      return n;
    },
  };
  const info: ConnInfo = { remoteAddr: conn.remoteAddr as Deno.NetAddr };

  /** Reads until a whole head is buffered: its end index, -1 when the client left. */
  async function readHead(): Promise<number> {
    skipEmptyLines();
    let end = headEnd(input.buf, input.start, input.end);
    while (end === -1) {
      if (input.buffered >= maxHeadBytes(ctx.limits)) {
        await answerAndClose(out, headTooLong(input.buf, input.start, input.end, ctx.limits), ctx);
        return -1;
      }
      // Offsets from `start`: fill() may move the buffered bytes to the front.
      const scanned = Math.max(0, input.buffered - 3);
      if (!(await input.fill())) return -1;
      if (arriving === "") {
        arriving = "head";
        const start = served ? Infinity : watch.deadline;
        watch.deadline = Math.min(start, Date.now() + ctx.timeouts.headerMs);
      }
      if (skipEmptyLines()) end = headEnd(input.buf, input.start, input.end);
      else end = headEnd(input.buf, input.start, input.end, input.start + scanned);
    }
    return end;
  }

  /**
   * Drops CR and LF bytes before a request line (RFC 9112 2.2: clients may send empty lines
   * after a body); whether any were dropped.
   */
  function skipEmptyLines(): boolean {
    const from = input.start;
    while (
      input.start < input.end && (input.buf[input.start] === 13 || input.buf[input.start] === 10)
    ) {
      input.start++;
    }
    return input.start !== from;
  }

  /** Reads until `length` body bytes are buffered; false when the client left. */
  async function readBody(length: number): Promise<boolean> {
    if (input.buffered >= length) return true;
    arriving = "body";
    watch.deadline = Date.now() + ctx.timeouts.bodyMs;
    while (input.buffered < length) if (!(await input.fill())) return false;
    return true;
  }

  async function serve(): Promise<void> {
    for (;;) {
      watch.idle = true;
      const end = await readHead();
      if (end === -1 || expired) return;
      watch.idle = false;
      let head: RequestHead;
      try {
        head = parseHead(input.buf, input.start, end, ctx.limits, headerCache);
      } catch (err) {
        if (!(err instanceof RingkvError)) throw err;
        return await answerAndClose(out, err, ctx);
      }
      input.start = end;
      const fast = ctx.fast !== undefined && fastCandidate(head);
      // A small body for the fast path counts as part of the head: the same kind of deadline.
      if (fast && (!(await readBody(head.contentLength ?? 0)) || expired)) return;
      // From here the handler owns the time (a slow answer is not a slow client).
      arriving = "";
      watch.deadline = Infinity;
      let keep = fast ? await serveFast(ctx.fast!, head, input, out, ctx) : null;
      keep ??= await serveRequest(head, input, out, info, ctx);
      if (!keep || ctx.stopping()) return;
      input.shrink();
      const pipelined = input.buffered > 0; // the next request already started
      arriving = pipelined ? "head" : "";
      const wait = pipelined ? ctx.timeouts.headerMs : ctx.timeouts.idleMs;
      watch.deadline = Date.now() + wait;
      served = true;
    }
  }

  watch.done = serve().catch(() => {
    // The connection broke, or the sweeper closed it: nothing is left to answer.
  }).finally(close);
  return watch;
}
