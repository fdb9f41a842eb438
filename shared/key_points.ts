/**
 * A bounded memo of recent keys' ring points for the proxy's hot path: a hit is a plain
 * number (no await, no digest), a miss hashes once however many requests ask for it.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { KeyPoints } from "./key_points.ts";
 * import { hashKey } from "./ring.ts";
 *
 * const keyPoints = new KeyPoints({ capacity: 10_000 });
 * const miss = keyPoints.pointOf("users/42"); // not remembered yet: a promise
 * assertEquals(await miss, await hashKey("users/42"));
 * assertEquals(keyPoints.pointOf("users/42"), await miss); // remembered: a plain number
 * ```
 */
import { RingkvError } from "./errors.ts";
import { hashKey, type Point } from "./ring.ts";

/** How a {@link KeyPoints} is set up; both fields are optional. */
export interface KeyPointsOptions {
  /** Most keys remembered; the oldest inserted is forgotten first. Default 100,000. */
  capacity?: number;
  /**
   * Most characters of keys remembered in all (default {@link DEFAULT_KEY_POINTS_CHARS}): a
   * count alone let 1,000,000 keys of 1 KiB hold ~1.7 GB (security review).
   */
  maxChars?: number;
  /** Key to point; default {@link hashKey}. Tests inject a counting one. */
  hash?: (key: string) => Promise<Point>;
}

/** Default of {@link KeyPointsOptions.maxChars}: 32 Mi characters (32-64 MiB of strings). */
export const DEFAULT_KEY_POINTS_CHARS = 32 * 1024 * 1024;

/** Default number of keys a {@link KeyPoints} remembers. */
export const DEFAULT_KEY_POINTS_CAPACITY = 100_000;

/** Remembers the ring points of up to `capacity` recent keys. */
export class KeyPoints {
  readonly #capacity: number;
  readonly #maxChars: number;
  #chars = 0;
  readonly #hash: (key: string) => Promise<Point>;
  readonly #known = new Map<string, Point>();
  readonly #pending = new Map<string, Promise<Point>>();

  /** Creates an empty memo; throws if `capacity` is not an integer >= 1. */
  constructor(options: KeyPointsOptions = {}) {
    const capacity = options.capacity ?? DEFAULT_KEY_POINTS_CAPACITY;
    if (!Number.isInteger(capacity) || capacity < 1) {
      throw new RingkvError(
        "bad_request",
        `Cannot create KeyPoints: capacity is ${capacity}, not an integer >= 1`,
      );
    }
    this.#capacity = capacity;
    this.#maxChars = options.maxChars ?? DEFAULT_KEY_POINTS_CHARS;
    this.#hash = options.hash ?? hashKey;
  }

  /** Number of keys remembered now. */
  get size(): number {
    return this.#known.size;
  }

  /** The key's point: a number when remembered, else a promise (shared by concurrent misses). */
  pointOf(key: string): Point | Promise<Point> {
    const known = this.#known.get(key);
    if (known !== undefined) return known;
    return this.#pending.get(key) ?? this.#miss(key);
  }

  /** The points of many keys, in order; the misses are hashed concurrently. */
  pointsOf(keys: readonly string[]): Promise<Point[]> {
    return Promise.all(keys.map((key) => this.pointOf(key)));
  }

  #miss(key: string): Promise<Point> {
    const promise = this.#hash(key).then(
      (point) => {
        this.#pending.delete(key);
        this.#remember(key, point);
        return point;
      },
      (err: unknown) => {
        this.#pending.delete(key);
        throw err;
      },
    );
    this.#pending.set(key, promise);
    return promise;
  }

  #remember(key: string, point: Point): void {
    // Insertion order, not recency: a hit then costs one Map lookup and no re-insert.
    if (key.length > this.#maxChars) return;
    while (
      this.#known.size > 0 &&
      (this.#known.size >= this.#capacity || this.#chars + key.length > this.#maxChars)
    ) {
      const oldest = this.#known.keys().next().value!;
      this.#known.delete(oldest);
      this.#chars -= oldest.length;
    }
    this.#known.set(key, point);
    this.#chars += key.length;
  }
}
