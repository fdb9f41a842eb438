/**
 * A watch cursor's text (proxy/watch/watch_cursor.ts) built from pieces whose base64 is kept:
 * every event has a cursor, and between two events only the nodes' positions and a few of the
 * keys waiting for a majority change. The JSON is cut into pieces of whole 3-byte groups
 * (padded with spaces, which JSON ignores), so the base64 of the whole is the base64 of the
 * pieces joined: the map's part (epoch, phase, ring, lost nodes) and each waiting key's entry
 * are encoded once, only the positions per event. The text decodes to the same JSON value as
 * a cursor written in one piece, so older and newer proxies read each other's cursors. Pure.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { CursorText } from "./cursor_text.ts";
 * import { decodeWatchCursor } from "./watch_cursor.ts";
 * const texts = new CursorText();
 * const nodes = { n1: { boot: "b", low: 4, read: 9 } };
 * const text = texts.encode({ epoch: 3, nodes, pending: new Map([["k", null]]), lost: [] });
 * assertEquals(decodeWatchCursor(text!).pending.get("k"), null);
 * ```
 */
import type { WatchCursor } from "./watch_cursor.ts";

/** Longest cursor, in characters (it travels in a header). */
export const MAX_CURSOR_CHARS = 4096;

/**
 * Entries kept past which the cache starts again: a few cursors' worth (one holds ~90-200
 * keys), since every merge has its own cache and keys may be 1 KiB (~2.7 KiB per entry).
 */
export const KEEP_ENTRIES = 512;

const encoder = new TextEncoder();
const NON_ASCII = /[\u0080-\uffff]/;
const SPACES = ["", "  ", " "];

/** A waiting key's entry: its version and the base64 of `,"key":version` (and ` "key":…`). */
interface Entry {
  version: string | null;
  comma: string;
  first: string | undefined;
}

/** Writes cursors' text, keeping the base64 of the parts that repeat between events. */
export class CursorText {
  #mapJson = "";
  #mapText = "";
  readonly #entries = new Map<string, Entry>();

  /** How many waiting keys' pieces are cached (at most {@link KEEP_ENTRIES}). */
  get cachedEntries(): number {
    return this.#entries.size;
  }

  /**
   * The cursor's text (base64url of its JSON), or undefined when it would be longer than
   * {@link MAX_CURSOR_CHARS}. `key`/`version`, when given, stand in for that key's pending
   * version (an earlier event of a batch: its later versions are still pending).
   */
  encode(c: WatchCursor, key?: string, version?: string | null): string | undefined {
    let text = this.#map(c);
    let nodes = `"n":{`;
    let comma = "";
    for (const id of Object.keys(c.nodes)) {
      const p = c.nodes[id]!;
      nodes += `${comma}${JSON.stringify(id)}:[${JSON.stringify(p.boot)},${p.low},${p.read}]`;
      comma = ",";
    }
    text += aligned(`${nodes}},"p":{`);
    let first = true;
    for (const [k, v] of c.pending) {
      text += this.#entry(k, k === key ? version! : v, first);
      first = false;
      if (text.length > MAX_CURSOR_CHARS) return undefined;
    }
    if (key !== undefined && !c.pending.has(key)) text += this.#entry(key, version!, first);
    text += "fX0"; // "}}"
    return text.length > MAX_CURSOR_CHARS ? undefined : text;
  }

  /** The aligned base64 of `{"e", "h", "r", "x",`: the same for every event of a map. */
  #map(c: WatchCursor): string {
    let json = `{"e":${c.epoch}`;
    if (c.phase !== undefined) json += `,"h":"${c.phase}"`;
    if (c.ring !== undefined) json += `,"r":${JSON.stringify(c.ring)}`;
    json += `,"x":${JSON.stringify(c.lost)},`;
    if (json !== this.#mapJson) {
      this.#mapJson = json;
      this.#mapText = aligned(json);
    }
    return this.#mapText;
  }

  /** The aligned base64 of a pending key's entry (`first`: no comma before it). */
  #entry(key: string, version: string | null, first: boolean): string {
    let e = this.#entries.get(key);
    if (e === undefined || e.version !== version) {
      if (this.#entries.size >= KEEP_ENTRIES) this.#entries.clear();
      e = { version, comma: aligned(`,${entryJson(key, version)}`), first: undefined };
      this.#entries.set(key, e);
    }
    if (!first) return e.comma;
    return e.first ??= aligned(` ${entryJson(key, version)}`);
  }
}

function entryJson(key: string, version: string | null): string {
  return `${JSON.stringify(key)}:${version === null ? "null" : JSON.stringify(version)}`;
}

/**
 * The base64url of `json`'s UTF-8 padded with spaces to whole 3-byte groups: no `=`, so the
 * base64 of pieces joined is that of their text joined.
 */
export function aligned(json: string): string {
  if (NON_ASCII.test(json)) {
    const bytes = encoder.encode(json);
    const padded = new Uint8Array(bytes.length + (3 - bytes.length % 3) % 3).fill(0x20);
    padded.set(bytes);
    return padded.toBase64({ alphabet: "base64url" });
  }
  // ASCII is its own UTF-8: btoa skips the encoder's copy.
  return btoa(json + SPACES[json.length % 3]).replaceAll("+", "-").replaceAll("/", "_");
}
