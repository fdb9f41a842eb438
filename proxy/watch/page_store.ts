/**
 * A node buffer's changes (proxy/watch/shared_feed.ts) kept as the UTF-8 of the pages they came
 * in: one byte array per poll, its bytes outside the JS heap, instead of an object and five
 * strings per change. The buffer holds a node's last 20,000 changes (at most 16 MiB of text) for
 * seconds, so every change it held as objects outlived two scavenges, was copied twice and
 * promoted (the proxy's GC pauses under the watch load: docs/performance.md; as text, the bytes
 * were still promoted).
 * The newest pages keep their parsed changes too, since the streams read them within a poll or
 * two; an older page is decoded and parsed again when a read reaches it, unless its text shows
 * that no key of it has the read's prefix (or, for a question about a few keys, none of them).
 * The last few pages parsed again are kept, shared by every read of the buffer: streams behind
 * the live pages (a resumed cursor, several prefixes lagging together) parse each page once.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { PageStore } from "./page_store.ts";
 * const store = new PageStore();
 * const changes = [{ s: 1, k: "a", ver: "v1", prev: null, v: null }];
 * store.push(changes, JSON.stringify({ changes }));
 * const seen: string[] = [];
 * store.scan(0, (c) => void seen.push(c.k));
 * assertEquals([store.first, store.size, seen], [1, 1, ["a"]]);
 * ```
 */
import type { WireChange } from "../../node/http/change_routes.ts";

/** Pages, newest last, whose parsed changes are kept: about what streams read (polls ~16 ms apart). */
export const LIVE_PAGES = 4;

/**
 * Older pages whose changes a read parsed again, kept for the reads after it (the streams
 * behind the live pages read the same pages in turn). Few: under the bench's watch load at most
 * ~0.1 of the changes polled are parsed again (docs/performance.md), so these rarely outlive a
 * scavenge.
 */
export const REPARSED_PAGES = 4;

/** Keys up to which a question about keys looks for each one's text before it parses a page. */
const KEY_NEEDLES_MAX = 8;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

interface Page {
  /** Sequence of the page's first change; the others follow it one by one. */
  from: number;
  n: number;
  /** The node's answer as it came (JSON.stringify's text, as UTF-8), with a `changes` array. */
  bytes: Uint8Array;
  /**
   * The parsed changes, while the page is one of the newest {@link LIVE_PAGES} or of the last
   * {@link REPARSED_PAGES} parsed again.
   */
  live: WireChange[] | undefined;
  /** Whether each change's key is in the text as JSON.stringify spells it: then a prefix may skip it. */
  searchable: boolean;
}

/** A node log's recent changes, in order, as the text of their pages. */
export class PageStore {
  #pages: Page[] = [];
  #size = 0;
  #bytes = 0;
  /** The pages parsed again whose changes are kept, oldest first (at most {@link REPARSED_PAGES}). */
  #reparsed: Page[] = [];
  #parses = 0;

  /** Pages parsed again from their bytes so far (tests, tasks/bench/lagging_reads.ts). */
  get parses(): number {
    return this.#parses;
  }

  /** Changes held. */
  get size(): number {
    return this.#size;
  }

  /**
   * Bytes of page text held. The parsed changes kept ({@link LIVE_PAGES}, {@link REPARSED_PAGES})
   * are of pages held, so they take about as much again at most.
   */
  get bytes(): number {
    return this.#bytes;
  }

  /** Sequence of the oldest change held (undefined: none). */
  get first(): number | undefined {
    return this.#pages[0]?.from;
  }

  /** Sequence of the newest change held (undefined: none). */
  get newest(): number | undefined {
    const last = this.#pages.at(-1);
    return last === undefined ? undefined : last.from + last.n - 1;
  }

  /** Forgets every change. */
  clear(): void {
    this.#pages = [];
    this.#reparsed = [];
    this.#size = 0;
    this.#bytes = 0;
  }

  /**
   * Appends a page's `changes` (consecutive sequences, after those held), with `text`: JSON
   * whose `changes` are the same changes (the node's answer).
   */
  push(changes: WireChange[], text: string): void {
    if (changes.length === 0) return;
    const bytes = encoder.encode(text);
    const searchable = keysSpelled(changes, text);
    this.#pages.push({ from: changes[0]!.s, n: changes.length, bytes, live: changes, searchable });
    this.#size += changes.length;
    this.#bytes += bytes.length;
    const old = this.#pages.length - 1 - LIVE_PAGES;
    if (old >= 0) this.#pages[old]!.live = undefined;
  }

