/**
 * What `deno task kv` is built on: HTTP calls to a proxy with a timeout each, the exit
 * code of every answer ({@link EXIT}), and the rebalancing progress bar.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { exitCodeOf, progressLine } from "./kv_client.ts";
 * assert(exitCodeOf(404, "not_found") === 1 && exitCodeOf(404, "no_route") === 2);
 * assert(exitCodeOf(412) === 3 && exitCodeOf(503) === 4);
 * assert(progressLine({ phase: "copying", movedKeys: 5, totalKeys: 10 }, 10).includes("50%"));
 * assert(progressLine({ phase: "copying", movedKeys: 5, totalKeys: 10, movedCopies: 10 })
 *   .endsWith("5/~10 keys (10 copies read), copying"));
 * ```
 */
import { MAX_TTL_SECONDS } from "../shared/expiry.ts";
import { tlsHint, type TlsHints } from "../shared/tls_files.ts";

/** Exit codes scripts can rely on. */
export const EXIT = {
  ok: 0,
  notFound: 1,
  usage: 2,
  precondition: 3,
  unavailable: 4,
  auth: 5,
  refused: 6,
  /** Stopped with Ctrl-C (`kv watch`), as a shell counts SIGINT: 128 + 2. */
  interrupted: 130,
} as const;

/**
 * The exit code for an HTTP status and the answer's error code. Only a 404 `not_found` (the key,
 * or the node, is absent) exits 1: any other 404 (`no_route`, or a server in front without a
 * ringkv error body) means the `--url` is wrong, a usage error, so that `kv get k || echo absent`
 * never takes a wrong URL for an absent key.
 */
export function exitCodeOf(status: number, code?: string): number {
  if (status < 300) return EXIT.ok;
  if (status === 404) return code === "not_found" ? EXIT.notFound : EXIT.usage;
  if (status === 412 || status === 409) return EXIT.precondition;
  if (status === 401 || status === 403) return EXIT.auth;
  if (status >= 500) return EXIT.unavailable;
  return EXIT.refused;
}

/** A failure the CLI reports on stderr and exits with. */
export class CliError extends Error {
  /** Creates the error with its exit code. */
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = "CliError";
  }
}

/** Where and how to call the proxy. */
export interface KvTarget {
  url: string;
  adminToken?: string;
  clientToken?: string;
  timeoutMs: number;
}

/** Calls the proxy; network failures become {@link CliError} with code 4. */
export async function call(
  target: KvTarget,
  path: string,
  init: RequestInit & { admin?: boolean } = {},
): Promise<Response> {
  const headers = new Headers(init.headers);
  const token = init.admin ? target.adminToken : target.clientToken;
  if (token) headers.set("authorization", `Bearer ${token}`);
  try {
    return await fetch(target.url + path, {
      ...init,
      headers,
      signal: AbortSignal.timeout(target.timeoutMs),
    });
  } catch (err) {
    const why = err instanceof DOMException && err.name === "TimeoutError"
      ? `no answer within ${target.timeoutMs} ms`
      : [err, (err as Error).cause].filter((e) => e instanceof Error).map((e) => e.message)
        .join(": ");
    throw new CliError(
      EXIT.unavailable,
      `Cannot reach ${target.url}: ${why}${tlsHint(why, TLS_HINTS)}`,
    );
  }
}

/** What a kv user does about a TLS mistake of a call to the proxy. */
const TLS_HINTS: TlsHints = {
  "untrusted": "a proxy whose certificate is self-signed or from a private CA is trusted " +
    "with DENO_CERT=<CA file> deno task kv ..., docs/security.md",
  "plain-http": "a proxy that serves https, started with --cert? give --url https://...",
};

/** Throws the {@link CliError} of a failed answer (its error message, its exit code). */
export async function failed(res: Response, what: string): Promise<never> {
  const { code, message } = await errorOf(res);
  const exit = exitCodeOf(res.status, code);
  throw new CliError(exit, `${what}: ${res.status} ${message}${hintOf(res.status, exit)}`);
}

/** What the user can do about a failed answer, if this CLI knows better than the server. */
function hintOf(status: number, exit: number): string {
  // Where this CLI takes each token from (the server's message says where it is kept).
  if (status === 401) {
    return " (kv sends --token, RINGKV_ADMIN_TOKEN or ./data/admin-token to the admin routes, " +
      "--client-token or RINGKV_CLIENT_TOKEN to /kv)";
  }
  if (status === 404 && exit === EXIT.usage) {
    return " (no such route: the path of --url (or RINGKV_URL) looks wrong; give the proxy's " +
      "URL, kv adds /kv/KEY, /watch and /cluster to it)";
  }
  return "";
}

