/**
 * The fast path of a server: hot routes answered from the parsed head without building a
 * `Request` or a `Response` (each costs more than the route's own work). A fast handler
 * returns null for anything it does not answer itself, before doing anything that
 * matters; the request then goes to the app's `fetch` as usual. The HTTP/1.1 server
 * calls it only when the whole body is already read.
 *
 * @module
 * @example
 * ```ts
 * import { type FastHandler, withFastPath } from "./fast.ts";
 * const fast: FastHandler = (req) =>
 *   req.path === "/ping" ? { status: 200, headers: {}, body: "pong" } : null;
 * const fetch = withFastPath(() => new Response("slow"), fast);
 * console.assert(await (await fetch(new Request("http://x/ping"))).text() === "pong");
 * ```
 */
import { errorBody, type RingkvError } from "../errors.ts";

/** A request as a fast handler sees it. */
export interface FastRequest {
  readonly method: string;
  /** The path as sent (still percent-encoded), without the query. */
  readonly path: string;
  /** A header's value (name in lower case), repeated fields joined with ", "; null if absent. */
  header(name: string): string | null;
  /** The whole body (empty when there is none). */
  readonly body: Uint8Array;
}

/** An answer of a fast handler; the server adds Date, Content-Length and Connection. */
export interface FastAnswer {
  status: number;
  headers: Record<string, string>;
  body: Uint8Array | string;
}

/**
 * A fast handler: an answer, or null to let the app's `fetch` answer. It sees the request
 * before the server's own refusals of a `Request` (CONNECT/TRACE, `.`/`..` segments, a `#`
 * in the target: shared/http1/connection.ts `buildRequest`), so it must match exact
 * methods and paths and parse keys with `keyFromPath` (which refuses dot segments).
 */
export type FastHandler = (req: FastRequest) => FastAnswer | null | Promise<FastAnswer | null>;

/** A `fetch`-style handler. */
type Fetch<A extends unknown[]> = (req: Request, ...rest: A) => Response | Promise<Response>;

/**
 * `slow` with `fast` ahead of it for requests without a body, for callers that have a
 * `Request` (tests through `app.request()`); the HTTP/1.1 server calls `fast` directly.
 */
export function withFastPath<A extends unknown[]>(slow: Fetch<A>, fast: FastHandler): Fetch<A> {
  return async (req, ...rest) => {
    if (req.body !== null) return slow(req, ...rest);
    const answer = await fast(fastRequestOf(req));
    return answer === null ? slow(req, ...rest) : responseOf(answer);
  };
}

/** The fast view of a bodiless `Request`. */
export function fastRequestOf(req: Request): FastRequest {
  const url = req.url;
  const start = url.indexOf("/", url.indexOf("://") + 3);
  const query = start === -1 ? -1 : url.indexOf("?", start);
  const path = start === -1 ? "/" : query === -1 ? url.slice(start) : url.slice(start, query);
  return {
    method: req.method,
    path,
    header: (name) => req.headers.get(name),
    body: new Uint8Array(0),
  };
}

/** The `Response` of a fast answer. */
export function responseOf(answer: FastAnswer): Response {
  const body = answer.body as Uint8Array<ArrayBuffer> | string;
  return new Response(body, { status: answer.status, headers: answer.headers });
}

/** The fast answer of a ringkv error: its status and the one JSON error body. */
export function fastError(err: RingkvError, headers: Record<string, string> = {}): FastAnswer {
  return {
    status: err.status,
    headers: { "content-type": "application/json", ...headers },
    body: JSON.stringify(errorBody(err.code, err.message, err.extra)),
  };
}
