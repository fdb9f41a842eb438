/**
 * Safe defaults for what a process exposes: a server that listens beyond the loopback
 * interface must have its token set (like Redis's protected mode), and TLS needs both a
 * certificate and a key. Pure checks, called by the config parsers.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { isLoopback } from "./exposure.ts";
 * assert(isLoopback("127.0.0.1") && !isLoopback("0.0.0.0"));
 * ```
 */
import { ConfigError } from "./config.ts";

/** Whether `host` only accepts connections from this machine. */
export function isLoopback(host: string): boolean {
  const h = host.trim().toLowerCase().replace(/^\[(.*)\]$/, "$1");
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}

/**
 * `--host` as `Deno.serve` takes it: `[::1]` (the URL form) is `::1`; an empty host or one
 * with a character no host name or address has is a usage error, not a stack trace from
 * `Deno.serve`.
 */
export function listenHost(host: string): string {
  const h = host.replace(/^\[(.*)\]$/, "$1");
  if (!/^[A-Za-z0-9._:%-]+$/.test(h)) {
    throw new ConfigError(
      `Cannot listen on --host ${JSON.stringify(host)}: give an address such as 127.0.0.1, ` +
        "0.0.0.0 (every interface) or ::",
    );
  }
  return h;
}

/** A token a process needs before it may listen beyond loopback. */
export interface RequiredToken {
  /** Its flag, e.g. `--admin-token`. */
  flag: string;
  /** Its environment variable, e.g. `RINGKV_ADMIN_TOKEN`. */
  env: string;
  /** Whether it is set. */
  set: boolean;
}

/** Throws when `host` is not loopback and a required token is missing; says what to set. */
export function checkExposure(what: string, host: string, tokens: readonly RequiredToken[]): void {
  if (isLoopback(host)) return;
  const missing = tokens.filter((t) => !t.set);
  if (missing.length === 0) return;
  const names = missing.map((t) => `${t.flag} (or ${t.env})`).join(" and ");
  throw new ConfigError(
    `Cannot start the ${what} on ${host}: it would be reachable from other machines without a ` +
      `token. Set ${names}, or listen on 127.0.0.1 (--host 127.0.0.1)`,
  );
}

/** Certificate and key files for TLS. */
export interface TlsFiles {
  cert: string;
  key: string;
}

/** `{cert, key}` when both are given, undefined when neither; one alone is an error. */
export function tlsFiles(cert: string | undefined, key: string | undefined): TlsFiles | undefined {
  const c = cert === "" ? undefined : cert;
  const k = key === "" ? undefined : key;
  if (c === undefined && k === undefined) return undefined;
  if (c === undefined || k === undefined) {
    throw new ConfigError(
      `Cannot serve TLS: give both --cert and --key (only --${
        c === undefined ? "key" : "cert"
      } is set)`,
    );
  }
  return { cert: c, key: k };
}
