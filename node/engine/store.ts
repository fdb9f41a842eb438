/**
 * The node's in-memory store: a Map from key to a packed record (`packed.ts`), with
 * versions, tombstones, write conditions and key order. Pure: no I/O, no HTTP, no
 * timers; the engine logs what it returns.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { Store } from "./store.ts";
 * import { HybridClock } from "../../shared/version.ts";
 * const store = new Store(new HybridClock("n1", () => 1_700_000_000_000));
 * const value = new TextEncoder().encode("v");
 * const first = store.write({ op: "put", key: "a", value, contentType: "text/plain" }, 7);
 * assert(first.outcome.status === 201 && store.get("a")?.hash === 7);
 * const gone = store.write({ op: "delete", key: "a" }, 7);
 * assert(gone.outcome.status === 204 && store.get("a")?.value === null);
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import { expiryOf } from "../../shared/expiry.ts";
import { inRanges, type Range, rangeAt } from "../../shared/ring.ts";
import type { HybridClock } from "../../shared/version.ts";
import type { Entry, ListOptions, WriteOp, WriteOutcome } from "./engine.ts";
import { KeyOrder } from "./key_order.ts";
import { hashOf, kindOf, Packer, type Stored } from "./packed.ts";
import { byteLength, fromBytes, type HeldValue, toBytes } from "./values.ts";

/** What a write did, and the entry to log when it changed something. */
export interface WriteResult {
  outcome: WriteOutcome;
  stored?: Stored;
}

/** An entry {@link Store.applyAll} set, and the version it replaced (null: none). */
export interface Applied {
  key: string;
  stored: Stored;
  prev: string | null;
}

/** A key and the version of its entry. */
export interface KeyVersion {
  key: string;
  version: string;
}

/** A flat image value: text, or bytes that are not UTF-8 as base64. */
export type FlatValue = string | { base64: string };

/** Keys with versions and tombstones; every change goes through here. */
export class Store {
  readonly #records = new Map<string, string>();
  readonly #packer = new Packer();
  readonly #order = new KeyOrder();
  readonly #has = (key: string) => this.#records.has(key);
  /** Live keys with a TTL and their expiry (wall ms), for the reaper's scan. */
  readonly #expiring = new Map<string, number>();
  /**
   * Tombstones, for the proxies' purge of old ones ({@link oldTombstones}), in about the order
   * they were stored. A Set, not a Map to their times (read from the record instead): a Map
   * cost 53 B more per tombstone held (a boxed number each).
   */
  readonly #tombstoneKeys = new Set<string>();
  #tombstones = 0;
  #valueBytes = 0;

  /**
   * The clock hands out the versions of writes and observes applied ones; `now` is the
   * wall time that decides whether a key has expired.
   */
  constructor(readonly clock: HybridClock, readonly now: () => number = Date.now) {}

  /** The ring point of a stored key (tombstones included). */
  hashOf(key: string): number | undefined {
    const record = this.#records.get(key);
    return record === undefined ? undefined : hashOf(record);
  }

  /** The entry of a key, tombstones included. */
  get(key: string): Entry | undefined {
    const stored = this.stored(key);
    if (!stored) return undefined;
    const { kind, hash, contentType, version } = stored;
    return {
      value: toBytes(stored),
      contentType: kind === "tombstone" ? "" : contentType,
      version,
      hash,
    };
  }

  /** The version of a key's entry (tombstones included), if any. */
  versionOf(key: string): string | undefined {
    const record = this.#records.get(key);
    return record === undefined ? undefined : this.#packer.versionOf(record);
  }

  /** The stored form of a key's entry. */
  stored(key: string): Stored | undefined {
    const record = this.#records.get(key);
    return record === undefined ? undefined : this.#packer.unpack(record);
  }

