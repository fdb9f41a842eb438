/**
 * The compact in-memory form of a stored entry: ONE flat string per key, so a million
 * keys cost one string each beside the Map, not an object, a version string and a value
 * buffer each. Every header char is < 256, so ASCII records stay one byte per char.
 *
 * Layout: kind (1) | hash (4, big-endian bytes) | wall ms (6) | counter (2) |
 * writer (interned: 2) | content type (interned: 2) | value. A value is its text when it
 * is valid UTF-8, else its base64; a tombstone has none, and holds instead the wall time (ms, 6
 * bytes) it was stored at on this node, for the purge of old tombstones (never unpacked as its
 * data: {@link Packer.arrivalOf}). An interned field is the
 * index in a per-store table; 0xFFFF (two 0xFF chars) means inline: length (2) + text.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { Packer } from "./packed.ts";
 * const packer = new Packer();
 * const record = packer.pack({
 *   kind: "text", data: "hello", hash: 42, contentType: "text/plain",
 *   version: "018bcfe56800-0001-n1",
 * });
 * assert(packer.unpack(record).version === "018bcfe56800-0001-n1");
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import { parseVersion } from "../../shared/version.ts";

/** How a value is held: UTF-8 text as a string, other bytes as base64, or a tombstone. */
export type ValueKind = "text" | "base64" | "tombstone";

/** An entry in the form records, log lines and snapshots share. */
export interface Stored {
  kind: ValueKind;
  /** The text, the base64, or "" for a tombstone. */
  data: string;
  hash: number;
  contentType: string;
  version: string;
  /**
   * A tombstone's: when this node stored it (wall ms, its clock), for the purge of old ones;
   * absent on a tombstone from the wire (the store stamps it as it sets it).
   */
  arrivedAt?: number;
}

const KINDS: readonly ValueKind[] = ["text", "base64", "tombstone"];
const INLINE = 0xffff;
/** The longest writer id or content type a record holds, in UTF-16 code units. */
export const MAX_FIELD_CHARS = INLINE - 1;
const HEADER = 1 + 4 + 6 + 2;
const TWO_24 = 2 ** 24;

/** Strings that repeat across entries (writer ids, content types), numbered. */
class Interner {
  readonly #index = new Map<string, number>();
  readonly #texts: string[] = [];

  #lastText = "";
  #lastNumber: number | undefined;

  /** The string's number, or undefined when the table is full. */
  numberOf(text: string): number | undefined {
    // Most entries repeat the previous one's writer and type: skip the Map lookup.
    if (text === this.#lastText && this.#lastNumber !== undefined) return this.#lastNumber;
    let n = this.#index.get(text);
    if (n === undefined && this.#texts.length < INLINE) {
      n = this.#texts.length;
      this.#texts.push(text);
      this.#index.set(text, n);
    }
    this.#lastText = text;
    this.#lastNumber = n;
    return n;
  }

  textOf(n: number): string {
    return this.#texts[n]!;
  }
}

/** Packs and unpacks records; owns the tables of writers and content types. */
export class Packer {
  readonly #writers = new Interner();
  readonly #types = new Interner();

