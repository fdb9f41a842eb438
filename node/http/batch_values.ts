/**
 * The base64 values of one batch call, decoded into one buffer shared by the call: one
 * allocation per call instead of one ArrayBuffer per value. Each small ArrayBuffer costs
 * several malloc'd pieces (bytes, backing store, GC bookkeeping) that live until V8 collects
 * it; a bulk load of 1,000,000 values grew the malloc heap to 60-140 MiB that glibc never
 * gave back (docs/performance.md, "Memory and restart").
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { BatchValues } from "./batch_values.ts";
 * const values = new BatchValues(["aGk=", "eW8="]);
 * const hi = values.decode("aGk=");
 * assert(new TextDecoder().decode(hi) === "hi" && hi.length === 2);
 * ```
 */

/** Decodes the base64 values of one call into views of one shared buffer. */
export class BatchValues {
  readonly #buffer: Uint8Array;
  #at = 0;

  /** `texts`: every base64 text the call may decode (their room is reserved up front). */
  constructor(texts: Iterable<string>) {
    let room = 0;
    // Four base64 chars are at most three bytes; whitespace and padding only lower it.
    for (const text of texts) room += Math.ceil(text.length / 4) * 3;
    this.#buffer = new Uint8Array(room);
  }

  /**
   * The bytes of `text` as a view of the shared buffer (it keeps the whole buffer alive, so
   * callers copy what they keep). Throws a SyntaxError when `text` is not base64, like
   * `Uint8Array.fromBase64`.
   */
  decode(text: string): Uint8Array {
    const room = this.#buffer.subarray(this.#at);
    const { read, written } = room.setFromBase64(text);
    if (read !== text.length) {
      throw new Error(`Cannot decode a batch value: ${text.length} chars were not reserved`);
    }
    this.#at += written;
    return room.subarray(0, written);
  }
}
