/**
 * Command-line and environment configuration, parsed purely: `main.ts` files pass
 * `Deno.args` and the `RINGKV_*` variables of their flags in. Every flag `--some-flag` can
 * also be set as `RINGKV_SOME_FLAG`; a flag on the command line wins over the environment.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { parseFlags } from "./config.ts";
 * const spec = { port: { type: "int", default: 7001, help: "port to listen on" } } as const;
 * const parsed = parseFlags(spec, ["--port", "7002"], {});
 * assert(!("help" in parsed) && parsed.values.port === 7002);
 * ```
 */

import { DEFAULT_LIMITS, DEFAULT_REQUEST_LIMITS } from "./limits.ts";

/** How one flag is read. */
export interface FlagSpec {
  type: "string" | "int" | "bool" | "list";
  default?: string | number | boolean | string[];
  help: string;
  /** Environment variable; defaults to RINGKV_ plus the flag name in upper snake case. */
  env?: string;
  /** Never print the value (tokens, secrets). */
  secret?: boolean;
}

/** A set of flags by name (camelCase names become `--kebab-case`). */
export type FlagsSpec = Record<string, FlagSpec>;

type ValueOf<F extends FlagSpec> = F["type"] extends "int" ? number
  : F["type"] extends "bool" ? boolean
  : F["type"] extends "list" ? string[]
  : string;

/** Parsed values; flags without a default may be undefined. */
export type FlagValues<S extends FlagsSpec> = {
  [K in keyof S]: S[K]["default"] extends undefined ? ValueOf<S[K]> | undefined : ValueOf<S[K]>;
};

/** Flags both servers take, with the same meaning: limits, TLS files, log level. */
export const SERVER_FLAGS = {
  maxValueBytes: { type: "int", default: DEFAULT_LIMITS.maxValueBytes, help: "largest value" },
  maxKeyBytes: { type: "int", default: DEFAULT_LIMITS.maxKeyBytes, help: "longest key, bytes" },
  maxInFlight: {
    type: "int",
    default: DEFAULT_REQUEST_LIMITS.maxInFlight,
    help: "requests answered at once (then 503)",
  },
  bodyTimeoutMs: {
    type: "int",
    default: DEFAULT_LIMITS.bodyTimeoutMs,
    help: "time to receive a request body, in ms (then 408)",
  },
  cert: { type: "string", help: "TLS certificate file (PEM); with --key, serve https" },
  key: { type: "string", help: "TLS private key file (PEM)" },
  logLevel: { type: "string", help: "log level: error, warn (default), info or debug" },
} as const;

/** Thrown for a flag the user got wrong; the message says which and why. */
export class ConfigError extends Error {
  override name = "ConfigError";
}

/** `someFlag` -> `some-flag`. */
export function kebab(name: string): string {
  return name.replace(/[A-Z]/g, (c) => "-" + c.toLowerCase());
}

function envName(name: string, spec: FlagSpec): string {
  return spec.env ?? "RINGKV_" + kebab(name).replaceAll("-", "_").toUpperCase();
}

/**
 * `raw` as the flag's type. `source` names where it came from in an error: the flag, or the
 * variable that was read for it (a user who never typed `--port` must be told `RINGKV_PORT`).
 */
function convert(
  name: string,
  spec: FlagSpec,
  raw: string,
  source = `--${kebab(name)}`,
): string | number | boolean | string[] {
  switch (spec.type) {
    case "int": {
      if (!/^-?\d+$/.test(raw.trim())) {
        throw new ConfigError(`Cannot read ${source}: "${raw}" is not a whole number`);
      }
      return Number(raw);
    }
    case "bool":
      if (["1", "true", "yes", "on", ""].includes(raw.toLowerCase())) return true;
      if (["0", "false", "no", "off"].includes(raw.toLowerCase())) return false;
      throw new ConfigError(`Cannot read ${source}: "${raw}" is not true or false`);
    case "list":
      return raw.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
    default:
      if (spec.secret) checkSecret(name, spec, raw);
      return raw;
  }
}

