/**
 * The first thing every ringkv server runs on a request, before any route: refuses
 * request targets and header blocks that are too long (414, 431) and requests past the
 * process's in-flight cap (503 with `Retry-After`), each with the one JSON error body.
 * `main.ts` serves the app's `fetch` wrapped with it. `Deno.serve` has no limit of its own
 * on a target's or a header block's length below hyper's (docs/security.md), so these
 * checks are what holds a request to the documented limits.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { guard } from "./guard.ts";
 * import { DEFAULT_REQUEST_LIMITS } from "./limits.ts";
 * const handler = guard(() => new Response("ok"), DEFAULT_REQUEST_LIMITS);
 * const res = await handler(new Request("http://x/" + "a".repeat(9000)), {});
 * assert(res.status === 414);
 * ```
 */
import { errorResponse, RingkvError } from "./errors.ts";
import type { RequestLimits } from "./limits.ts";
import { pathStart } from "./url_path.ts";
import { crossSiteOrigin, type HostAllowed } from "./browser_guard.ts";

/** A `fetch`-style handler; the second argument is Deno.serve's connection info. */
export type FetchHandler<I = unknown> = (req: Request, info: I) => Response | Promise<Response>;

/** A guarded handler, with a view of the requests it is answering. */
export interface GuardedHandler<I = unknown> {
  /** A handler's answer made in the same turn is returned as is, without a promise. */
  (req: Request, info: I): Response | Promise<Response>;
  /** Requests being answered now. */
  inFlight(): number;
}

/** Seconds a client refused for load should wait (`Retry-After`). */
export const RETRY_AFTER_SECONDS = 1;