  /** Applies one put or delete with its conditions; `hash` is needed for new keys. */
  write(op: WriteOp, hash: number | undefined): WriteResult {
    const old = this.#records.get(op.key);
    if (op.op === "delete" && op.expire) return this.#expire(op.key, op.ifMatch, old);
    const live = old !== undefined && kindOf(old) !== "tombstone" && !this.#expired(op.key);
    const current = old === undefined ? undefined : this.#packer.versionOf(old);
    if (op.ifMatch !== undefined && (!live || current !== op.ifMatch)) {
      return { outcome: { status: 412, version: live ? current : undefined } };
    }
    if (op.ifNoneMatch === "*" && live) return { outcome: { status: 412, version: current } };
    if (op.op === "delete" && !live) return { outcome: { status: 404 } };
    const point = old === undefined ? hash : hashOf(old);
    if (point === undefined) throw new Error(`Cannot write ${op.key}: its ring point is unknown`);
    const floor = op.minVersion !== undefined && (current === undefined || op.minVersion > current)
      ? op.minVersion
      : current;
    const version = this.clock.nextAfter(floor);
    const stored: Stored = op.op === "put"
      ? { ...fromBytes(op.value), hash: point, contentType: op.contentType, version }
      : {
        kind: "tombstone",
        data: "",
        hash: point,
        contentType: "",
        version,
        arrivedAt: this.now(),
      };
    this.#set(op.key, stored, old);
    const status = op.op === "delete" ? 204 : live ? 200 : 201;
    return { outcome: { status, version }, stored };
  }