function checkSecret(name: string, spec: FlagSpec, raw: string): void {
  checkToken(`--${kebab(name)} (or ${envName(name, spec)})`, raw);
}

/**
 * Refuses a token outside RFC 6750's b64token set (letters, digits, -._~+/, then = only at
 * the end), naming `label` (a flag, variable or file) and never the value. A Bearer header
 * cannot carry other characters exactly: its ends are trimmed, it has no spaces, and
 * non-ASCII bytes reach the server differently from how the token was read at start.
 */
export function checkToken(label: string, raw: string): void {
  if (raw === "" || /^[A-Za-z0-9\-._~+/]+=*$/.test(raw)) return;
  throw new ConfigError(
    `Cannot use ${label}: it contains whitespace, a control or non-ASCII character or ` +
      "another one an Authorization: Bearer header cannot carry; choose one of letters, " +
      "digits and -._~+/ with = only at the end (e.g. openssl rand -hex 24)",
  );
}

/**
 * Refuses one value for two kinds of token (given by label), never showing it: each opens
 * only its own routes, and a shared one would let a client token open the admin API or call
 * the nodes past the proxy.
 */
export function checkDistinctTokens(tokens: Record<string, string | undefined>): void {
  const given = Object.entries(tokens).filter(([, value]) => value !== undefined);
  for (const [i, [a, value]] of given.entries()) {
    const twin = given.slice(i + 1).find(([, other]) => other === value);
    if (twin === undefined) continue;
    throw new ConfigError(
      `Cannot use the same value for ${a} and ${twin[0]}: each token opens only its own ` +
        "routes; give each its own (e.g. openssl rand -hex 24)",
    );
  }
}

/** The environment variables a spec reads (so a process can be given only those). */
export function envNames(spec: FlagsSpec): string[] {
  return Object.entries(spec).map(([name, flag]) => envName(name, flag));
}

/** The `--help` text for a spec. */
export function helpText<S extends FlagsSpec>(usage: string, spec: S): string {
  const lines = [usage, "", "Options (each also readable from the environment variable shown):"];
  for (const [name, flag] of Object.entries(spec)) {
    const def = flag.default === undefined || flag.secret ? "" : ` (default: ${flag.default})`;
    const arg = flag.type === "bool" ? "" : " <value>";
    lines.push(
      `  --${kebab(name)}${arg} `.padEnd(30) + `${flag.help}${def} [${envName(name, flag)}]`,
    );
  }
  lines.push(`  --help`.padEnd(30) + "print this help");
  return lines.join("\n");
}

/** Edit distance (insert, delete, replace, swap two neighbours) between two short strings. */
export function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
        best = Math.min(best, d[i - 2]![j - 2]! + 1);
      }
      d[i]![j] = best;
    }
  }
  return d[a.length]![b.length]!;
}

/** The known flag a mistyped one most likely meant: a prefix of it, or a few edits away. */
export function closest(typed: string, known: readonly string[]): string | undefined {
  const prefixed = known.filter((k) => typed.length >= 2 && k.startsWith(typed));
  if (prefixed.length === 1) return prefixed[0];
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(typed, name);
    if (distance <= Math.max(1, Math.min(3, Math.floor(name.length / 3)))) {
      if (best === undefined || distance < best.distance) best = { name, distance };
    }
  }
  return best?.name;
}

