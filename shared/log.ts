/**
 * Structured logs: one JSON object per line (`time`, `level`, `msg`, then the event's
 * fields), filtered by level (quiet by default: errors and warnings). An event without a
 * `level` is "warn" when it carries an `error` or `failed` field, else "info". Secrets given to
 * {@link createLogger} are replaced by `[redacted]` wherever they appear, and fields
 * named like credentials are never written. Request ids: {@link requestIdOf}.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { createLogger } from "./log.ts";
 * const lines: string[] = [];
 * const log = createLogger({ level: "warn", secrets: ["s3cret"], write: (l) => lines.push(l) });
 * log({ level: "info", msg: "hidden at warn" });
 * log({ level: "error", msg: "node refused Bearer s3cret" });
 * assert(lines.length === 1 && !lines[0]!.includes("s3cret"));
 * ```
 */
import { ConfigError } from "./config.ts";

/** Log levels, most severe first. */
export const LOG_LEVELS = ["error", "warn", "info", "debug"] as const;

/** One of {@link LOG_LEVELS}. */
export type LogLevel = typeof LOG_LEVELS[number];

/** The sink every module takes: one event object (`level` optional, see the module doc). */
export type LogFn = (obj: Record<string, unknown>) => void;

/** What {@link createLogger} needs. */
export interface LoggerOptions {
  /** Events at this level and more severe are written (default "warn"). */
  level?: LogLevel;
  /** Values never written (tokens, secrets): replaced by `[redacted]`. */
  secrets?: readonly (string | undefined)[];
  /** Where lines go (main.ts passes stderr). */
  write: (line: string) => void;
  /** Clock for `time` (tests pass a fixed one). */
  now?: () => Date;
}

/** Whether `text` names a log level. */
export function isLogLevel(text: string): text is LogLevel {
  return (LOG_LEVELS as readonly string[]).includes(text);
}

/** `--log-level`'s value, checked; throws {@link ConfigError} for anything else. */
export function checkLogLevel(text: string): LogLevel {
  if (isLogLevel(text)) return text;
  throw new ConfigError(`Cannot use --log-level "${text}": it must be ${LOG_LEVELS.join(", ")}`);
}

const CREDENTIAL_FIELD = /^(authorization|token|secret|password|.*[_-]?(token|secret))$/i;

/** Where a logger made by {@link createLogger} keeps the index of its least severe level. */
const MAX_LEVEL: unique symbol = Symbol("maxLevel");

/** Builds a {@link LogFn} writing JSON lines at `level` and above. */
export function createLogger(options: LoggerOptions): LogFn {
  const max = LOG_LEVELS.indexOf(options.level ?? "warn");
  const secrets = (options.secrets ?? []).filter((s): s is string => !!s && s.length >= 4);
  const now = options.now ?? (() => new Date());
  const redact = (text: string) =>
    secrets.reduce((t, s) => (t.includes(s) ? t.replaceAll(s, "[redacted]") : t), text);
  const log: LogFn = (obj) => {
    const level = typeof obj.level === "string" && isLogLevel(obj.level)
      ? obj.level
      : "error" in obj || "failed" in obj
      ? "warn"
      : "info";
    if (LOG_LEVELS.indexOf(level) > max) return;
    const event: Record<string, unknown> = { time: now().toISOString(), level };
    for (const [k, v] of Object.entries(obj)) {
      if (k !== "level") event[k] = CREDENTIAL_FIELD.test(k) ? "[redacted]" : v;
    }
    options.write(redact(JSON.stringify(event)));
  };
  return Object.assign(log, { [MAX_LEVEL]: max });
}

/**
 * Whether `log` writes events at `level`, so a hot path builds an event only when it is
 * written; true for any sink not made by {@link createLogger} (tests collect every event).
 */
export function logsAt(log: LogFn, level: LogLevel): boolean {
  const max = (log as { [MAX_LEVEL]?: number })[MAX_LEVEL];
  return max === undefined || LOG_LEVELS.indexOf(level) <= max;
}

/** Header carrying the request id (client -> proxy -> node, and back). */
export const REQUEST_ID_HEADER = "x-request-id";

const SANE_ID = /^[A-Za-z0-9._:@+=\/-]{1,128}$/;

/** The client's request id when it is sane (1-128 safe characters), else a new one. */
export function requestIdOf(given: string | null | undefined): string {
  if (given && SANE_ID.test(given)) return given;
  return crypto.randomUUID();
}

/**
 * The `x-request-id` of an internal call made for several client requests (a batch):
 * the ids joined by ",", at most `max` of them, then `+N` for the rest.
 */
export function joinRequestIds(ids: readonly string[], max = 16): string {
  // One pass over a Set, no arrays: every batch call of the proxy joins its requests' ids.
  const unique = new Set(ids);
  let shown = "";
  let n = 0;
  for (const id of unique) {
    if (n === max) break;
    shown = n++ === 0 ? id : shown + "," + id;
  }
  return unique.size > max ? `${shown},+${unique.size - max}` : shown;
}
