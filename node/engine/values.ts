/**
 * Conversions between value bytes and their stored form: the text when the bytes are
 * valid UTF-8 (compact in memory, readable in files), else base64.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { toBytes, fromBytes } from "./values.ts";
 * const held = fromBytes(new Uint8Array([0xff, 0x00]));
 * assert(held.kind === "base64" && toBytes(held)![0] === 0xff);
 * ```
 */
import { utf8Length } from "../../shared/keys.ts";
import type { ValueKind } from "./packed.ts";

const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();
const NON_ASCII = /[\u0080-\uffff]/;

/** A value in stored form. */
export interface HeldValue {
  kind: ValueKind;
  data: string;
}

/** The stored form of value bytes. */
export function fromBytes(bytes: Uint8Array): HeldValue {
  try {
    return { kind: "text", data: decoder.decode(bytes) };
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    return { kind: "base64", data: bytes.toBase64() };
  }
}

const HIGH_BYTE = /[\u0080-\u00ff]/;

/**
 * The text of base64 `text` when its bytes are all ASCII (then they are their own UTF-8 text);
 * undefined when they are not, or when `text` is not base64. `atob` makes the string without
 * an ArrayBuffer: an ArrayBuffer per value cost several µs of a batch call's entry.
 */
export function asciiFromBase64(text: string): string | undefined {
  let binary: string;
  try {
    binary = atob(text);
  } catch (err) {
    if (err instanceof DOMException) return undefined;
    throw err;
  }
  return HIGH_BYTE.test(binary) ? undefined : binary;
}

/**
 * How many bytes base64 `text` decodes to as `Uint8Array.fromBase64` reads it (the same
 * forgiving rules); undefined when it is not base64. `atob` makes no ArrayBuffer.
 */
export function base64Bytes(text: string): number | undefined {
  try {
    return atob(text).length;
  } catch (err) {
    if (err instanceof DOMException) return undefined;
    throw err;
  }
}

/** The base64 of a stored value's bytes; null for a tombstone. ASCII text needs no bytes made. */
export function base64Of(value: HeldValue): string | null {
  if (value.kind === "base64") return value.data;
  if (value.kind === "tombstone") return null;
  return NON_ASCII.test(value.data) ? encoder.encode(value.data).toBase64() : btoa(value.data);
}

/** The bytes of a stored value; null for a tombstone. */
export function toBytes(value: HeldValue): Uint8Array | null {
  if (value.kind === "text") return encoder.encode(value.data);
  if (value.kind === "base64") return Uint8Array.fromBase64(value.data);
  return null;
}

/** How many bytes a stored value has. */
export function byteLength(value: HeldValue): number {
  if (value.kind === "text") {
    // A regex test is native; a JS loop over every char cost 0.4 s per million values.
    return NON_ASCII.test(value.data) ? utf8Length(value.data) : value.data.length;
  }
  if (value.kind === "tombstone") return 0;
  const data = value.data;
  const padding = data.endsWith("==") ? 2 : data.endsWith("=") ? 1 : 0;
  return (data.length / 4) * 3 - padding;
}
