/**
 * Versions are hybrid logical clock stamps: wall-clock milliseconds, a counter for
 * writes in the same millisecond, and the writer's id as the tie-break. They are
 * fixed-width strings, so plain string comparison orders them.
 *
 * Format: 12 hex digits of milliseconds, `-`, 4 hex digits of counter, `-`, writer id.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { HybridClock, compareVersions } from "./version.ts";
 * const clock = new HybridClock("n1", () => 1_700_000_000_000);
 * const a = clock.next();
 * const b = clock.next();
 * assert(compareVersions(a, b) < 0);
 * ```
 */

/** A version stamp; compare with {@link compareVersions} (or `<`). */
export type Version = string;

const WALL_DIGITS = 12;
const COUNTER_DIGITS = 4;
const MAX_COUNTER = 0xffff;
const WRITER_ID = /^[A-Za-z0-9_]{1,32}$/;
const VERSION = /^[0-9a-f]{12}-[0-9a-f]{4}-[A-Za-z0-9_]{1,32}$/;

/** Orders two versions: negative when `a` is older, 0 when equal, positive when newer. */
export function compareVersions(a: Version, b: Version): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Whether a string is a well-formed version stamp. */
export function isVersion(text: string): boolean {
  return VERSION.test(text);
}

/** Whether a string can be a writer id (node or proxy id). */
export function isWriterId(text: string): boolean {
  return WRITER_ID.test(text);
}

/** Formats a version from its parts. */
export function formatVersion(wall: number, counter: number, writer: string): Version {
  return `${wall.toString(16).padStart(WALL_DIGITS, "0")}-${
    counter.toString(16).padStart(COUNTER_DIGITS, "0")
  }-${writer}`;
}

/** Splits a version into wall milliseconds and counter. */
export function parseVersion(version: Version): { wall: number; counter: number; writer: string } {
  return {
    wall: parseInt(version.slice(0, WALL_DIGITS), 16),
    counter: parseInt(version.slice(WALL_DIGITS + 1, WALL_DIGITS + 1 + COUNTER_DIGITS), 16),
    writer: version.slice(WALL_DIGITS + COUNTER_DIGITS + 2),
  };
}

/** A hybrid logical clock that hands out strictly increasing versions for one writer. */
export class HybridClock {
  #wall = 0;
  #counter = 0;

  /** `now` is injected so tests can drive the clock. */
  constructor(readonly writer: string, private readonly now: () => number = Date.now) {
    if (!isWriterId(writer)) {
      throw new Error(`Cannot create a clock for writer "${writer}": ids are 1-32 of [A-Za-z0-9_]`);
    }
  }

  /** Moves the clock past a version seen elsewhere, so the next stamp is newer than it. */
  observe(seen: Version): void {
    const { wall, counter } = parseVersion(seen);
    if (wall > this.#wall || (wall === this.#wall && counter > this.#counter)) {
      this.#wall = wall;
      this.#counter = counter;
    }
  }

  /** A new version, newer than every one this clock handed out or observed. */
  next(): Version {
    const now = this.now();
    if (now > this.#wall) {
      this.#wall = now;
      this.#counter = 0;
    } else if (this.#counter < MAX_COUNTER) {
      this.#counter++;
    } else {
      this.#wall++;
      this.#counter = 0;
    }
    return formatVersion(this.#wall, this.#counter, this.writer);
  }

  /** A new version newer than `floor` (and than everything before). */
  nextAfter(floor: Version | undefined): Version {
    if (floor !== undefined) this.observe(floor);
    return this.next();
  }
}

/** A random proxy id: `p` and 12 hex digits (13 characters, which proxy/replication/own_ballots.ts relies on). */
export function randomProxyId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return "p" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
