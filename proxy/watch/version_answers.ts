/**
 * The versions nodes answered about keys at positions of their logs, remembered for the other
 * streams that ask the same (proxy/watch/shared_feed.ts): the answer for a node's log, position
 * and key never changes. Bounded by positions and by bytes.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { VersionAnswers } from "./version_answers.ts";
 * const answers = new VersionAnswers();
 * answers.remember("n1 b 7", new Map([["users/1", "v1"]]));
 * assertEquals(answers.get("n1 b 7")?.get("users/1"), "v1");
 * answers.forget("n1");
 * assertEquals([answers.get("n1 b 7"), answers.bytes], [undefined, 0]);
 * ```
 */

/**
 * Positions remembered: those of the streams reading in step (a few polls of each node). More
 * outlived the young generation: promoted garbage per page.
 */
export const KEEP_POSITIONS = 64;

/**
 * Bytes the answers may take at most, counted as 2 per character of keys and versions and 64
 * per key (the Map's entry): keys of up to 1 KiB would otherwise make 64 positions' answers tens
 * of MiB. The bench's 64 positions of ~25 short keys take ~0.2 MB.
 */
export const KEEP_ANSWER_BYTES = 4 << 20;

/** Each position's answers (key: `<node id> <boot> <position>`), oldest first out. */
export class VersionAnswers {
  readonly #held = new Map<string, { answers: Map<string, string | null>; bytes: number }>();
  #bytes = 0;

  constructor(readonly maxBytes = KEEP_ANSWER_BYTES) {}

  /** Bytes held, as {@link KEEP_ANSWER_BYTES} counts them. */
  get bytes(): number {
    return this.#bytes;
  }

  /** The answers remembered at `id`; the caller may add to it, then {@link remember} it again. */
  get(id: string): Map<string, string | null> | undefined {
    return this.#held.get(id)?.answers;
  }

  /** Keeps `answers` as the newest; drops the oldest while over a bound (these too if alone). */
  remember(id: string, answers: Map<string, string | null>): void {
    this.#drop(id);
    let bytes = 0;
    for (const [k, v] of answers) bytes += 64 + 2 * (k.length + (v?.length ?? 0));
    this.#held.set(id, { answers, bytes });
    this.#bytes += bytes;
    while (this.#held.size > KEEP_POSITIONS || this.#bytes > this.maxBytes) {
      this.#drop(this.#held.keys().next().value!);
    }
  }

  /** Forgets the answers about node `node`'s log (no stream reads it any more). */
  forget(node: string): void {
    // Deleting the entry being visited is safe in a Map's iteration.
    for (const id of this.#held.keys()) if (id.startsWith(`${node} `)) this.#drop(id);
  }

  #drop(id: string): void {
    this.#bytes -= this.#held.get(id)?.bytes ?? 0;
    this.#held.delete(id);
  }
}
