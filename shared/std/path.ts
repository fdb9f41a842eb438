/**
 * The subset of `@std/path` ringkv uses, for POSIX paths, written out because JSR is
 * out of reach here. Mapped as `@std/path` in deno.json: pointing that entry at
 * `jsr:@std/path@1` switches every import over unchanged.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { join } from "./path.ts";
 * assert(join("data", "n1", "wal.jsonl") === "data/n1/wal.jsonl");
 * ```
 */

/** Joins path segments with `/`, collapsing repeated separators. */
export function join(...parts: string[]): string {
  const joined = parts.filter((p) => p.length > 0).join("/");
  return joined.replace(/\/{2,}/g, "/") || ".";
}

/** The directory part of a path. */
export function dirname(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  const slash = trimmed.lastIndexOf("/");
  if (slash === -1) return ".";
  return slash === 0 ? "/" : trimmed.slice(0, slash);
}

/** The last segment of a path. */
export function basename(path: string): string {
  const trimmed = path.replace(/\/+$/, "");
  return trimmed.slice(trimmed.lastIndexOf("/") + 1);
}

/**
 * `path` made absolute against `cwd` (default: the working directory), with `.` and `..`
 * segments worked out, as `@std/path`'s `resolve(path)`.
 */
export function resolve(path: string, cwd: () => string = () => Deno.cwd()): string {
  const segments: string[] = [];
  for (const part of (path.startsWith("/") ? path : `${cwd()}/${path}`).split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") segments.pop();
    else segments.push(part);
  }
  return "/" + segments.join("/");
}
