/**
 * Watch streams for the bench's watch case: each reads its `GET /watch` stream to the end
 * and counts the change events in it (an event is the one frame with an `id:` line), so the
 * bench can say what the watchers really received while wrk measured.
 *
 * @module
 */

/** `\nid: `: the start of a change event's frame (comments and other events have no id). */
const EVENT_MARK = new TextEncoder().encode("\nid: ");

/**
 * Counts event frames in a stream's chunks; a mark split between two chunks is counted
 * once. Pure.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { EventCounter } from "./watchers.ts";
 * const counter = new EventCounter();
 * const bytes = new TextEncoder().encode(": hi\n\nid: a\ndata: {}\n\nid: b\ndata: {}\n\n");
 * counter.add(bytes.subarray(0, 14));
 * counter.add(bytes.subarray(14));
 * assertEquals(counter.events, 2);
 * ```
 */
export class EventCounter {
  /** Events counted so far. */
  events = 0;
  /** Bytes read so far. */
  bytes = 0;
  /** The last bytes of the previous chunk (a mark may start there). */
  #tail = new Uint8Array(0);

  /** Counts the marks that end in `chunk`. */
  add(chunk: Uint8Array): void {
    this.bytes += chunk.length;
    const joined = new Uint8Array(this.#tail.length + chunk.length);
    joined.set(this.#tail);
    joined.set(chunk, this.#tail.length);
    const n = EVENT_MARK.length;
    for (let i = joined.indexOf(10); i !== -1; i = joined.indexOf(10, i + 1)) {
      if (i + n > joined.length) break;
      let match = true;
      for (let j = 1; j < n && match; j++) match = joined[i + j] === EVENT_MARK[j];
      // A mark wholly inside the tail was counted with the previous chunk.
      if (match && i + n > this.#tail.length) this.events++;
    }
    this.#tail = joined.slice(Math.max(0, joined.length - (n - 1)));
  }
}

/** Watch streams open on one proxy, counting what they read. */
export class Watchers {
  readonly #stop = new AbortController();
  readonly #readers: Promise<void>[] = [];
  readonly #bodies: ReadableStreamDefaultReader<Uint8Array>[] = [];
  readonly #counters: EventCounter[] = [];

  private constructor(readonly prefixes: readonly string[]) {}

  /**
   * Opens one stream per prefix on `url`; resolves once every one answered 200 (throws
   * when one did not, after closing those that opened).
   */
  static async open(url: string, prefixes: readonly string[]): Promise<Watchers> {
    const w = new Watchers(prefixes);
    try {
      const answers = await Promise.all(
        prefixes.map((p) =>
          fetch(`${url}/watch?prefix=${encodeURIComponent(p)}`, {
            headers: { accept: "text/event-stream" },
            signal: w.#stop.signal,
          })
        ),
      );
      for (const res of answers) w.#read(res);
      for (const res of answers) {
        if (res.status !== 200) {
          throw new Error(`Cannot watch ${url}: status ${res.status} ${await res.text()}`);
        }
      }
    } catch (err) {
      await w.close();
      throw err;
    }
    return w;
  }

  /** Events each stream has read so far, in the order of the prefixes. */
  counts(): number[] {
    return this.#counters.map((c) => c.events);
  }

  /** Bytes each stream has read so far, in the order of the prefixes. */
  bytes(): number[] {
    return this.#counters.map((c) => c.bytes);
  }

  /** Closes every stream and waits until its reader ended. */
  async close(): Promise<void> {
    this.#stop.abort();
    // An abort after the headers does not end a pending read of the body here: cancel it.
    await Promise.all(this.#bodies.map((r) => r.cancel().catch(expectedEnd)));
    await Promise.all(this.#readers);
  }

  #read(res: Response): void {
    const counter = new EventCounter();
    this.#counters.push(counter);
    if (res.status !== 200 || res.body === null) return;
    const reader = res.body.getReader();
    this.#bodies.push(reader);
    this.#readers.push((async () => {
      try {
        // Bounded by the stream: it ends when close() aborts the fetch.
        for (;;) {
          const { value, done } = await reader.read();
          if (done) return;
          counter.add(value);
        }
      } catch (err) {
        expectedEnd(err);
      }
    })());
  }
}

/** Swallows how a closed stream ends (an abort, a reset connection); rethrows anything else. */
function expectedEnd(err: unknown): void {
  if (!(err instanceof DOMException || err instanceof TypeError)) throw err;
}
