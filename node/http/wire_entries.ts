/**
 * Conversions between stored entries and their wire form ({@link WireEntry}), and the
 * validation of what proxies send: entries, ranges, base64 values.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import { checkKey } from "../../shared/keys.ts";
import type { Limits } from "../../shared/limits.ts";
import { type Range, RING_SIZE } from "../../shared/ring.ts";
import { isVersion } from "../../shared/version.ts";
import type { WireEntry } from "../../shared/wire.ts";
import type { Entry } from "../engine/engine.ts";
import { MAX_FIELD_CHARS, type Stored } from "../engine/packed.ts";
import { base64Bytes, base64Of } from "../engine/values.ts";
import { isObject } from "./node_request_body.ts";

/** The wire form of an entry; `withValue: false` sends `""` for live values. */
export function toWire(key: string, entry: Entry, withValue = true): WireEntry {
  const v = entry.value === null ? null : withValue ? entry.value.toBase64() : "";
  return { k: key, v, t: entry.contentType, ver: entry.version, h: entry.hash };
}

/** The wire form of an entry as held (text or base64): no value bytes made for ASCII text. */
export function heldToWire(key: string, held: Stored): WireEntry {
  const t = held.kind === "tombstone" ? "" : held.contentType;
  return { k: key, v: base64Of(held), t, ver: held.version, h: held.hash };
}

/** Decodes base64; invalid text is the sender's 400. */
export function fromBase64(text: string, what: string): Uint8Array {
  try {
    return Uint8Array.fromBase64(text);
  } catch {
    throw new RingkvError("bad_request", `Cannot decode ${what}: it is not valid base64`);
  }
}

/** Checks one entry sent for ingest; throws 4xx naming `where`. */
export function parseWireEntry(value: unknown, limits: Limits, where: string): WireEntry {
  const bad = (why: string) => new RingkvError("invalid_batch", `Cannot ingest ${where}: ${why}`);
  if (!isObject(value)) throw bad("it is not a JSON object");
  const { k, v, t, ver, h } = value;
  if (typeof k !== "string") throw bad('"k" is not a string');
  checkKey(k, limits.maxKeyBytes);
  if (v !== null && typeof v !== "string") throw bad('"v" is neither a string nor null');
  if (typeof v === "string") {
    // base64 grows 4/3: decode only what can be within the limit.
    if (v.length > Math.ceil(limits.maxValueBytes / 3) * 4) {
      throw new RingkvError(
        "value_too_large",
        `Cannot ingest ${where}: its value is over ${limits.maxValueBytes} bytes`,
      );
    }
    // The text's length only bounds the bytes (padding and whitespace): count them exactly.
    const bytes = base64Bytes(v);
    if (bytes === undefined) {
      throw new RingkvError(
        "bad_request",
        `Cannot decode the value of ${where}: it is not valid base64`,
      );
    }
    if (bytes > limits.maxValueBytes) {
      throw new RingkvError(
        "value_too_large",
        `Cannot ingest ${where}: its value is ${bytes} bytes, the limit is ${limits.maxValueBytes}`,
      );
    }
  }
  if (t !== undefined && typeof t !== "string") throw bad('"t" is not a string');
  if (typeof t === "string" && t.length > MAX_FIELD_CHARS) {
    throw bad(`"t" is ${t.length} characters, the limit is ${MAX_FIELD_CHARS}`);
  }
  if (typeof ver !== "string" || !isVersion(ver)) throw bad('"ver" is not a version');
  if (!Number.isInteger(h) || (h as number) < 0 || (h as number) >= RING_SIZE) {
    throw bad('"h" is not a ring point (a whole number in [0, 2^32))');
  }
  return { k, v, ...(t === undefined ? {} : { t }), ver, h: h as number };
}

/** Checks one range `[start, end)` of ring points. */
export function checkRange(start: unknown, end: unknown): Range {
  const ok = Number.isInteger(start) && Number.isInteger(end) && (start as number) >= 0 &&
    (start as number) < (end as number) && (end as number) <= RING_SIZE;
  if (!ok) {
    throw new RingkvError(
      "bad_request",
      `Cannot use range [${start}, ${end}): ranges are whole numbers 0 <= start < end <= 2^32`,
    );
  }
  return { start: start as number, end: end as number };
}

/** Parses `s-e,s-e` (the `ranges` query of a scan). */
export function parseRangesQuery(text: string | undefined): Range[] {
  if (text === undefined || text === "") {
    throw new RingkvError("bad_request", "Cannot scan: give ?ranges=start-end,start-end");
  }
  return text.split(",").map((part) => {
    const match = /^(\d{1,10})-(\d{1,10})$/.exec(part.trim());
    if (!match) {
      throw new RingkvError("bad_request", `Cannot read range "${part}": expected start-end`);
    }
    return checkRange(Number(match[1]), Number(match[2]));
  });
}

/** Parses `[[s, e], ...]` (the `ranges` of a drop). */
export function parseRangesJson(value: unknown): Range[] {
  if (!Array.isArray(value)) {
    throw new RingkvError("bad_request", 'Cannot drop: "ranges" is not a list of [start, end]');
  }
  return value.map((pair) => {
    if (!Array.isArray(pair) || pair.length !== 2) {
      throw new RingkvError(
        "bad_request",
        `Cannot drop: ${JSON.stringify(pair)} is not [start, end]`,
      );
    }
    return checkRange(pair[0], pair[1]);
  });
}
