/**
 * What a `kv watch` tells its user when changes may be missed: the command that resumes a watch
 * that gave up (`--after` its last cursor), and the `kv ls` that re-lists after `compacted`,
 * `reset` or a refused cursor. Commands are printed as words a POSIX shell reads back.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { resumeCommand } from "./kv_resume.ts";
 * assertEquals(
 *   resumeCommand(["watch", "my keys/", "--after", "old"], "eyJlIjox"),
 *   "deno task kv watch 'my keys/' --after eyJlIjox",
 * );
 * ```
 */
import { shellQuote } from "../shared/startup_hint.ts";

/** Flags whose value is never printed: a resume line leaves them out and says so. */
const SECRET_FLAGS = ["--token", "--client-token"];

/**
 * The command that resumes a watch run with `args` (kv's arguments) from `cursor`: the same
 * arguments, any `--after` replaced, tokens left out (they are not printed; give them again).
 */
export function resumeCommand(args: readonly string[], cursor: string): string {
  const end = args.indexOf("--");
  const flags = end === -1 ? args : args.slice(0, end);
  const kept: string[] = [];
  let secret = false;
  for (let i = 0; i < flags.length; i++) {
    const [name, value] = flags[i]!.split(/=(.*)/s, 2) as [string, string?];
    const drop = name === "--after" || SECRET_FLAGS.includes(name);
    if (SECRET_FLAGS.includes(name)) secret = true;
    if (drop && value === undefined) i++; // its value is the next word
    if (!drop) kept.push(flags[i]!);
  }
  const words = [...kept, "--after", cursor, ...(end === -1 ? [] : args.slice(end))];
  const line = ["deno", "task", "kv", ...words].map(shellQuote).join(" ");
  return secret ? `${line} (with your token flags, left out here)` : line;
}

/** The command that lists what a watch of `prefix` covers. */
export function relistCommand(prefix: string): string {
  return prefix === "" ? "deno task kv ls" : `deno task kv ls --prefix ${shellQuote(prefix)}`;
}

/** How to go on once the watch gave up: the command that resumes it, or re-list. */
export function resumeAdvice(
  cursor: string | undefined,
  prefix: string,
  resume?: (cursor: string) => string,
): string {
  if (cursor === undefined) {
    return "No event came with a cursor to resume from: a new watch starts from the present, " +
      `so re-list once it runs (${relistCommand(prefix)}) to catch up`;
  }
  const command = resume?.(cursor) ?? `Last-Event-ID: ${cursor}`;
  return `To resume after the last event received: ${command}`;
}

/** What the user does after a `compacted` or `reset` event (changes may be missing). */
export function eventAdvice(event: string, prefix: string): string {
  const relist = relistCommand(prefix);
  if (event === "compacted") {
    return ` (changes before this point may be missing: re-list with ${relist}; ` +
      "the watch goes on from the present)";
  }
  if (event === "reset") {
    return ` (the watch starts again from the present and changes may be missing: re-list with ${relist})`;
  }
  return "";
}