  /**
   * Keys whose expiry is at or before both `before` (the asking proxy's wall ms) and this
   * store's clock, with their versions; at most `limit`. One clock alone (a proxy's ahead)
   * cannot make a key gone for good early. Each key listed moves to the back of the list, so
   * keys the reaper cannot delete yet (their newest version is elsewhere, or their replicas are
   * down) do not hide the others forever.
   */
  expiredKeys(before: number, limit: number): { key: string; version: string }[] {
    const by = Math.min(before, this.now());
    const out: { key: string; version: string }[] = [];
    for (const [key, at] of this.#expiring) {
      if (out.length === limit) break;
      if (at <= by) out.push({ key, version: this.#packer.versionOf(this.#records.get(key)!) });
    }
    for (const { key } of out) {
      const at = this.#expiring.get(key)!;
      this.#expiring.delete(key);
      this.#expiring.set(key, at);
    }
    return out;
  }

  /**
   * Tombstones stored on this node at or before `storedBy` (wall ms, this node's clock: a fast
   * write's tombstone carries the version of a write long before it, so the version does not say
   * when the delete happened), with their versions and ring points; at most `limit`. Tombstones
   * are kept in the order they were stored here, so the scan ends once it has passed `limit`
   * younger ones; each one listed moves to the back, as {@link expiredKeys}, so one that cannot
   * be purged yet does not hide the others.
   */
  oldTombstones(storedBy: number, limit: number): (KeyVersion & { hash: number })[] {
    const out: (KeyVersion & { hash: number })[] = [];
    let younger = 0;
    for (const key of this.#tombstoneKeys) {
      if (out.length === limit || younger >= limit) break;
      const record = this.#records.get(key)!;
      if (this.#packer.arrivalOf(record) > storedBy) {
        younger++;
        continue;
      }
      out.push({ key, version: this.#packer.versionOf(record), hash: hashOf(record) });
    }
    for (const { key } of out) {
      this.#tombstoneKeys.delete(key);
      this.#tombstoneKeys.add(key);
    }
    return out;
  }

  /**
   * The keys of `tombstones` whose entry is a tombstone of exactly the version given, stored on
   * this node at or before `storedBy` (wall ms): what {@link purge} would forget.
   */
  purgeable(tombstones: readonly KeyVersion[], storedBy: number): string[] {
    const keys: string[] = [];
    for (const { key, version } of tombstones) {
      const record = this.#records.get(key);
      if (record === undefined || kindOf(record) !== "tombstone") continue;
      if (this.#packer.versionOf(record) !== version) continue;
      if (this.#packer.arrivalOf(record) <= storedBy) keys.push(key);
    }
    return keys;
  }

  /**
   * Forgets each key {@link purgeable} names (a newer write, a live entry or a tombstone stored
   * later stays); returns the keys forgotten. The caller makes sure every replica holds that
   * tombstone first (proxy/replication/tombstone_purge.ts). A log replay passes Infinity.
   */
  purge(tombstones: readonly KeyVersion[], storedBy: number): string[] {
    const purged = this.purgeable(tombstones, storedBy);
    for (const key of purged) this.#forget(key, this.#records.get(key)!);
    return purged;
  }

  /** Turns an expired entry into a tombstone when it still has `version` (else 412). */
  #expire(key: string, version: string | undefined, old: string | undefined): WriteResult {
    const current = old === undefined ? undefined : this.#packer.versionOf(old);
    if (old === undefined || current !== version || !this.#expired(key)) {
      return { outcome: { status: 412, ...(current === undefined ? {} : { version: current }) } };
    }
    const stamp = this.clock.nextAfter(current);
    const stored: Stored = {
      kind: "tombstone",
      data: "",
      hash: hashOf(old),
      contentType: "",
      version: stamp,
      arrivedAt: this.now(),
    };
    this.#set(key, stored, old);
    return { outcome: { status: 204, version: stamp }, stored };
  }

  #expired(key: string): boolean {
    const at = this.#expiring.get(key);
    return at !== undefined && at <= this.now();
  }

  /** Sets an entry when its version is newer than the stored one; false when skipped. */
  apply(key: string, entry: Stored): boolean {
    const old = this.#records.get(key);
    return this.#applyOver(
      key,
      entry,
      old,
      old === undefined ? undefined : this.#packer.versionOf(old),
    );
  }

  /** {@link apply} over the record `old` of version `oldVersion`, read once by the caller. */
  #applyOver(key: string, entry: Stored, old?: string, oldVersion?: string): boolean {
    if (oldVersion !== undefined && oldVersion >= entry.version) return false;
    this.clock.observe(entry.version);
    // A tombstone from the wire is stored now; one from this node's files keeps its time.
    if (entry.kind === "tombstone" && entry.arrivedAt === undefined) entry.arrivedAt = this.now();
    this.#set(key, entry, old);
    return true;
  }

  /**
   * {@link apply} for each entry in order, all or nothing: every entry is checked to fit
   * in a record first, so one that cannot be held throws before any is set. Returns the
   * entries applied (newer than what was stored) with the version each replaced.
   */
  applyAll(entries: readonly { key: string; stored: Stored }[]): Applied[] {
    for (const { stored } of entries) this.#packer.check(stored);
    const applied: Applied[] = [];
    for (const { key, stored } of entries) {
      // One read of the old version per entry: each costs a string built from the record.
      const old = this.#records.get(key);
      const prev = old === undefined ? undefined : this.#packer.versionOf(old);
      if (this.#applyOver(key, stored, old, prev)) {
        applied.push({ key, stored, prev: prev ?? null });
      }
    }
    return applied;
  }

  /** Forgets every entry whose ring point is in `ranges`; returns their keys. */
  drop(ranges: readonly Range[]): string[] {
    const sorted = sortRanges(ranges);
    const dropped: string[] = [];
    for (const [key, record] of this.#records) {
      if (!inRanges(hashOf(record), sorted)) continue;
      this.#forget(key, record);
      dropped.push(key);
    }
    return dropped;
  }

  /** Keys (tombstones included) whose ring point is in `ranges`. */
  scanKeys(ranges: readonly Range[]): string[] {
    const sorted = sortRanges(ranges);
    const keys: string[] = [];
    for (const [key, record] of this.#records) {
      if (inRanges(hashOf(record), sorted)) keys.push(key);
    }
    return keys;
  }

  /**
   * {@link scanKeys} of each bucket (a list of ranges), in one pass over the store instead of
   * one per bucket: an anti-entropy digest asks for 32+ buckets, and a pass per bucket cost a
   * node with 100,000 keys ~0.35 s of CPU per digest (docs/performance-history.md, "PUT stalls").
   */
  scanBuckets(buckets: readonly (readonly Range[])[]): string[][] {
    const flat = buckets.flatMap((ranges, bucket) => ranges.map((r) => ({ ...r, bucket })))
      .sort((a, b) => a.start - b.start);
    // Empty or overlapping ranges (no proxy sends them) keep the per-bucket scan's answer.
    if (flat.some((r, i) => r.start >= r.end || (i > 0 && r.start < flat[i - 1]!.end))) {
      return buckets.map((ranges) => this.scanKeys(ranges));
    }
    const keys: string[][] = buckets.map(() => []);
    for (const [key, record] of this.#records) {
      const range = rangeAt(flat, hashOf(record));
      if (range !== undefined) keys[range.bucket]!.push(key);
    }
    return keys;
  }

  /** Keys in order, tombstones included, with `prefix`, after `after`, at most `limit`. */
  listKeys(options: ListOptions): { keys: string[]; more: boolean } {
    const { prefix, after, limit } = options;
    const exclusive = after !== undefined && after >= prefix;
    const keys: string[] = [];
    for (const key of this.#order.from(exclusive ? after : prefix, exclusive, this.#has)) {
      if (!key.startsWith(prefix)) break;
      if (keys.length === limit) return { keys, more: true };
      keys.push(key);
    }
    return { keys, more: false };
  }

  /** Every key with its stored entry, in no particular order (live view while iterating). */
  *entries(): Generator<[string, Stored]> {
    for (const [key, record] of this.#records) yield [key, this.#packer.unpack(record)];
  }

  /** The live, unexpired entries as a flat image, in key order (without their TTLs). */
  exportFlat(binary: "base64" | "refuse"): Record<string, FlatValue> {
    const image: Record<string, FlatValue> = {};
    for (const key of this.#order.from("", false, this.#has)) {
      // An expired key is absent (the image has no TTLs: exported, it would come back for good).
      if (this.#expired(key)) continue;
      const { kind, data } = this.#packer.value(this.#records.get(key)!);
      if (kind === "text") image[key] = data;
      else if (kind === "base64" && binary === "base64") image[key] = { base64: data };
      else if (kind === "base64") {
        throw new RingkvError(
          "conflict",
          `Cannot export key ${JSON.stringify(key)}: its value is not UTF-8 text; ` +
            "ask for binary=base64 to export such values as {base64}",
        );
      }
    }
    return image;
  }

  /** Live keys, tombstones and bytes of live values. */
  counts(): { keys: number; tombstones: number; valueBytes: number } {
    const tombstones = this.#tombstones;
    return { keys: this.#records.size - tombstones, tombstones, valueBytes: this.#valueBytes };
  }

  #forget(key: string, record: string): void {
    this.#account(record, -1);
    this.#records.delete(key);
    this.#expiring.delete(key);
    this.#tombstoneKeys.delete(key);
    this.#order.removed();
  }

  #set(key: string, entry: Stored, old: string | undefined): void {
    // Packed first: an entry that cannot be held (pack throws) changes nothing.
    const record = this.#packer.pack(entry);
    if (old === undefined) this.#order.add(key);
    else this.#account(old, -1);
    this.#records.set(key, record);
    this.#count(entry, 1);
    const at = entry.kind === "tombstone" ? undefined : expiryOf(entry.contentType);
    if (at !== undefined) this.#expiring.set(key, at);
    else this.#expiring.delete(key);
    // A newer tombstone over an older one goes to the back, in the order of when it was stored
    // (no Set look-up for a write over a live value, the common case).
    if (old !== undefined && kindOf(old) === "tombstone") this.#tombstoneKeys.delete(key);
    if (entry.kind === "tombstone") this.#tombstoneKeys.add(key);
  }

  #account(record: string, sign: 1 | -1): void {
    this.#count(this.#packer.value(record), sign);
  }

  #count(value: HeldValue, sign: 1 | -1): void {
    if (value.kind === "tombstone") this.#tombstones += sign;
    else this.#valueBytes += sign * byteLength(value);
  }
}

function sortRanges(ranges: readonly Range[]): Range[] {
  return [...ranges].sort((a, b) => a.start - b.start);
}