/** Characters a Host header (host or [v6], then :port) never holds. */
const NOT_A_HOST = /[^A-Za-z0-9.\-_~:\[\]%!$&'()*+,;=]/;

/** Length of the request target (path and query) of a URL, in characters. */
export function targetLength(url: string): number {
  const start = pathStart(url);
  return start === -1 ? 1 : url.length - start;
}

/** Bytes the header lines take on the wire (name, `: `, value, CRLF), as Headers shows them. */
export function headerBytes(headers: Headers): number {
  return headFacts(headers).bytes;
}

/**
 * What the guard reads off a request's headers: {@link headerBytes}, the Host header, and the
 * two a browser says a page's site in (shared/browser_guard.ts).
 */
export interface HeadFacts {
  bytes: number;
  host: string | null;
  origin: string | null;
  fetchSite: string | null;
}

/**
 * {@link headerBytes} and the headers the guard checks, in one pass. Deno.serve makes a request's
 * header list only when it is iterated (a lone `get` asks the server for that one header):
 * iterating once and taking them on the way costs one list instead of a list and calls.
 */
export function headFacts(headers: Headers): HeadFacts {
  const facts: HeadFacts = { bytes: 0, host: null, origin: null, fetchSite: null };
  // forEach, not for-of: the same pairs without an iterator and an array per header (5x cheaper).
  // Names come lowercased, repeats joined with ", ".
  headers.forEach((value, name) => {
    facts.bytes += name.length + value.length + 4;
    if (name === "host") facts.host = value;
    else if (name === "origin") facts.origin = value;
    else if (name === "sec-fetch-site") facts.fetchSite = value;
  });
  return facts;
}

/** Whether a Host header's value is a host[:port] that a URL can hold. */
export function isHost(host: string): boolean {
  return !NOT_A_HOST.test(host) && URL.canParse(`http://${host}/`);
}

/** A Host header: taken, not a host[:port] (400), or a name the host policy refuses (403). */
export type HostVerdict = "ok" | "malformed" | "refused";

/**
 * {@link isHost}, then `allowed` when given, remembering the last host that passed both
 * (clients send the same one each time: one compare per request).
 */
export function hostCheck(allowed?: HostAllowed): (host: string) => HostVerdict {
  let accepted: string | undefined;
  return (host) => {
    if (host === accepted) return "ok";
    if (!isHost(host)) return "malformed";
    if (allowed !== undefined && !allowed(host)) return "refused";
    accepted = host;
    return "ok";
  };
}

/**
 * Why a request is refused before routing, or undefined when it may go on; `browserChecks`:
 * writes from a page of another site too (shared/browser_guard.ts).
 */
export function refusal(
  req: Request,
  limits: RequestLimits,
  checkHost: (host: string) => HostVerdict = hostCheck(),
  browserChecks = false,
): RingkvError | undefined {
  const target = targetLength(req.url);
  if (target > limits.maxUrlBytes) {
    return new RingkvError(
      "uri_too_long",
      `Cannot serve the request: its URL is ${target} bytes, the limit is ${limits.maxUrlBytes}`,
    );
  }
  const facts = headFacts(req.headers);
  const { bytes, host } = facts;
  const verdict = host === null ? "ok" : checkHost(host);
  // Deno.serve builds the URL from Host: `Host: x/kv/b` would make `GET /kv/a` read "b/kv/a".
  // `x:99999999` or `[::1` pass that test, yet no URL has them: `new URL(req.url)` would throw.
  if (verdict === "malformed") {
    return new RingkvError(
      "bad_request",
      `Cannot serve the request: its Host header "${host!.slice(0, 100)}" is not a host[:port]`,
    );
  }
  if (verdict === "refused") return rebindingRefusal(host!);
  if (browserChecks) {
    const refused = crossSiteWrite(req.method, facts);
    if (refused !== undefined) return refused;
  }
  if (bytes > limits.maxHeaderBytes) {
    return new RingkvError(
      "headers_too_large",
      `Cannot serve the request: its headers are ${bytes} bytes, the limit is ${limits.maxHeaderBytes}`,
    );
  }
  return undefined;
}

/** A Host name the host policy does not take (DNS rebinding, shared/browser_guard.ts). */
function rebindingRefusal(host: string): RingkvError {
  const name = JSON.stringify(host.replace(/:\d+$/, "").slice(0, 100));
  return new RingkvError(
    "forbidden",
    `Cannot serve a request for host "${host.slice(0, 100)}": with no client token (or cluster ` +
      `secret) this server answers IP addresses, one-label names such as localhost and the ` +
      `names of its --allowed-hosts (against DNS rebinding; start it with --allowed-hosts ` +
      `${name} to take this one, docs/security.md)`,
  );
}

/**
 * A write (any method but GET and HEAD) a web page of another site made a browser send: its
 * `Origin` names another origin, or, without one (browsers of before 2020 on a form's POST),
 * `Sec-Fetch-Site` says anything but this origin or the user's own doing (`none`).
 */
function crossSiteWrite(method: string, facts: HeadFacts): RingkvError | undefined {
  if (method === "GET" || method === "HEAD") return undefined;
  const { origin, fetchSite, host } = facts;
  const otherSite = origin !== null
    ? crossSiteOrigin(origin, host)
    : fetchSite !== null && fetchSite !== "same-origin" && fetchSite !== "none";
  if (!otherSite) return undefined;
  return new RingkvError(
    "forbidden",
    `Cannot take a ${method} sent by a web page of another site (` +
      (origin === null
        ? "Sec-Fetch-Site " + JSON.stringify(fetchSite)
        : "Origin " + JSON.stringify(origin.slice(0, 100))) +
      `): ringkv takes writes from its own page and from clients that are not browsers ` +
      `(docs/security.md)`,
  );
}

/**
 * Wraps `handler` with the checks of {@link refusal} and the in-flight cap; `allowedHost`, when
 * given, also refuses (403) a `Host` it does not allow and a write from a page of another site
 * (shared/browser_guard.ts).
 */
export function guard<I>(
  handler: FetchHandler<I>,
  limits: RequestLimits,
  allowedHost?: HostAllowed,
): GuardedHandler<I> {
  let inFlight = 0;
  const checkHost = hostCheck(allowedHost);
  const settle = async (answer: Promise<Response>, req: Request): Promise<Response> => {
    try {
      return afterAnswer(await answer, req);
    } finally {
      inFlight--;
    }
  };
  const guarded = (req: Request, info: I): Response | Promise<Response> => {
    const refused = refusal(req, limits, checkHost, allowedHost !== undefined);
    if (refused !== undefined) return closing(errorResponse(refused), req);
    if (inFlight >= limits.maxInFlight) {
      const busy = new RingkvError(
        "unavailable",
        `Cannot serve the request: ${inFlight} requests are in flight, the limit is ${limits.maxInFlight}`,
      );
      return closing(errorResponse(busy, { "retry-after": String(RETRY_AFTER_SECONDS) }), req);
    }
    inFlight++;
    let answer: Response | Promise<Response>;
    try {
      answer = handler(req, info);
    } catch (err) {
      inFlight--;
      return Promise.reject(err); // as an async handler's throw always was
    }
    // An answer made in this turn goes back in this turn: no promise, no extra tick.
    if (answer instanceof Promise) return settle(answer, req);
    inFlight--;
    return afterAnswer(answer, req);
  };
  return Object.assign(guarded, { inFlight: () => inFlight });
}

/** The rest of a body that was refused or timed out is never read: do not wait for it. */
function afterAnswer(res: Response, req: Request): Response | Promise<Response> {
  return res.status === 408 || res.status === 413 ? closing(res, req) : res;
}

/**
 * A refused request's body is never read, so the connection cannot be reused. The body is
 * dropped too: left unread, Deno.serve adds a second `connection: close` of its own.
 */
async function closing(res: Response, req: Request): Promise<Response> {
  if (req.body !== null && !req.body.locked) {
    // A body that broke off (the client went away) is as dropped as a cancelled one.
    await req.body.cancel().catch(() => {});
  }
  try {
    res.headers.set("connection", "close");
    return res;
  } catch (err) {
    if (!(err instanceof TypeError)) throw err; // immutable headers (a fetched response)
    const copy = new Response(res.body, res);
    copy.headers.set("connection", "close");
    return copy;
  }
}
