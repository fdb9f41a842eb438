/**
 * What a server prints when it cannot start for a reason the operator can fix: the port
 * is taken, or `deno task node`/`proxy` (which may touch only `./data`) was given a path
 * elsewhere. Each message names the state and the one thing to do; for paths, the exact
 * `deno run` command with the same flags as the task and just those paths added.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { byHandCommand } from "./startup_hint.ts";
 * assertEquals(
 *   byHandCommand("proxy", { read: ["/srv/p"], write: ["/srv/p"] }, ["--data", "/srv/p"]),
 *   "deno run --allow-net --allow-read=./data,/srv/p --allow-write=./data,/srv/p " +
 *     "'--allow-env=RINGKV_*' proxy/main.ts --data /srv/p",
 * );
 * ```
 */

import { ALL_ACCESS_WHY, isAllAccessPath, needsAllAccess, RAM_DISKS } from "./all_access_paths.ts";

/** Which server is starting. */
export type Role = "node" | "proxy";

/** The files a server was told to use, by the access it needs. */
export interface Paths {
  read: string[];
  write: string[];
}

/**
 * The task lines of deno.json with `{READ}` and `{WRITE}` where `./data` stands
 * (startup_hint_test.ts checks that they still match deno.json).
 */
export const TASK_TEMPLATES: Readonly<Record<Role, string>> = {
  node: "MALLOC_MMAP_THRESHOLD_=65536 deno run --allow-net --allow-read={READ} " +
    "--allow-write={WRITE} '--allow-env=RINGKV_*' " +
    "--v8-flags=--expose-gc,--heap-growing-percent=50 node/main.ts",
  proxy: "deno run --allow-net --allow-read={READ} --allow-write={WRITE} " +
    "'--allow-env=RINGKV_*' proxy/main.ts",
};

/** Quotes an argument for a POSIX shell when it needs it. */
export function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replaceAll("'", `'\\''`)}'`;
}

/**
 * How a printed command runs Deno: the binary `execPath` (`Deno.execPath()`) that runs now, or
 * `npx --yes deno@2.9.6` when that binary is npx's (its cache may be cleaned; README's way).
 */
export function denoCommand(execPath: string): string {
  return execPath.includes("/_npx/") ? "npx --yes deno@2.9.6" : shellQuote(execPath);
}

/** The flags whose values the servers never print, and the variable each can come from. */
const SECRET_FLAGS: Readonly<Record<string, string>> = {
  "--admin-token": "RINGKV_ADMIN_TOKEN",
  "--client-token": "RINGKV_CLIENT_TOKEN",
  "--cluster-secret": "RINGKV_CLUSTER_SECRET",
};

/**
 * `args` as shell words with each secret flag's value replaced by its variable
 * (docs/security.md: the servers print no token). `${VAR:?...}`: with the variable unset the
 * shell refuses the line, where an empty value would start a server with no token at all.
 */
export function redactedArgs(args: readonly string[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === "--") {
      words.push(...args.slice(i).map(shellQuote));
      break;
    }
    const flag = arg.split("=", 1)[0]!;
    const env = SECRET_FLAGS[flag];
    if (env === undefined) {
      words.push(shellQuote(arg));
      continue;
    }
    if (flag === arg) i++; // `--flag value`: the value is the next word
    words.push(flag, `"\${${env}:?set it to the value of ${flag}}"`);
  }
  return words;
}

/** For a command whose secret flags were redacted: where their values now come from, or "". */
function secretsNote(args: readonly string[]): string {
  const end = args.indexOf("--") === -1 ? args.length : args.indexOf("--");
  const flags = Object.keys(SECRET_FLAGS).filter((flag) =>
    args.slice(0, end).some((a) => a === flag || a.startsWith(flag + "="))
  );
  if (flags.length === 0) return "";
  const one = flags.length === 1;
  return `\n(${flags.join(", ")} not shown: the command takes ${
    one ? "its value" : "their values"
  }` +
    ` from ${flags.map((f) => SECRET_FLAGS[f]).join(", ")}; export ${one ? "it" : "them"} first)`;
}

