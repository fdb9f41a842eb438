/**
 * Finding a name that appears twice in one object of a JSON text. `JSON.parse` keeps the last
 * of two equal names and drops the other without a word (RFC 8259 leaves it to the parser), so
 * a batch `{"set": {"a": 1}, "set": {"b": 2}}` would lose the write of `a`: ringkv refuses
 * such a body instead.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { scanNames } from "./json_names.ts";
 * assertEquals(scanNames('{"set": {"a": 1, "a": 2}}').repeated, "a");
 * assertEquals(scanNames('{"set": {"a": 1}, "delete": ["a"]}').repeated, undefined);
 * ```
 */

const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/** Index of the quote that ends the string opening at `start`, in valid JSON `text`. */
function stringEnd(text: string, start: number): number {
  let end = text.indexOf('"', start + 1);
  // A quote after an odd run of backslashes is escaped: look further.
  for (;;) {
    let slashes = 0;
    while (text.charCodeAt(end - 1 - slashes) === BACKSLASH) slashes++;
    if (slashes % 2 === 0) return end;
    end = text.indexOf('"', end + 1);
  }
}

/** What {@link scanNames} found in a JSON text. */
export interface NameScan {
  /** The first name found twice in one object (compared decoded). */
  repeated?: string;
  /** Objects and arrays nest deeper than the `maxDepth` given. */
  tooDeep?: true;
}

/**
 * Scans `text`, which must be JSON that `JSON.parse` accepted (so the scan needs no checks of its
 * own), for the first name found twice in one object (`"a"` and `"\u0061"` are the same name),
 * stopping early where objects and arrays nest deeper than `maxDepth`.
 */
export function scanNames(text: string, maxDepth = Infinity): NameScan {
  // One entry per open object (its names so far) or array (null).
  const open: (Set<string> | null)[] = [];
  let nameNext = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === QUOTE) {
      const end = stringEnd(text, i);
      if (nameNext) {
        const raw = text.slice(i, end + 1);
        const name = raw.includes("\\") ? JSON.parse(raw) as string : raw.slice(1, -1);
        const names = open.at(-1)!;
        if (names.has(name)) return { repeated: name };
        names.add(name);
        nameNext = false;
      }
      i = end;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      if (open.length >= maxDepth) return { tooDeep: true };
      open.push(c === 0x7b ? new Set() : null);
      nameNext = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      open.pop();
    } else if (c === 0x2c /* , */) {
      nameNext = open.at(-1) !== null;
    }
  }
  return {};
}
