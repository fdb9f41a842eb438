/**
 * The watch cursor (SSE `id:`, sent back as `Last-Event-ID`): opaque base64url of JSON
 * `{"e": epoch, "h": phase, "r": [ring's node ids], "n": {node: [boot, low, read]}, "p": {key:
 * lastVersionOut}, "x": [lost nodes]}`, the state a resumed watch needs
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
import type { NodePos } from "./watch_merge.ts";
import type { MapPhase } from "./ring_move.ts";

/** Longest cursor, in characters (it travels in a header). */
export const MAX_CURSOR_CHARS = 4096;

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

const encoder = new TextEncoder();

const NON_ASCII = /[\u0080-\uffff]/;

/** The cursor's text, or undefined when it would be longer than {@link MAX_CURSOR_CHARS}. */
export function encodeWatchCursor(c: WatchCursor): string | undefined {
  const json = cursorJson(c);
  // ASCII JSON is its own UTF-8: btoa skips the encoder's copy (a few µs per event).
  const text = NON_ASCII.test(json)
    ? encoder.encode(json).toBase64({ alphabet: "base64url", omitPadding: true })
    : btoa(json).replace(/=+$/, "").replaceAll("+", "-").replaceAll("/", "_");
  return text.length > MAX_CURSOR_CHARS ? undefined : text;
}

/**
 * The cursor's JSON, the text `JSON.stringify` gives for `{e, h, r, n, p, x}` with `n`'s
 * positions as `[boot, low, read]`, written without those intermediate objects: every event
 * has a cursor.
 */
export function cursorJson(c: WatchCursor): string {
  let json = `{"e":${c.epoch}`;
  if (c.phase !== undefined) json += `,"h":"${c.phase}"`;
  if (c.ring !== undefined) json += `,"r":${JSON.stringify(c.ring)}`;
  json += `,"n":{`;
  let comma = "";
  for (const id of Object.keys(c.nodes)) {
    const p = c.nodes[id]!;
    json += `${comma}${JSON.stringify(id)}:[${JSON.stringify(p.boot)},${p.low},${p.read}]`;
    comma = ",";
  }
  json += `},"p":{`;
  comma = "";
  for (const [key, v] of c.pending) {
    json += `${comma}${JSON.stringify(key)}:${v === null ? "null" : JSON.stringify(v)}`;
    comma = ",";
  }
  return `${json}},"x":${JSON.stringify(c.lost)}}`;
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