/** The task's permission flags, which `--allow-all` replaces. */
const PERMISSIONS =
  /--allow-net --allow-read=\{READ\} --allow-write=\{WRITE\} '--allow-env=RINGKV_\*'/;

/**
 * The one `deno run` command (from the repository root) that starts `role` with `args`, the
 * given paths added to its reads and writes, or with every permission when `allowAll`.
 */
export function byHandCommand(
  role: Role,
  paths: Paths,
  args: readonly string[],
  allowAll = false,
): string {
  const flag = (name: string, xs: string[]) =>
    shellQuote(`--allow-${name}=${[...new Set(["./data", ...xs])].join(",")}`);
  const template = allowAll
    ? TASK_TEMPLATES[role].replace(PERMISSIONS, "--allow-all")
    : TASK_TEMPLATES[role]
      .replace("--allow-read={READ}", flag("read", [...paths.write, ...paths.read]))
      .replace("--allow-write={WRITE}", flag("write", paths.write));
  return template + redactedArgs(args).map((w) => " " + w).join("");
}

/** Linux's default ports for outgoing connections (net.ipv4.ip_local_port_range). */
const EPHEMERAL = { low: 32768, high: 60999 };

/** The remedy for a port another process holds. */
export function addrInUseMessage(role: Role, host: string, port: number): string {
  // A port of that range can be held with no process listening: by an outgoing connection
  // that closed less than a minute ago (TIME_WAIT), which a listener cannot share (review).
  const closed = port >= EPHEMERAL.low && port <= EPHEMERAL.high
    ? `, or a connection that closed in the last minute still holds it: ${EPHEMERAL.low}-` +
      `${EPHEMERAL.high} are the ports Linux gives outgoing connections, so pick a port below ` +
      `${EPHEMERAL.low}`
    : "";
  return `Cannot start the ${role} on ${host}:${port}: the address is already in use ` +
    `(another process listens on port ${port}${closed}). Start it with --port N (another free ` +
    `port; 0 lets the OS pick) or stop the process that holds ${port}`;
}

/**
 * Whether `err` says `--host` is no address of this machine: one it does not have
 * (AddrNotAvailable), or a name that does not resolve (Deno throws a plain Error for it).
 */
export function isBadHost(err: unknown): err is Error {
  return err instanceof Deno.errors.AddrNotAvailable ||
    (err instanceof Error && err.message.startsWith("failed to lookup address information"));
}

/** The remedy for a `--host` the server cannot listen on. */
function badHostMessage(role: Role, host: string, port: number, err: Error): string {
  return `Cannot start the ${role} on ${host}:${port}: ${err.message}. Give --host an address ` +
    "of this machine (127.0.0.1, 0.0.0.0 for every interface, or one of its own addresses)";
}

/**
 * The message for a start-up failure the operator can fix, or undefined when `err` is not
 * one (the caller prints its own message).
 */
export function startupHint(
  role: Role,
  err: unknown,
  where: { host: string; port: number; paths: Paths; args: readonly string[] },
): string | undefined {
  if (err instanceof Deno.errors.AddrInUse) return addrInUseMessage(role, where.host, where.port);
  if (isBadHost(err)) return badHostMessage(role, where.host, where.port, err);
  if (!(err instanceof Deno.errors.NotCapable)) return undefined;
  const state = err.message.replace(/, run again with .*$/s, "");
  const fromEnv = secretsNote(where.args);
  const guarded = [...where.paths.write, ...where.paths.read].some(isAllAccessPath);
  if (guarded || needsAllAccess(err)) {
    return `${state}. ${ALL_ACCESS_WHY}; deno task ${role} may read and write only ./data ` +
      `(docs/security.md). Use a directory elsewhere (${RAM_DISKS}), or, to run the ${role} ` +
      `with every permission, run from the repository root:\n  ` +
      byHandCommand(role, where.paths, where.args, true) + fromEnv;
  }
  return `${state}. deno task ${role} may read and write only ./data (docs/security.md); ` +
    `for files elsewhere, run from the repository root:\n  ` +
    byHandCommand(role, where.paths, where.args) + fromEnv;
}
