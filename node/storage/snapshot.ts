/**
 * `snapshot.json`: the whole store as one readable JSON document, one entry per line so
 * it can be written in chunks and read back line by line:
 *
 * ```text
 * {"format":"ringkv-snapshot-1","node":"n1a2b3c4d","entries":[
 * {"k":"a","h":123,"ver":"018bcfe56800-0000-n1a2b3c4d","t":"text/plain","s":"hello"},
 * {"k":"b","h":456,"ver":"018bcfe56801-0000-n1a2b3c4d","del":true}
 * ],"count":2}
 * ```
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
 * import { readSnapshot, writeSnapshot } from "./snapshot.ts";
 * const disk = createFakeDisk();
 * const entry = { kind: "text" as const, data: "v", hash: 1, contentType: "text/plain",
 *   version: "018bcfe56800-0000-n1" };
 * await writeSnapshot(disk, "snapshot.json", "n1", [["k", entry]]);
 * const seen: string[] = [];
 * await readSnapshot(disk, "snapshot.json", (key) => seen.push(key));
 * assert(seen[0] === "k");
 * ```
 */
import type { Disk } from "./disk.ts";
import { entryFromJson, entryToJson } from "../engine/entry_json.ts";
import type { Stored } from "../engine/packed.ts";

/** The `format` of snapshots this code writes and reads. */
export const SNAPSHOT_FORMAT = "ringkv-snapshot-1";
const CHUNK_BYTES = 1 << 20;
/**
 * 1 MiB reads: with 8 MiB ones, a restart left ~150 MiB of read buffers waiting for a GC
 * and ~200 MiB of malloc heap that glibc never gave back (RSS 564 -> 395 MiB at 1M keys).
 */
const READ_BYTES = 1 << 20;
const NEWLINE = 0x0a;
const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** A snapshot line that cannot be read: where and why. */
export class SnapshotDamage extends Error {
  /** `offset` is the byte offset of the bad line. */
  constructor(readonly offset: number, readonly reason: string) {
    super(`snapshot damaged at byte ${offset}: ${reason}`);
    this.name = "SnapshotDamage";
  }
}

/**
 * Writes the entries as the snapshot file atomically; returns its size in bytes. `generation`
 * counts the node's snapshots, so a log can tell the snapshot it continues from an older one.
 * `beforeCommit` runs once every entry is written and before the file replaces the old one;
 * when it throws, the old snapshot stays and the temporary file is removed.
 */
export async function writeSnapshot(
  disk: Disk,
  name: string,
  node: string,
  entries: Iterable<[string, Stored]>,
  generation = 0,
  beforeCommit: () => Promise<void> = () => Promise.resolve(),
  /** More members of the closing line, asked once every entry was read. */
  footer: () => Record<string, unknown> = () => ({}),
): Promise<number> {
  let size = 0;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    let text = `{"format":"${SNAPSHOT_FORMAT}","node":${JSON.stringify(node)},` +
      `"generation":${generation},"entries":[\n`;
    let previous: string | undefined;
    let count = 0;
    for (const [key, entry] of entries) {
      if (previous !== undefined) text += previous + ",\n";
      previous = entryToJson(key, entry);
      count++;
      if (text.length >= CHUNK_BYTES) {
        const bytes = encoder.encode(text);
        size += bytes.length;
        yield bytes;
        text = "";
      }
    }
    if (previous !== undefined) text += previous + "\n";
    const more = Object.entries(footer()).map(([k, v]) =>
      `,${JSON.stringify(k)}:${JSON.stringify(v)}`
    );
    const bytes = encoder.encode(`${text}],"count":${count}${more.join("")}}\n`);
    size += bytes.length;
    yield bytes;
    // Runs when the writer asks for more, after the last chunk and before its rename.
    await beforeCommit();
  }
  await disk.writeAtomic(name, chunks());
  return size;
}

/** What a snapshot's header and footer say. */
export interface SnapshotInfo {
  node: string;
  /** Its place among the node's snapshots (0 in snapshots from before generations). */
  generation: number;
  count: number;
  bytes: number;
  /** The change log's numbering when it was read (node/engine/change_recovery.ts), if written. */
  changes?: unknown;
}

/**
 * Reads the snapshot line by line, calling `onEntry` per entry; null when there is none.
 * `readBytes` is the size of each read (tests use small ones to cross line boundaries).
 */