  /**
   * Drops the oldest pages while more than `keep` changes would remain without them, or while
   * more than `maxBytes` of text are held (the newest page too: the bound is hard).
   */
  trim(keep: number, maxBytes = Infinity): void {
    let drop = 0;
    for (; drop < this.#pages.length; drop++) {
      const page = this.#pages[drop]!;
      if (this.#size - page.n < keep && this.#bytes <= maxBytes) break;
      this.#size -= page.n;
      this.#bytes -= page.bytes.length;
    }
    if (drop === 0) return;
    const first = this.#pages[drop]?.from ?? Infinity;
    this.#reparsed = this.#reparsed.filter((page) => page.from >= first);
    this.#pages = this.#pages.slice(drop);
  }

  /**
   * Calls `visit` with each change after sequence `after`, oldest first, until it returns
   * true; newest first with `backwards` (then from the newest down to `after + 1`). With
   * `prefix`, the changes of pages with no key under it may be left out; with `keys`, those of
   * pages with none of these keys (the others are all visited: the caller still filters).
   */
  scan(
    after: number,
    visit: (c: WireChange) => boolean | void,
    { backwards = false, prefix = "", keys }: ScanOptions = {},
  ): void {
    const pages = this.#pages;
    let p = pages.length - 1;
    if (p < 0) return;
    // Readers are near the head: the page holding after + 1 is found from the end.
    while (p > 0 && pages[p]!.from > after + 1) p--;
    const needles = keys !== undefined ? keyNeedles(keys) : [keyNeedle(prefix)].filter(Boolean);
    if (backwards) {
      for (let q = pages.length - 1; q >= p; q--) {
        const changes = this.#changesOf(pages[q]!, needles);
        for (let i = changes.length - 1; i >= 0 && changes[i]!.s > after; i--) {
          if (visit(changes[i]!) === true) return;
        }
      }
      return;
    }
    for (; p < pages.length; p++) {
      const page = pages[p]!;
      const changes = this.#changesOf(page, needles);
      for (let i = Math.max(0, after + 1 - page.from); i < changes.length; i++) {
        if (visit(changes[i]!) === true) return;
      }
    }
  }

  /**
   * A page's changes: kept, or parsed from its bytes and kept among the last
   * {@link REPARSED_PAGES}; none when the page is searchable and holds none of `needles` (no
   * needles: every page is read).
   */
  #changesOf(page: Page, needles: readonly string[]): WireChange[] {
    if (page.live !== undefined) return page.live;
    const text = decoder.decode(page.bytes);
    // An idle prefix's read scans seconds of pages: parsed only where one of its keys may be.
    if (page.searchable && needles.length > 0 && !needles.some((n) => text.includes(n))) {
      return [];
    }
    this.#parses++;
    page.live = (JSON.parse(text) as { changes: WireChange[] }).changes;
    this.#reparsed.push(page);
    // A page parsed again is older than the live ones: dropping its changes leaves those alone.
    if (this.#reparsed.length > REPARSED_PAGES) this.#reparsed.shift()!.live = undefined;
    return page.live;
  }
}

/** What {@link PageStore.scan} may leave out. */
export interface ScanOptions {
  /** Newest first. */
  backwards?: boolean;
  /** Only changes whose key starts with it are wanted. */
  prefix?: string;
  /** Only changes of these keys are wanted. */
  keys?: ReadonlySet<string>;
}

/**
 * The text of a change of each key (JSON.stringify's, closing quote included: no longer key
 * matches), or no needle (read every page) for many keys or an ill-formed one.
 */
function keyNeedles(keys: ReadonlySet<string>): string[] {
  if (keys.size === 0 || keys.size > KEY_NEEDLES_MAX) return [];
  const needles: string[] = [];
  for (const k of keys) {
    if (!k.isWellFormed()) return [];
    needles.push(keyText(k));
  }
  return needles;
}

/**
 * Whether `text` holds each change's key, in order, as `"k":` and JSON.stringify's spelling: the
 * needle's premise. A node that spelled its JSON otherwise (spaces, \u escapes) would otherwise
 * have its changes skipped by prefix reads without a word; its pages are parsed instead.
 */
function keysSpelled(changes: WireChange[], text: string): boolean {
  let at = 0;
  for (const c of changes) {
    at = text.indexOf(keyText(c.k), at);
    if (at < 0) return false;
    at++;
  }
  return true;
}

/**
 * What the text of a change whose key starts with `prefix` contains ("": no such text, read
 * every page): JSON.stringify escapes a well-formed string one character at a time, so the
 * key's JSON starts with the prefix's, and `"k":"` cannot occur inside a JSON string (its
 * quotes are escaped there). A prefix ending in half a surrogate pair is escaped where the
 * key's pair is not: no needle then.
 */
export function keyNeedle(prefix: string): string {
  if (prefix === "" || !prefix.isWellFormed()) return "";
  return keyText(prefix).slice(0, -1);
}

/** A change's key as its JSON text spells it: `"k":` and the key's JSON string. */
function keyText(key: string): string {
  return `"k":${JSON.stringify(key)}`;
}
