/**
 * ringkv's HTTP/1.1 server, in place of `Deno.serve`, for what `Deno.serve` cannot do
 * (denoland/deno#3515): a deadline on request heads, so a client trickling its headers is
 * cut off (408) instead of holding its connection for ever; a cap on open connections;
 * closing a connection whose body was refused; and every malformed request answered with
 * ringkv's JSON error body. One sweeper timer enforces every connection's deadline, so
 * requests pay no timer of their own. TLS through `Deno.listenTls`; HTTP/1.1 only.
 *
 * @module
 */
import { errorResponse, RingkvError } from "../errors.ts";
import type { ConnectionConfig } from "../config.ts";
import { DEFAULT_LIMITS, type Limits, type RequestLimits } from "../limits.ts";
import {
  type ConnContext,
  type ConnWatch,
  type Http1Handler,
  type Http1Timeouts,
  openConnection,
} from "./connection.ts";
import type { FastHandler } from "./fast.ts";
import { writeResponse } from "./response.ts";

export type { ConnInfo, Http1Handler, Http1Timeouts } from "./connection.ts";

/** Defaults of the timeouts (docs/security.md). */
export const DEFAULT_TIMEOUTS: Readonly<Http1Timeouts> = Object.freeze({
  headerMs: 10_000,
  // Longer than HTTP clients keep idle pooled connections (Deno's fetch: 90 s), so a
  // client never sends on a connection the server is closing.
  idleMs: 120_000,
  sendMs: 30_000,
  bodyMs: 10_000,
});

/** Default cap on open connections per process. */
export const DEFAULT_MAX_CONNECTIONS = 4096;

/** Pause after a failed accept (e.g. out of file descriptors) before trying again. */
const ACCEPT_RETRY_MS = 100;

/** How often the sweeper looks at deadlines: timeouts fire up to this much late. */
const SWEEP_MS = 200;

/** Where and how to serve. */
export interface Http1Options {
  hostname: string;
  port: number;
  /** PEM certificate chain and key: serve HTTPS. */
  cert?: string;
  key?: string;
  /** SO_REUSEPORT, so several processes share the port (needs --unstable-net). */
  reusePort?: boolean;
  /** Aborting it shuts the server down like {@link Http1Server.shutdown}. */
  signal?: AbortSignal;
  onListen?: (addr: Deno.NetAddr) => void;
  limits: Pick<RequestLimits, "maxUrlBytes" | "maxHeaderBytes">;
  timeouts?: Partial<Http1Timeouts>;
  maxConnections?: number;
  /**
   * The refusal of a path with a `.` or `..` segment, which the server never resolves (the
   * apps give keys their own error); undefined, or no function: a plain 400 `bad_request`.
   */
  dotSegment?: (path: string) => RingkvError | undefined;
}

/** The options of {@link Http1Options} that a server's flags set (shared/config.ts). */
export function connectionOptions(
  connections: ConnectionConfig,
  limits: Limits,
  requestLimits: RequestLimits,
): Pick<Http1Options, "limits" | "timeouts" | "maxConnections"> {
  return {
    limits: requestLimits,
    timeouts: {
      headerMs: connections.headerTimeoutMs,
      bodyMs: limits.bodyTimeoutMs ?? DEFAULT_LIMITS.bodyTimeoutMs!,
    },
    maxConnections: connections.maxConnections,
  };
}

/** A running server. */
export interface Http1Server {
  readonly addr: Deno.NetAddr;
  /** Settles once the server stopped and every connection is closed. */
  readonly finished: Promise<void>;
  /** Stops accepting, closes idle connections, lets answers in progress finish. */
  shutdown(): Promise<void>;
  /** Connections open now. */
  connections(): number;
}

/** Starts serving `handler` (with `fast` ahead of it) on `options.hostname:options.port`. */
export function serveHttp1(
  options: Http1Options,
  handler: Http1Handler,
  fast?: FastHandler,
): Http1Server {
  const tls = options.cert !== undefined && options.key !== undefined;
  const listener: Deno.Listener = tls
    ? Deno.listenTls({
      hostname: options.hostname,
      port: options.port,
      cert: options.cert!,
      key: options.key!,
      alpnProtocols: ["http/1.1"],
    })
    : Deno.listen({
      hostname: options.hostname,
      port: options.port,
      ...(options.reusePort ? { reusePort: true } : {}),
    });
  const timeouts = { ...DEFAULT_TIMEOUTS, ...options.timeouts };
  const maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
  const open = new Map<Deno.Conn, ConnWatch & { done: Promise<void> }>();
  let stopping = false;
  let dateSecond = -1;
  let dateText = "";
  const ctx: ConnContext = {
    handler,
    ...(fast === undefined ? {} : { fast }),
    limits: options.limits,
    timeouts,
    scheme: tls ? "https" : "http",
    ...(options.dotSegment === undefined ? {} : { dotSegment: options.dotSegment }),
    date() {
      const second = Math.floor(Date.now() / 1000);
      if (second !== dateSecond) (dateSecond = second, dateText = new Date().toUTCString());
      return dateText;
    },
    stopping: () => stopping,
  };
  const sweeper = setInterval(() => {
    const now = Date.now();
    for (const watch of open.values()) if (now > watch.deadline) watch.expire();
  }, SWEEP_MS);

  const accepting = (async () => {
    for (;;) {
      let conn: Deno.Conn;
      try {
        conn = await listener.accept();
      } catch (err) {
        if (stopping || err instanceof Deno.errors.BadResource) return; // the listener closed
        // Out of file descriptors (EMFILE) or a connection reset before its accept: the
        // server must go on accepting once the condition passes, not stop for good.
        console.error(`ringkv: cannot accept a connection: ${err}; retrying`);
        await new Promise((r) => setTimeout(r, ACCEPT_RETRY_MS));
        continue;
      }
      if (open.size >= maxConnections) {
        void refuse(conn, open.size, maxConnections, ctx);
        continue;
      }
      if (!tls) (conn as Deno.TcpConn).setNoDelay(true);
      const watch = openConnection(conn, ctx);
      open.set(conn, watch);
      void watch.done.then(() => open.delete(conn));
    }
  })();

  const finished = (async () => {
    await accepting;
    // Bounded: every connection ends by its client, its deadline, or its last answer.
    while (open.size > 0) await Promise.all([...open.values()].map((w) => w.done));
    clearInterval(sweeper);
  })();
  const shutdown = async () => {
    if (!stopping) {
      stopping = true;
      try {
        listener.close();
      } catch { /* closed already */ }
      for (const watch of open.values()) if (watch.idle) watch.expire();
    }
    await finished;
  };
  options.signal?.addEventListener("abort", () => void shutdown(), { once: true });
  const addr = listener.addr as Deno.NetAddr;
  options.onListen?.(addr);
  return { addr, finished, shutdown, connections: () => open.size };
}

/** Answers 503 on a connection over the cap, without reading its request, and closes it. */
async function refuse(conn: Deno.Conn, count: number, max: number, ctx: ConnContext) {
  const busy = new RingkvError(
    "unavailable",
    `Cannot serve the request: ${count} connections are open, the limit is ${max} (--max-connections)`,
  );
  const timer = setTimeout(() => closeQuietly(conn), ctx.timeouts.sendMs);
  try {
    await writeResponse(conn, errorResponse(busy, { "retry-after": "1" }), {
      head: false,
      keepAlive: false,
      minor: 1,
      date: ctx.date(),
    });
  } catch { /* the client is gone */ }
  clearTimeout(timer);
  closeQuietly(conn);
}

/** Closes `conn`, which may be closed already. */
export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* closed already */ }
}
