/**
 * The watch cursor (SSE `id:`, sent back as `Last-Event-ID`): opaque base64url of JSON
 * `{"e": epoch, "h": phase, "r": [ring's node ids], "n": {node: [boot, low, read]}, "p": {key:
 * lastVersionOut}, "x": [lost nodes]}` (members in any order, with spaces between them: its
 * pieces are encoded apart, proxy/watch/cursor_text.ts), the state a resumed watch needs
 * (proxy/watch/watch_merge.ts); `r` (the nodes the majorities were counted on) and `h` (the
 * map's rebalancing phase) let a cursor resume under a later cluster map
 * (proxy/watch/ring_move.ts). Pure.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { decodeWatchCursor, encodeWatchCursor } from "./watch_cursor.ts";
 * const text = encodeWatchCursor({ epoch: 3, nodes: { n1: { boot: "b", low: 4, read: 9 } }, pending: new Map(), lost: [] });
 * assert(decodeWatchCursor(text!).nodes.n1!.read === 9);
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import { CursorText } from "./cursor_text.ts";
import type { NodePos } from "./watch_merge.ts";
import type { MapPhase } from "./ring_move.ts";

export { MAX_CURSOR_CHARS } from "./cursor_text.ts";

/** What a cursor holds. */
export interface WatchCursor {
  epoch: number;
  nodes: Record<string, NodePos>;
  /** Keys with versions not yet out, with their last event's version (`p` in the text). */
  pending: ReadonlyMap<string, string | null>;
  /** Nodes that lost changes the watch had not read. */
  lost: string[];
  /** The ids of the ring the majorities were counted on (absent in cursors of older proxies). */
  ring?: readonly string[];
  /** The phase of the cursor's map (absent in cursors of older proxies). */
  phase?: MapPhase;
}

const PHASES: readonly unknown[] = ["stable", "copying", "cleanup"] satisfies MapPhase[];

/**
 * The cursor's text, or undefined when it would be longer than {@link MAX_CURSOR_CHARS}; a
 * stream keeps a {@link CursorText} instead, which remembers the pieces between events.
 */
export function encodeWatchCursor(c: WatchCursor): string | undefined {
  return new CursorText().encode(c);
}

/** The cursor of a `Last-Event-ID`; 400 `invalid_cursor` when it is not one of ours. */
export function decodeWatchCursor(text: string): WatchCursor {
  try {
    const json = new TextDecoder("utf-8", { fatal: true })
      .decode(Uint8Array.fromBase64(text, { alphabet: "base64url" }));
    const raw = JSON.parse(json);
    const nodes: Record<string, NodePos> = {};
    for (const [id, p] of Object.entries(raw.n as Record<string, unknown>)) {
      const [boot, low, read] = p as unknown[];
      if (typeof boot !== "string" || !isPos(low) || !isPos(read)) throw new TypeError("bad node");
      nodes[id] = { boot, low, read };
    }
    const p = raw.p as Record<string, string | null>;
    if (!Number.isSafeInteger(raw.e) || typeof p !== "object" || p === null) {
      throw new TypeError("bad cursor");
    }
    const pending = new Map(Object.entries(p));
    for (const v of pending.values()) {
      if (v !== null && typeof v !== "string") throw new TypeError("bad version");
    }
    const lost = raw.x ?? [];
    if (!Array.isArray(lost) || !lost.every((id) => typeof id === "string")) {
      throw new TypeError("bad lost nodes");
    }
    const ring = raw.r;
    if (
      ring !== undefined && !(Array.isArray(ring) && ring.every((id) => typeof id === "string"))
    ) {
      throw new TypeError("bad ring");
    }
    if (raw.h !== undefined && !PHASES.includes(raw.h)) throw new TypeError("bad phase");
    return {
      epoch: raw.e,
      nodes,
      pending,
      lost,
      ...(ring === undefined ? {} : { ring }),
      ...(raw.h === undefined ? {} : { phase: raw.h as MapPhase }),
    };
  } catch (err) {
    if (!(err instanceof SyntaxError || err instanceof TypeError)) throw err;
    throw new RingkvError(
      "invalid_cursor",
      `Cannot resume the watch: Last-Event-ID "${text.slice(0, 100)}" is not one this API sent`,
    );
  }
}

function isPos(n: unknown): n is number {
  return Number.isSafeInteger(n) && (n as number) >= 0;
}
