/**
 * The JSON body of `POST /internal/accept` (`{"entries": [...]}`, docs/internal-api.md), with
 * each entry encoded once however many replicas it goes to: a 3-replica write sends the same
 * entry object to three nodes, so `JSON.stringify` of the whole body per call encoded it three
 * times. The text is byte for byte what `JSON.stringify({ entries })` gives.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { EntryTexts } from "./accept_body.ts";
 * const texts = new EntryTexts();
 * const entries = [{ k: "a", v: "aGk=", ver: "018c0000aaaa-0001-p1", h: 7 }];
 * assertEquals(texts.acceptBody(entries), JSON.stringify({ entries }));
 * ```
 */
import type { WireEntry } from "../../shared/wire.ts";

/** Each entry's JSON text, kept while the entry object lives (entries are never changed once sent). */
export class EntryTexts {
  readonly #texts = new WeakMap<WireEntry, string>();

  /** The JSON text of `entry`, encoded on its first call only. */
  textOf(entry: WireEntry): string {
    let text = this.#texts.get(entry);
    if (text === undefined) {
      text = JSON.stringify(entry);
      this.#texts.set(entry, text);
    }
    return text;
  }

  /** `JSON.stringify({ entries })`, from the entries' kept texts. */
  acceptBody(entries: readonly WireEntry[]): string {
    if (entries.length === 1) return `{"entries":[${this.textOf(entries[0]!)}]}`;
    let body = '{"entries":[';
    for (let i = 0; i < entries.length; i++) {
      body += (i === 0 ? "" : ",") + this.textOf(entries[i]!);
    }
    return body + "]}";
  }
}
