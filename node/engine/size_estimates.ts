/**
 * About the bytes data takes in a snapshot, for the room kept for the next one
 * (snapshot_room.ts): the store's size, and what a write or a copy adds. Rough on purpose:
 * the last snapshot's measure scales the store's (snapshot_writer.ts). Pure: no disk, no clock.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { ENTRY_JSON_BYTES, writeBytes } from "./size_estimates.ts";
 * const value = new TextEncoder().encode("hello");
 * const put = { op: "put" as const, key: "k", value, contentType: "text/plain" };
 * assertEquals(writeBytes([put]), ENTRY_JSON_BYTES + 6);
 * ```
 */
import type { WireEntry } from "../../shared/wire.ts";
import type { WriteOp } from "./engine.ts";
import type { Stored } from "./packed.ts";
import type { Store } from "./store.ts";

/** A snapshot line's bytes besides its key and value, about (`h`, `ver`, `t`, punctuation). */
export const ENTRY_JSON_BYTES = 100;

/** The store's size as a snapshot would write it, roughly (scaled by the last snapshot's). */
export function storeEstimate(
  counts: { keys: number; tombstones: number; valueBytes: number },
): number {
  const { keys, tombstones, valueBytes } = counts;
  return valueBytes + (keys + tombstones) * ENTRY_JSON_BYTES;
}

/** About the bytes `ops` add to the data at most (their keys, values and entries). */
export function writeBytes(ops: readonly WriteOp[]): number {
  let bytes = 0;
  for (const op of ops) {
    bytes += ENTRY_JSON_BYTES + op.key.length + (op.op === "put" ? op.value.length : 0);
  }
  return bytes;
}

/** The same for entries copied in (their values in base64 or text: about their size). */
export function ingestBytes(entries: readonly WireEntry[]): number {
  let bytes = 0;
  for (const e of entries) {
    bytes += ENTRY_JSON_BYTES + (typeof e.k === "string" ? e.k.length : 0) +
      (typeof e.v === "string" ? e.v.length : 0);
  }
  return bytes;
}

/**
 * The bytes `ops` could add to the data held in `store`, each op's growth counted and never its
 * shrinking (a batch's shrinking overwrite must not hide another op's growth): a put's value
 * over the one it replaces (a binary one's base64 at its size), a delete its tombstone.
 */
export function writeGrowth(ops: readonly WriteOp[], store: Pick<Store, "stored">): number {
  let bytes = 0;
  for (const op of ops) {
    const old = store.stored(op.key);
    const before = old === undefined ? 0 : ENTRY_JSON_BYTES + op.key.length + heldBytes(old);
    const after = ENTRY_JSON_BYTES + op.key.length + (op.op === "put" ? op.value.length : 0);
    bytes += Math.max(0, after - before);
  }
  return bytes;
}

/** The same for entries copied in (range copies, anti-entropy): an overwrite only its growth. */
export function ingestGrowth(
  entries: readonly { key: string; stored: Stored }[],
  store: Pick<Store, "stored">,
): number {
  let bytes = 0;
  for (const { key, stored } of entries) {
    const old = store.stored(key);
    const before = old === undefined ? 0 : heldBytes(old);
    bytes += Math.max(0, heldBytes(stored) - before + (old === undefined ? ENTRY_JSON_BYTES : 0));
  }
  return bytes;
}

/** About the bytes a held value takes in the data's measure (base64 counted at its size). */
function heldBytes(stored: Stored): number {
  return stored.kind === "base64" ? Math.floor(stored.data.length * 3 / 4) : stored.data.length;
}