export async function readSnapshot(
  disk: Pick<Disk, "read" | "size">,
  name: string,
  onEntry: (key: string, entry: Stored) => void,
  readBytes = READ_BYTES,
): Promise<SnapshotInfo | null> {
  const size = await disk.size(name);
  if (size === null) return null;
  const reader = new LineReader(onEntry);
  let carry: Uint8Array = new Uint8Array(0);
  let base = 0;
  for (let at = 0; at < size; at += readBytes) {
    const chunk = await disk.read(name, { offset: at, length: readBytes });
    if (chunk === null || chunk.length === 0) break;
    // Only the line cut by the previous read is copied, not the whole chunk: a copy of
    // every chunk doubled the memory a restart allocates and faults in.
    let start = 0;
    if (carry.length > 0) {
      const newline = chunk.indexOf(NEWLINE);
      if (newline === -1) {
        carry = join(carry, chunk);
        continue;
      }
      start = newline + 1;
      readLines(reader, join(carry, chunk.subarray(0, start)), base);
      base += carry.length + start;
    }
    const end = Math.max(start, chunk.lastIndexOf(NEWLINE) + 1);
    if (end > start) readLines(reader, chunk.subarray(start, end), base);
    base += end - start;
    carry = chunk.slice(end);
  }
  if (carry.length > 0) throw new SnapshotDamage(base, "the last line has no newline");
  return reader.finish(size);
}

/**
 * Feeds the complete lines of `bytes` (which ends with a newline) to the reader. The
 * bytes are decoded once, not per line (a million small decodes cost a second at
 * restart); when they are not UTF-8, each line is decoded alone so the error names it.
 */
function readLines(reader: LineReader, bytes: Uint8Array, base: number): void {
  let text: string;
  try {
    text = decoder.decode(bytes);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    for (let s = 0, nl = bytes.indexOf(NEWLINE); nl !== -1; nl = bytes.indexOf(NEWLINE, s)) {
      reader.line(lineText(bytes.subarray(s, nl), base + s), base + s);
      s = nl + 1;
    }
    return;
  }
  // Char offsets are byte offsets while the text is ASCII; otherwise count the bytes.
  const ascii = text.length === bytes.length;
  const offsetOf = (i: number) => base + (ascii ? i : encoder.encode(text.slice(0, i)).length);
  for (let s = 0, nl = text.indexOf("\n"); nl !== -1; nl = text.indexOf("\n", s)) {
    reader.line(text.slice(s, nl), s, offsetOf);
    s = nl + 1;
  }
}

function lineText(bytes: Uint8Array, offset: number): string {
  try {
    return decoder.decode(bytes);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    throw new SnapshotDamage(offset, err.message);
  }
}

/** The state of reading: header, then entries, then the footer. */
class LineReader {
  #node: string | undefined;
  #count = 0;
  #footer: number | undefined;
  #changes: unknown;
  #generation = 0;
  #at = 0;
  #offsetOf: (at: number) => number = (n) => n;

  constructor(readonly onEntry: (key: string, entry: Stored) => void) {}

  /** One line (without its newline) at `at`; `offsetOf` turns `at` into a byte offset. */
  line(text: string, at: number, offsetOf: (at: number) => number = (n) => n): void {
    this.#at = at;
    this.#offsetOf = offsetOf;
    try {
      this.#read(text);
    } catch (err) {
      if (err instanceof SnapshotDamage) throw err;
      if (!(err instanceof SyntaxError || err instanceof TypeError)) throw err;
      throw new SnapshotDamage(offsetOf(at), err.message);
    }
  }

  finish(bytes: number): SnapshotInfo {
    if (this.#footer === undefined) {
      throw new SnapshotDamage(bytes, "the file ends before its closing line");
    }
    if (this.#footer !== this.#count) {
      throw new SnapshotDamage(
        this.#offsetOf(this.#at),
        `it says ${this.#footer} entries, it has ${this.#count}`,
      );
    }
    const info = { node: this.#node!, generation: this.#generation, count: this.#count, bytes };
    return this.#changes === undefined ? info : { ...info, changes: this.#changes };
  }

  #read(text: string): void {
    if (this.#footer !== undefined) throw new TypeError("there is text after the closing line");
    if (this.#node === undefined) {
      const header = JSON.parse(text + "]}");
      if (header.format !== SNAPSHOT_FORMAT || typeof header.node !== "string") {
        throw new TypeError(`the header is not a ${SNAPSHOT_FORMAT} header`);
      }
      this.#node = header.node;
      this.#generation = Number.isSafeInteger(header.generation) ? header.generation : 0;
    } else if (text.startsWith("],")) {
      const { count, changes } = JSON.parse("{" + text.slice(2));
      if (!Number.isInteger(count)) throw new TypeError("the closing line has no count");
      this.#footer = count;
      this.#changes = changes;
    } else {
      const { key, stored } = entryFromJson(
        JSON.parse(text.endsWith(",") ? text.slice(0, -1) : text),
      );
      this.#count++;
      this.onEntry(key, stored);
    }
  }
}

function join(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}