/** The error message of an answer (its JSON error body), else its text as it came. */
export async function errorText(res: Response): Promise<string> {
  return (await errorOf(res)).message;
}

/** The error code and message of an answer's JSON error body; else no code, its text as it came. */
export async function errorOf(res: Response): Promise<{ code?: string; message: string }> {
  const text = await res.text();
  try {
    const body = JSON.parse(text) as { error?: { code?: unknown; message?: string } } | null;
    const code = typeof body?.error?.code === "string" ? body.error.code : undefined;
    return { code, message: body?.error?.message ?? text.slice(0, 500) };
  } catch (err) {
    // Not JSON (a proxy in front, say): the text as it came.
    if (!(err instanceof SyntaxError)) throw err;
    return { message: text.slice(0, 500) };
  }
}

/** JSON of a successful answer, else the failure. */
export async function okJson<T>(res: Response, what: string): Promise<T> {
  if (!res.ok) return await failed(res, what);
  return await res.json() as T;
}

/** The rebalancing part of `GET /cluster`. */
export interface Progress {
  phase: string;
  /** Keys copied to their new owners. */
  movedKeys: number;
  /** Keys the rebalancing moves (estimated from the hash space that changes owner). */
  totalKeys: number | null;
  /** Copies read from the old replicas (a majority of them per key), when known. */
  movedCopies?: number;
}

/** One progress line: a bar, percent, keys moved of those to move, copies read, the phase. */
export function progressLine(p: Progress, width = 30): string {
  const estimate = p.totalKeys ?? 0;
  const fraction = p.phase === "cleanup" || p.phase === "done"
    ? 1
    : estimate > 0
    ? Math.min(0.99, p.movedKeys / estimate) // copying: not done, whatever the estimate said
    : 0;
  const done = Math.floor(fraction * width);
  const bar = "#".repeat(done) + "-".repeat(width - done);
  const copies = p.movedCopies !== undefined && p.movedCopies !== p.movedKeys
    ? ` (${p.movedCopies} copies read)`
    : "";
  // The total is an estimate (the share of the hash space that moves): "~", as more may move.
  const keys = p.totalKeys === null
    ? `${p.movedKeys}/? keys`
    : p.movedKeys > p.totalKeys
    ? `${p.movedKeys} keys (~${p.totalKeys} estimated)`
    : `${p.movedKeys}/~${p.totalKeys} keys`;
  return `[${bar}] ${Math.floor(fraction * 100)}% ${keys}${copies}, ${p.phase}`;
}

/** Writes progress: redrawn in place on a terminal, one line per change otherwise. */
export function progressWriter(
  out: { writeSync(b: Uint8Array): number; isTerminal(): boolean },
): { update(p: Progress): void; done(): void; end(): void } {
  const enc = new TextEncoder();
  const tty = out.isTerminal();
  let last = "";
  let shown: Progress | null = null;
  return {
    update(p) {
      const line = progressLine(p);
      shown = p;
      if (line === last) return;
      last = line;
      out.writeSync(enc.encode(tty ? `\r\x1b[2K${line}` : `${line}\n`));
    },
    // The rebalancing ended: the bar is drawn full, then its line is closed.
    done() {
      if (shown !== null) this.update({ ...shown, phase: "done" });
      this.end();
    },
    end() {
      if (tty && last !== "") out.writeSync(enc.encode("\n"));
      last = "";
      shown = null;
    },
  };
}

const UNIT_SECONDS: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86_400 };

/** Seconds of a `--ttl` such as `30`, `30s`, `5m`, `2h`, `1d`, up to a year; else a usage error. */
export function ttlSeconds(text: string): number {
  const m = /^(\d{1,12})([smhd]?)$/.exec(text.trim());
  if (m === null || Number(m[1]) === 0) {
    throw new CliError(
      EXIT.usage,
      `Cannot use --ttl ${text}: give a positive whole number with an optional unit s, m, h or d (30s, 5m)`,
    );
  }
  const seconds = Number(m[1]) * UNIT_SECONDS[m[2]!]!;
  if (seconds > MAX_TTL_SECONDS) {
    throw new CliError(
      EXIT.usage,
      `Cannot use --ttl ${text}: it is ${seconds} s, the longest TTL is ${MAX_TTL_SECONDS} s (365d)`,
    );
  }
  return seconds;
}
