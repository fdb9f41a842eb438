/**
 * The `data:` text of recent watch events, shared by every stream of the watch route
 * (proxy/http/watch_route.ts): busy watchers of one prefix get the same events, and a key's value
 * at a version never changes, so each event's value is decoded and its JSON written once, not
 * once per stream. Bounded by count and by bytes; emptied when the last stream leaves.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { EventTexts } from "./event_texts.ts";
 * const texts = new EventTexts((e) => JSON.stringify(e));
 * const e = { key: "a", version: "v1", value: null };
 * assertEquals(texts.of(e), '{"key":"a","version":"v1","value":null}');
 * assertEquals(texts.size, 1);
 * ```
 */
import type { WatchEvent } from "../watch/watch_merge.ts";

/**
 * Texts remembered (oldest first out): those of the groups and streams reading in step. More
 * lived long enough to be promoted, one text per write (a group writes its event's text once
 * anyway).
 */
export const EVENT_TEXTS_KEEP = 512;

/**
 * Bytes of texts remembered at most, counted as 2 per character (a string with a character past
 * U+00FF takes 2): a 1 MiB value of control characters is ~6 MiB of JSON, 512 of them 3 GiB.
 * The bench's 512 texts of ~200 characters take ~0.2 MB.
 */
export const EVENT_TEXTS_BYTES = 8 << 20;

/** A text longer than this, in bytes as counted above, is written again for each stream instead. */
export const EVENT_TEXT_MAX_BYTES = 128 << 10;

/** The recent events' texts, written by `write` (the route's `eventJson`). */
export class EventTexts {
  readonly #texts = new Map<string, string>();
  #bytes = 0;

  constructor(private readonly write: (e: WatchEvent) => string) {}

  /** Bytes of the texts held, 2 per character. */
  get bytes(): number {
    return this.#bytes;
  }

  /** Texts held. */
  get size(): number {
    return this.#texts.size;
  }

  /** The event's text, remembered unless it is long. */
  of(e: WatchEvent): string {
    // A version names one write of the key, and a write has one value and type.
    const id = `${e.version}\n${e.key}`;
    let text = this.#texts.get(id);
    if (text !== undefined) return text;
    text = this.write(e);
    const bytes = 2 * (text.length + id.length);
    if (bytes > EVENT_TEXT_MAX_BYTES) return text;
    while (
      this.#texts.size >= EVENT_TEXTS_KEEP || this.#bytes + bytes > EVENT_TEXTS_BYTES
    ) {
      const [oldId, old] = this.#texts.entries().next().value!;
      this.#texts.delete(oldId);
      this.#bytes -= 2 * (old.length + oldId.length);
    }
    this.#texts.set(id, text);
    this.#bytes += bytes;
    return text;
  }

  /** Forgets every text (no stream is open). */
  clear(): void {
    this.#texts.clear();
    this.#bytes = 0;
  }
}
