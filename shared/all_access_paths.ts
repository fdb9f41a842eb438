/**
 * Paths Deno opens only to a program run with `--allow-all`: everything under /dev, /proc and
 * /sys (a tmpfs such as /dev/shm included), whatever `--allow-read`/`--allow-write` list.
 * `deno task node`, `proxy` and `cluster` never have --allow-all, so they name the cause and
 * the way out instead of printing a command that fails the same way.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { isAllAccessPath } from "./all_access_paths.ts";
 * assertEquals(isAllAccessPath("/dev/shm/ringkv"), true);
 * assertEquals(isAllAccessPath("/srv/dev/shm"), false);
 * ```
 */

import { resolve } from "@std/path";

/** Why such a path is refused whatever --allow-read and --allow-write say. */
export const ALL_ACCESS_WHY = "Deno lets a program touch files under /dev, /proc and /sys " +
  "(through a symlink too) only when it runs with --allow-all";

/** Where a RAM-backed directory can be had outside /dev. */
export const RAM_DISKS = "for a RAM disk: /run/user/<uid>, or a tmpfs mounted with " +
  "`mount -t tmpfs tmpfs DIR`";

/** The roots Deno guards this way (observed on Deno 2.9 on Linux, the one platform we ship). */
const ROOTS = ["dev", "proc", "sys"];

/**
 * Whether the absolute `path` lies under /dev, /proc or /sys once `.` and `..` are taken out.
 * A relative path is not judged (the working directory may not be readable): Deno's own
 * refusal, {@link needsAllAccess}, covers it and symlinks.
 */
export function isAllAccessPath(path: string): boolean {
  if (!path.startsWith("/")) return false;
  return ROOTS.includes(resolve(path).split("/")[1]!);
}

/** Whether `err` is Deno refusing a path that only --allow-all opens. */
export function needsAllAccess(err: unknown): err is Deno.errors.NotCapable {
  return err instanceof Deno.errors.NotCapable && err.message.startsWith("Requires all access");
}