/** Parses `args` and `env` against `spec`; `{help: true}` when `--help` was asked for. */
export function parseFlags<S extends FlagsSpec>(
  spec: S,
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>>,
): { help: true } | { values: FlagValues<S>; rest: string[]; fromEnv: Map<string, string> } {
  const byFlag = new Map(Object.keys(spec).map((name) => [kebab(name), name]));
  const values: Record<string, unknown> = {};
  const rest: string[] = [];
  const fromEnv = new Map<string, string>();
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    // After `--` every word is an argument: a value or key may start with `--`.
    if (arg === "--") {
      rest.push(...args.slice(i + 1));
      break;
    }
    if (arg === "--help" || arg === "-h") return { help: true };
    if (!arg.startsWith("--")) {
      rest.push(arg);
      continue;
    }
    const eq = arg.indexOf("=");
    const flagName = eq === -1 ? arg.slice(2) : arg.slice(2, eq);
    const negated = !byFlag.has(flagName) && flagName.startsWith("no-");
    const name = byFlag.get(negated ? flagName.slice(3) : flagName);
    if (name === undefined) {
      const near = closest(flagName, [...byFlag.keys()]);
      const hint = near === undefined ? "" : `; did you mean --${near}?`;
      throw new ConfigError(`Unknown option --${flagName}${hint} (see --help)`);
    }
    const flag = spec[name]!;
    // `--no-port 5` must not set --port: only an on/off option has a --no- form, and no value.
    if (negated && (flag.type !== "bool" || eq !== -1)) {
      throw new ConfigError(
        `Cannot read ${arg}: only on/off options take --no- and then no value (see --help)`,
      );
    }
    let raw: string;
    if (flag.type === "bool") {
      raw = negated ? "false" : eq !== -1 ? arg.slice(eq + 1) : "true";
    } else if (eq !== -1) {
      raw = arg.slice(eq + 1);
    } else {
      const next = args[i + 1];
      if (next === undefined) throw new ConfigError(`Option --${flagName} needs a value`);
      // `--ttl --url http://…`: the next option is not this one's value (review).
      const nextFlag = next.startsWith("--") ? next.slice(2).split("=")[0]! : undefined;
      if (nextFlag !== undefined && (byFlag.has(nextFlag) || ["", "help"].includes(nextFlag))) {
        throw new ConfigError(
          `Option --${flagName} needs a value, not the option ${next} (give one that starts ` +
            `with -- as --${flagName}=VALUE)`,
        );
      }
      raw = next;
      i++;
    }
    values[name] = convert(name, flag, raw);
  }
  // The environment only for flags not on the command line, which wins even over a variable
  // that could not be read (RINGKV_NODES set for a proxy, `deno task cluster --nodes 3`).
  for (const [name, flag] of Object.entries(spec)) {
    if (name in values) continue;
    const variable = envName(name, flag);
    const raw = env[variable];
    if (raw !== undefined) fromEnv.set(kebab(name), variable);
    values[name] = raw !== undefined
      ? convert(name, flag, raw, `${variable} (--${kebab(name)})`)
      : flag.default;
  }
  return { values: values as FlagValues<S>, rest, fromEnv };
}

/**
 * `err`, or when it is a usage error about flags whose values came from variables (`fromEnv`:
 * flag to variable, from {@link parseFlags}), the same error naming them: a user who never
 * typed `--port` must be told `RINGKV_PORT` (QA: "Cannot use --port 99999" for RINGKV_PORT).
 */
export function namingVariables(err: unknown, fromEnv: ReadonlyMap<string, string>): unknown {
  if (!(err instanceof ConfigError)) return err;
  const read = [...new Set(err.message.match(/--[a-z][a-z0-9-]*/g) ?? [])]
    .filter((flag) => fromEnv.has(flag.slice(2)))
    .map((flag) => `${flag} was read from ${fromEnv.get(flag.slice(2))}`);
  return read.length === 0 ? err : new ConfigError(`${err.message} (${read.join(", ")})`);
}

/** `value` when it lies in `[min, max]`, else a usage error naming `--flag`. */
export function checkRange(
  flag: string,
  value: number,
  min: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value < min || value > max) {
    throw new ConfigError(`Cannot use --${flag} ${value}: it must be ${min} to ${max}`);
  }
  return value;
}
