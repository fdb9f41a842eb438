/**
 * Lines of the write-ahead log `wal.jsonl`: one JSON object per line whose first member
 * is a checksum of the rest, `{"crc":"1a2b3c4d",` + rest + `\n`, where the CRC-32
 * covers the UTF-8 bytes of `rest` (everything after the comma, up to the newline).
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { encodeLine, scanLines } from "./log_format.ts";
 * const bytes = encodeLine({ drop: [[0, 10]] });
 * const scan = scanLines(bytes);
 * assert(scan.records.length === 1 && scan.goodLength === bytes.length);
 * ```
 */
import { crc32, crc32Hex } from "../../shared/crc32.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });
const lenient = new TextDecoder();
const PREFIX = '{"crc":"';
/** Bytes before the checksummed part: `{"crc":"` + 8 hex digits + `",`. */
const HEAD = PREFIX.length + 8 + 2;
const NEWLINE = 0x0a;

/** One log line: the record as JSON with its checksum, newline included. */
export function encodeLine(record: Record<string, unknown>): Uint8Array {
  return encodeJsonLine(JSON.stringify(record));
}

/** One log line from the JSON text of a non-empty object. */
export function encodeJsonLine(json: string): Uint8Array {
  const rest = encoder.encode(json.slice(1));
  const line = new Uint8Array(HEAD + rest.length + 1);
  line.set(encoder.encode(`${PREFIX}${crc32Hex(rest)}",`));
  line.set(rest, HEAD);
  line[line.length - 1] = NEWLINE;
  return line;
}

/** A record read back, with the byte offset of its line. */
export interface LogRecord {
  offset: number;
  record: Record<string, unknown>;
}

/** What a scan of the log found. */
export interface LogScan {
  records: LogRecord[];
  /** Bytes up to the end of the last good line; anything after it is a torn tail. */
  goodLength: number;
  /** A bad line followed by a good one: the log is damaged, not torn. */
  damage?: { offset: number; reason: string };
  /** Why the tail was dropped, when there was one. */
  torn?: { offset: number; reason: string };
}

/**
 * Reads every line. A bad line (no newline, wrong checksum, bad JSON) is a torn tail
 * when no good line follows it, and damage otherwise.
 */
export function scanLines(bytes: Uint8Array): LogScan {
  const records: LogRecord[] = [];
  let goodLength = 0;
  let bad: { offset: number; reason: string } | undefined;
  for (let start = 0; start < bytes.length;) {
    const newline = bytes.indexOf(NEWLINE, start);
    const end = newline === -1 ? bytes.length : newline;
    const result = readLine(bytes, start, end, newline !== -1);
    if (typeof result === "string") {
      bad ??= { offset: start, reason: result };
    } else if (bad) {
      return { records, goodLength, damage: bad };
    } else {
      records.push({ offset: start, record: result });
      goodLength = end + 1;
    }
    start = end + 1;
  }
  return bad ? { records, goodLength, torn: bad } : { records, goodLength };
}

/** The record of one line, or why it is bad. */
function readLine(
  bytes: Uint8Array,
  start: number,
  end: number,
  complete: boolean,
): Record<string, unknown> | string {
  if (!complete) return "the line has no newline (an append was cut short)";
  if (end - start < HEAD + 1) return "the line is too short to hold a checksum";
  const head = lenient.decode(bytes.subarray(start, start + HEAD));
  const expected = parseInt(head.slice(PREFIX.length, PREFIX.length + 8), 16);
  if (!/^\{"crc":"[0-9a-f]{8}",$/.test(head)) return "the line does not start with a checksum";
  if (crc32(bytes, start + HEAD, end) !== expected) return "the checksum does not match";
  try {
    const record = JSON.parse(decoder.decode(bytes.subarray(start, end)));
    if (typeof record === "object" && record !== null && !Array.isArray(record)) return record;
    return "the line is not a JSON object";
  } catch {
    return "the line is not valid JSON";
  }
}
