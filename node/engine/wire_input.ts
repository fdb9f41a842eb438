/**
 * What the engine reads from the node API: entries copied in (range copies, anti-entropy) and
 * the values of a flat image, into the store's forms. The HTTP layer checks them first
 * (node/http/wire_entries.ts, flat_image.ts); one that is bad here still is a 400, never a 500.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { entryFromWire } from "./wire_input.ts";
 * const ver = "018bcfe56800-0000-n1";
 * const { stored } = entryFromWire({ k: "a", v: "aGk=", t: "text/plain", ver, h: 7 });
 * assertEquals([stored.kind, stored.data], ["text", "hi"]);
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import { isVersion } from "../../shared/version.ts";
import { DEFAULT_CONTENT_TYPE, type WireEntry } from "../../shared/wire.ts";
import type { Stored } from "./packed.ts";
import type { FlatValue } from "./store.ts";
import { asciiFromBase64, fromBytes, type HeldValue } from "./values.ts";

const encoder = new TextEncoder();

/** An entry to ingest as the store holds it; a bad key, version or point is a 400. */
export function entryFromWire(entry: WireEntry): { key: string; stored: Stored } {
  const { k, v, ver, h } = entry;
  if (typeof k !== "string" || typeof ver !== "string" || !isVersion(ver)) {
    throw new RingkvError(
      "bad_request",
      `Cannot ingest entry ${JSON.stringify(k)}: bad key or version`,
    );
  }
  if (!Number.isInteger(h) || h < 0 || h >= 2 ** 32) {
    throw new RingkvError(
      "bad_request",
      `Cannot ingest entry ${JSON.stringify(k)}: h is not a uint32`,
    );
  }
  if (v === null) {
    return {
      key: k,
      stored: { kind: "tombstone", data: "", hash: h, contentType: "", version: ver },
    };
  }
  const ascii = asciiFromBase64(v);
  const value: HeldValue = ascii !== undefined
    ? { kind: "text", data: ascii }
    : fromBytes(decodeBase64(k, v));
  return {
    key: k,
    stored: { ...value, hash: h, contentType: entry.t ?? DEFAULT_CONTENT_TYPE, version: ver },
  };
}

/** The bytes of a flat image's value (text, or `{"base64": ...}`) of at most `maxBytes`. */
export function flatValueBytes(key: string, value: FlatValue, maxBytes: number): Uint8Array {
  let bytes: Uint8Array;
  if (typeof value === "string") bytes = encoder.encode(value);
  else if (typeof value === "object" && value !== null && typeof value.base64 === "string") {
    bytes = decodeBase64(key, value.base64);
  } else {
    throw new RingkvError(
      "bad_request",
      `Cannot import key ${
        JSON.stringify(key)
      }: its value is neither a string nor {"base64": "..."}`,
    );
  }
  if (bytes.length > maxBytes) {
    throw new RingkvError(
      "value_too_large",
      `Cannot import key ${
        JSON.stringify(key)
      }: its value is ${bytes.length} bytes, the limit is ${maxBytes}`,
    );
  }
  return bytes;
}

function decodeBase64(key: string, base64: unknown): Uint8Array {
  try {
    if (typeof base64 === "string") return Uint8Array.fromBase64(base64);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
  }
  throw new RingkvError(
    "bad_request",
    `Cannot read the value of key ${JSON.stringify(key)}: it is not base64`,
  );
}