  /** The record string of an entry; a tombstone's also holds its `arrivedAt` (0 when absent). */
  pack(entry: Stored): string {
    const { wall, counter, writer } = parseVersion(entry.version);
    const hash = entry.hash;
    const head = String.fromCharCode(
      KINDS.indexOf(entry.kind),
      hash >>> 24,
      (hash >>> 16) & 0xff,
      (hash >>> 8) & 0xff,
      hash & 0xff,
    );
    // join() builds one flat string; `+` would leave a tree of pieces in memory.
    // A type with an expiry is unique per write: inline, so the table does not fill up with them.
    const types = entry.contentType.includes("; ringkv-expires=") ? undefined : this.#types;
    const data = entry.kind === "tombstone" ? sixBytes(entry.arrivedAt ?? 0) : entry.data;
    return [
      head,
      sixBytes(wall),
      String.fromCharCode(counter >>> 8, counter & 0xff),
      field(this.#writers, writer),
      field(types, entry.contentType),
      data,
    ].join("");
  }

  /** Throws what {@link pack} would throw for `entry`, without packing it (the fields' lengths). */
  check(entry: Stored): void {
    fieldLength(parseVersion(entry.version).writer);
    fieldLength(entry.contentType);
  }

  /** The entry of a record string. */
  unpack(record: string): Stored {
    const writer = this.#field(this.#writers, record, HEADER);
    const type = this.#field(this.#types, record, writer.end);
    const kind = kindOf(record);
    const stored: Stored = {
      kind,
      data: kind === "tombstone" ? "" : record.slice(type.end),
      hash: hashOf(record),
      contentType: type.text,
      version: versionAt(record, writer.text),
    };
    if (kind === "tombstone") stored.arrivedAt = arrival(record, type.end);
    return stored;
  }

  /** The value of a record string (kind and text or base64). */
  value(record: string): { kind: ValueKind; data: string } {
    const writer = this.#field(this.#writers, record, HEADER);
    const type = this.#field(this.#types, record, writer.end);
    const kind = kindOf(record);
    return { kind, data: kind === "tombstone" ? "" : record.slice(type.end) };
  }

  /** When a tombstone's record was stored on this node (wall ms; 0 for a live entry). */
  arrivalOf(record: string): number {
    if (kindOf(record) !== "tombstone") return 0;
    const writer = this.#field(this.#writers, record, HEADER);
    return arrival(record, this.#field(this.#types, record, writer.end).end);
  }

  /** The version of a record string. */
  versionOf(record: string): string {
    const writer = this.#field(this.#writers, record, HEADER);
    return versionAt(record, writer.text);
  }

  #field(table: Interner, record: string, at: number): { text: string; end: number } {
    const n = (record.charCodeAt(at) << 8) | record.charCodeAt(at + 1);
    if (n !== INLINE) return { text: table.textOf(n), end: at + 2 };
    const length = (record.charCodeAt(at + 2) << 8) | record.charCodeAt(at + 3);
    return { text: record.slice(at + 4, at + 4 + length), end: at + 4 + length };
  }
}

/** The kind of a record string. */
export function kindOf(record: string): ValueKind {
  return KINDS[record.charCodeAt(0)]!;
}

/** The ring point of a record string. */
export function hashOf(record: string): number {
  return ((record.charCodeAt(1) << 24) | (record.charCodeAt(2) << 16) |
    (record.charCodeAt(3) << 8) | record.charCodeAt(4)) >>> 0;
}

/** A number below 2^48 as 6 chars of one byte each, big-endian. */
function sixBytes(n: number): string {
  const high = Math.floor(n / TWO_24);
  const low = n % TWO_24;
  return String.fromCharCode(
    high >>> 16,
    (high >>> 8) & 0xff,
    high & 0xff,
    low >>> 16,
    (low >>> 8) & 0xff,
    low & 0xff,
  );
}

/** A tombstone record's arrival, written after its content type (which ends at `at`). */
function arrival(record: string, at: number): number {
  return at + 6 > record.length ? 0 : readSixBytes(record, at);
}

/** The number {@link sixBytes} wrote at `at`. */
function readSixBytes(r: string, at: number): number {
  return ((r.charCodeAt(at) << 8) | r.charCodeAt(at + 1)) * 2 ** 32 +
    (((r.charCodeAt(at + 2) << 24) | (r.charCodeAt(at + 3) << 16) | (r.charCodeAt(at + 4) << 8) |
      r.charCodeAt(at + 5)) >>> 0);
}

/** Two hex digits of each byte value: a version is its record's wall and counter bytes in hex. */
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));

/**
 * The version of a record, as formatVersion spells it (12 hex digits of wall ms, 4 of counter,
 * the writer), read byte by byte: every read formats one, and number-to-hex costs 4x more.
 */
function versionAt(r: string, writer: string): string {
  const hex = (at: number) => HEX[r.charCodeAt(at)]!;
  return hex(5) + hex(6) + hex(7) + hex(8) + hex(9) + hex(10) + "-" + hex(11) + hex(12) + "-" +
    writer;
}

function field(table: Interner | undefined, text: string): string {
  fieldLength(text);
  const n = table?.numberOf(text);
  if (n !== undefined) return String.fromCharCode(n >>> 8, n & 0xff);
  return String.fromCharCode(0xff, 0xff, text.length >>> 8, text.length & 0xff) + text;
}

/** Throws 400 when `text` is too long for a record's inline field. */
function fieldLength(text: string): void {
  if (text.length <= MAX_FIELD_CHARS) return;
  throw new RingkvError(
    "bad_request",
    `Cannot store "${
      text.slice(0, 40)
    }...": it is ${text.length} characters, the limit is ${MAX_FIELD_CHARS}`,
  );
}
