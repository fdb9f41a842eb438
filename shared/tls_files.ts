/**
 * Reading the TLS files of `--cert`, `--key` and the proxy's `--ca`, with one-line errors
 * that name the flag and the file: Deno's own (`No certificates found in certificate data`,
 * `keys may not be consistent: KeyMismatch`) name neither and came out as stack traces. The
 * reads are injected, so this module does no I/O of its own.
 *
 * @module
 * @example
 * ```ts
 * import { assertRejects } from "@std/assert";
 * import { ConfigError } from "./config.ts";
 * import { readPem } from "./tls_files.ts";
 * const read = () => Promise.resolve("not a PEM file");
 * await assertRejects(() => readPem("cert", "/etc/c.pem", read), ConfigError, "--cert");
 * ```
 */
import { ConfigError } from "./config.ts";
import type { TlsFiles } from "./exposure.ts";

/** Reads a text file (`Deno.readTextFile` in production). */
export type ReadText = (path: string) => Promise<string>;

/** Which PEM file a flag names. */
export type PemFlag = "cert" | "key" | "ca";

const CERT = { label: /-----BEGIN CERTIFICATE-----/, line: "-----BEGIN CERTIFICATE-----" };
const HOLDS: Record<PemFlag, { label: RegExp; line: string; what: string }> = {
  cert: { ...CERT, what: "PEM certificate" },
  ca: { ...CERT, what: "PEM certificate" },
  key: {
    label: /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
    line: "-----BEGIN ... PRIVATE KEY-----",
    what: "PEM private key",
  },
};

/**
 * The text of the file `--flag path`; a missing file, a directory, one this user may not
 * read, or one without a PEM block of its kind is a {@link ConfigError}. Deno's NotCapable
 * (a path outside the task's `--allow-read`) passes through for the task's own hint.
 */
export async function readPem(flag: PemFlag, path: string, read: ReadText): Promise<string> {
  let text: string;
  try {
    text = await read(path);
  } catch (err) {
    const state = err instanceof Deno.errors.NotFound
      ? "it does not exist"
      : err instanceof Deno.errors.IsADirectory
      ? "it is a directory"
      : err instanceof Deno.errors.PermissionDenied
      ? "permission denied (see its owner and mode)"
      : undefined;
    if (state === undefined) throw err;
    throw new ConfigError(`Cannot read --${flag} ${path}: ${state}`);
  }
  const holds = HOLDS[flag];
  if (!holds.label.test(text)) {
    throw new ConfigError(
      `Cannot use --${flag} ${path}: it holds no ${holds.what} (no "${holds.line}" line)`,
    );
  }
  return text;
}

/** The `cert` and `key` options of `Deno.serve`, read from `--cert` and `--key`. */
export async function readTlsFiles(
  files: TlsFiles,
  read: ReadText,
): Promise<{ cert: string; key: string }> {
  const cert = await readPem("cert", files.cert, read);
  const key = await readPem("key", files.key, read);
  return { cert, key };
}

/**
 * The ConfigError for `Deno.serve`'s refusal of the TLS files, or undefined when `err` is
 * not one: a key that does not match the certificate, or a PEM block rustls cannot parse.
 */
export function tlsServeError(err: unknown, files: TlsFiles | undefined): ConfigError | undefined {
  if (files === undefined || !(err instanceof Error)) return undefined;
  // Deno 2.9 throws a plain Error for a mismatched pair; its message is all that tells it.
  if (err.message.includes("KeyMismatch")) {
    return new ConfigError(
      `Cannot serve https: the --key ${files.key} does not match the --cert ${files.cert}`,
    );
  }
  // A PEM block whose body rustls cannot parse (Deno 2.9: plain Errors, told by their words).
  const unreadable = /BadEncoding|failed to parse private key|No keys found/.test(err.message);
  if (err instanceof Deno.errors.InvalidData || unreadable) {
    return new ConfigError(
      `Cannot serve https with --cert ${files.cert} and --key ${files.key}: ${err.message}`,
    );
  }
  return undefined;
}

/**
 * The TLS mistake a failed fetch's text shows, in rustls's or hyper's words: a certificate the
 * client does not trust (self-signed, a private CA), or `http://` to a server that speaks https.
 */
export function tlsMistake(why: string): "untrusted" | "plain-http" | undefined {
  if (why.includes("invalid peer certificate")) return "untrusted";
  if (why.includes("invalid HTTP version parsed")) return "plain-http";
  return undefined;
}

/** What each caller tells its user to do about a {@link tlsMistake}. */
export type TlsHints = Record<"untrusted" | "plain-http", string>;

/** ` (what to do)` for the TLS mistake `why` shows, from `hints`; "" when it shows none. */
export function tlsHint(why: string, hints: TlsHints): string {
  const mistake = tlsMistake(why);
  return mistake === undefined ? "" : ` (${hints[mistake]})`;
}
