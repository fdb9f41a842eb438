/**
 * One exchange on a connection, once its head is read: the fast path's answer when it has
 * one, else the `Request` built for the handler (with the checks a `Request` would skip:
 * forbidden methods, dot segments, a `#`), the handler's answer, and its writing.
 *
 * @module
 */
import { errorBody, errorResponse, RingkvError } from "../errors.ts";
import { DOT_SEGMENT } from "../keys.ts";
import { type BodyState, bodyStream } from "./body.ts";
import type { ConnInput } from "./conn_input.ts";
import type { ConnContext, ConnInfo, Http1Handler } from "./connection.ts";
import type { FastAnswer, FastHandler, FastRequest } from "./fast.ts";
import type { RequestHead } from "./head.ts";
import { CONTINUE, type Writable, writeAll, writeFastAnswer, writeResponse } from "./response.ts";

/** Bodies up to this size are read with the head, so the fast path can take them. */
export const PREFETCH_BODY_BYTES = 16 * 1024;

const FORBIDDEN_METHODS = new Set(["CONNECT", "TRACE", "TRACK"]);
/** The body of a request without one (never written to: a fast handler only reads it). */
const NO_BODY = new Uint8Array(0);

/** Whether the fast path may see this request: origin-form target, small whole body. */
export function fastCandidate(head: RequestHead): boolean {
  return head.target.charCodeAt(0) === 47 && !head.target.includes("#") && !head.chunked &&
    !head.expectContinue &&
    (head.contentLength ?? 0) <= PREFETCH_BODY_BYTES;
}

/** Answers on the fast path: whether the connection goes on, or null when `fast` declined. */
export async function serveFast(
  fast: FastHandler,
  head: RequestHead,
  input: ConnInput,
  out: Writable,
  ctx: ConnContext,
): Promise<boolean | null> {
  const length = head.contentLength ?? 0;
  const query = head.target.indexOf("?");
  const headers = head.headers;
  const req: FastRequest = {
    method: head.method,
    path: query === -1 ? head.target : head.target.slice(0, query),
    header(name) {
      let value: string | null = null;
      for (const [n, v] of headers) if (n === name) value = value === null ? v : `${value}, ${v}`;
      return value;
    },
    // A copy: the buffer is reused for the next request while the handler may keep this.
    body: length === 0 ? NO_BODY : input.buf.slice(input.start, input.start + length),
  };
  let answer: FastAnswer | null;
  try {
    answer = await fast(req);
  } catch (err) {
    console.error(`ringkv: unhandled error answering ${head.method} ${req.path}:`, err);
    const body = errorBody("internal", "Cannot serve the request: internal error");
    answer = {
      status: 500,
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    };
  }
  if (answer === null) return null;
  input.skip(length);
  return await writeFastAnswer(out, answer, {
    head: head.method === "HEAD",
    keepAlive: head.keepAlive && !ctx.stopping(),
    minor: head.minor,
    date: ctx.date(),
  });
}

/** Answers through the handler: whether the connection goes on. */
export async function serveRequest(
  head: RequestHead,
  input: ConnInput,
  out: Writable,
  info: ConnInfo,
  ctx: ConnContext,
): Promise<boolean> {
  const state: BodyState = { done: false, failed: null, started: false };
  const req = buildRequest(head, input, out, state, ctx);
  let res = req instanceof RingkvError ? errorResponse(req) : await answer(ctx.handler, req, info);
  if (state.failed !== null) {
    await res.body?.cancel();
    res = errorResponse(state.failed);
  }
  const keepAlive = head.keepAlive && state.done && state.failed === null && !ctx.stopping();
  return await writeResponse(out, res, {
    head: head.method === "HEAD",
    keepAlive,
    minor: head.minor,
    date: ctx.date(),
  });
}

async function answer(handler: Http1Handler, req: Request, info: ConnInfo): Promise<Response> {
  try {
    return await handler(req, info);
  } catch (err) {
    // The apps answer their own errors; this is a bug, not the client's doing.
    console.error(`ringkv: unhandled error answering ${req.method} ${req.url}:`, err);
    return errorResponse(new RingkvError("internal", "Cannot serve the request: internal error"));
  }
}

/** The `Request` for `head`, or the error to answer instead (its body is never read). */
function buildRequest(
  head: RequestHead,
  input: ConnInput,
  out: Writable,
  state: BodyState,
  ctx: ConnContext,
): Request | RingkvError {
  const method = head.method.toUpperCase();
  if (FORBIDDEN_METHODS.has(method)) {
    return new RingkvError("method_not_allowed", `Cannot serve ${head.method}: no route has it`);
  }
  const url = requestUrl(head, ctx);
  if (url instanceof RingkvError) return url;
  const length = head.contentLength ?? 0;
  let body: BodyInit | null = null;
  if (!head.chunked && length === 0) {
    state.done = true;
  } else if (!head.chunked && input.buffered >= length) {
    // The whole body came with the head (most requests): no stream needed.
    const bytes = input.take(length);
    state.done = true;
    if (method !== "GET" && method !== "HEAD") body = bytes as Uint8Array<ArrayBuffer>;
  } else if (method !== "GET" && method !== "HEAD") {
    const sendContinue = head.expectContinue && head.minor === 1;
    body = bodyStream(
      input,
      head,
      state,
      () => sendContinue ? writeAll(out, CONTINUE) : Promise.resolve(),
    );
  }
  try {
    return new Request(url, { method: head.method, headers: head.headers, body });
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    return new RingkvError("bad_request", `Cannot serve the request: ${err.message}`);
  }
}

/**
 * The URL of the `Request`. WHATWG URL parsing would change what the client named: it
 * resolves `.` and `..` segments (also `%2e`) and turns `\` into `/`. A backslash is
 * percent-encoded (routes decode it back), and a dot segment is refused: with the app's own
 * error when it has one for the path (`ctx.dotSegment`), else as a bad request.
 */
function requestUrl(head: RequestHead, ctx: ConnContext): string | RingkvError {
  const target = head.target;
  const origin = target.charCodeAt(0) === 47;
  if (!origin && !/^https?:\/\//i.test(target)) {
    return new RingkvError("bad_request", "Cannot serve the request: its target must start with /");
  }
  if (target.includes("#")) {
    return new RingkvError(
      "bad_request",
      "Cannot serve the request: its target has a # (fragment)",
    );
  }
  const pathStart = origin ? 0 : target.indexOf("/", target.indexOf("//") + 2);
  const query = target.indexOf("?");
  const path = pathStart === -1 ? "/" : target.slice(pathStart, query === -1 ? undefined : query);
  if (DOT_SEGMENT.test(path)) {
    return ctx.dotSegment?.(path) ?? new RingkvError(
      "bad_request",
      "Cannot serve the request: its path has a . or .. segment",
    );
  }
  const raw = target.includes("\\") ? target.replaceAll("\\", "%5C") : target;
  return origin ? `${ctx.scheme}://${head.host || "localhost"}${raw}` : raw;
}

/** Answers `err` and asks for the connection to be closed. */
export async function answerAndClose(
  out: Writable,
  err: RingkvError,
  ctx: ConnContext,
): Promise<void> {
  try {
    await writeResponse(out, errorResponse(err), {
      head: false,
      keepAlive: false,
      minor: 1,
      date: ctx.date(),
    });
  } catch { /* the client is gone */ }
}
