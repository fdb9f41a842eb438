/**
 * node/engine/ (this folder's main module): the keys in memory, their versions and tombstones,
 * and making writes durable through node/storage. May import node/storage and shared/; never
 * HTTP.
 *
 * The contract between the node's HTTP app (`node/http/node_app.ts`) and its storage engine
 * (`node/engine/store.ts` + persistence). The app only talks to a {@link NodeEngine}.
 *
 * @module
 */
import type { Point, Range } from "../../shared/ring.ts";
import type { Version } from "../../shared/version.ts";
import type { ClusterMap, WireEntry } from "../../shared/wire.ts";
import type { Stored } from "./packed.ts";
import type { ChangeLog } from "./change_log.ts";
import type { WriteHealth } from "./write_guard.ts";
import type { DiskWaits } from "./disk_waits.ts";

/** One stored entry; `value: null` is a tombstone. */
export interface Entry {
  value: Uint8Array | null;
  contentType: string;
  version: Version;
  /** The key's ring point (first 32 bits of its SHA-1). */
  hash: Point;
}

/** Conditions and version floor shared by writes. */
export interface WriteConditions {
  /** The current live entry must have this version (`If-Match`). */
  ifMatch?: Version;
  /** The key must be absent or a tombstone (`If-None-Match: *`). */
  ifNoneMatch?: "*";
  /** The new version must be newer than this. */
  minVersion?: Version;
}

/** Set a key. */
export interface PutOp extends WriteConditions {
  op: "put";
  key: string;
  value: Uint8Array;
  contentType: string;
}

/** Delete a key (leaves a tombstone). */
export interface DeleteOp extends WriteConditions {
  op: "delete";
  key: string;
  /** Only when the key has expired and still has version `ifMatch` (the TTL reaper's delete). */
  expire?: true;
}

/** A write the engine applies and logs. */
export type WriteOp = PutOp | DeleteOp;

/** What one write did: 201 created, 200 replaced, 204 deleted, 404 nothing to delete, 412 condition failed. */
export interface WriteOutcome {
  status: 200 | 201 | 204 | 404 | 412;
  /** The new version (200/201/204), or the current one on 412 when the key exists. */
  version?: Version;
}

/** Options of a key-ordered listing. */
export interface ListOptions {
  prefix: string;
  /** Only keys strictly after this one. */
  after?: string;
  limit: number;
}

/** Sizes for /health and /metrics. */
export interface EngineStats {
  keys: number;
  tombstones: number;
  valueBytes: number;
  walBytes: number;
  snapshotBytes: number;
  /** Bytes held in snapshot.reserve for the snapshot that compacts a log which filled the disk. */
  reserveBytes: number;
  /** How long the oldest write waiting on the log, acceptor.json, cluster.json or map_vote.json has waited (0: none). */
  diskWaitMs: number;
}

/**
 * A call's check that the cluster map it was routed by is still the node's: it throws (409
 * `stale_epoch`) once the node holds a newer map. The engine calls it synchronously right
 * before it changes the store, after every wait of the call, so a refused call changes nothing
 * and an admitted one lands before the node answers the newer map's push.
 */
export type Fence = () => void;

/** The node's store with its durability: every resolved write is on disk. */
export interface NodeEngine {
  /** This node's id (persisted in the data directory; also the clock's writer id). */
  readonly id: string;
  /**
   * The data directory's incarnation: random, written once when the directory is first
   * initialised, so a node back on a wiped or replaced directory has a new one.
   */
  readonly incarnation: string;
  /** Durable changes, in this node's order, for watchers. */
  readonly changes: ChangeLog;
  /** Wall time (ms) the incarnation was written: promises before it may have been forgotten. */
  readonly createdAt: number;
  /** The entry (tombstones included), once it is durable; undefined when never seen. */
  get(key: string): Promise<Entry | undefined>;
  /**
   * The entry as held (the value's text or base64, no bytes made), once it is durable: a plain
   * value when no write to the key awaits its fsync, else a promise (the batch's hot read).
   */
  held(key: string): Stored | undefined | Promise<Stored | undefined>;
  /** Applies the ops in order as one log record (none when `fence` throws); resolves after fsync. */
  write(ops: readonly WriteOp[], fence?: Fence): Promise<WriteOutcome[]>;
  /**
   * Applies each entry whose version is newer than the stored one (none when `fence` throws);
   * durable on resolve. With `admit`, only the entries it admits, asked of each in order right
   * before any is applied, in the same turn as `fence` (an acceptor decides there: a promise
   * given while the write waited for room or a compaction counts).
   */
  ingest(
    entries: readonly WireEntry[],
    fence?: Fence,
    admit?: (entry: WireEntry) => boolean,
  ): Promise<{ applied: number; skipped: number }>;
  /** Forgets every entry whose hash lies in `ranges` (no tombstones; none when `fence` throws). */
  drop(ranges: readonly Range[], fence?: Fence): Promise<number>;
  /** Keys (tombstones included) whose hash is in `ranges`, taken now; read entries lazily. */
  scanKeys(ranges: readonly Range[]): string[];
  /** {@link scanKeys} of each bucket (a list of ranges), in one pass over the store. */
  scanBuckets(buckets: readonly (readonly Range[])[]): string[][];
  /**
   * Forgets each key whose entry is still a tombstone of exactly the version given, stored here
   * at or before `storedBy` (wall ms), as one log record (none when `fence` throws); resolves
   * with the keys forgotten once durable.
   */
  purge(
    tombstones: readonly { key: string; version: string }[],
    storedBy: number,
    fence?: Fence,
  ): Promise<string[]>;
  /** The keys {@link purge} would forget now. */
  purgeable(tombstones: readonly { key: string; version: string }[], storedBy: number): string[];
  /** Tombstones stored here at or before `storedBy` (wall ms, this node's clock); at most `limit`. */
  oldTombstones(storedBy: number, limit: number): { key: string; version: string; hash: number }[];
  /** Live keys whose TTL ran out by `before` (wall ms) and by this node's clock; at most `limit`. */
  expiredKeys(before: number, limit: number): { key: string; version: string }[];
  /** The entry as it is now, without waiting for durability (for scans). */
  peek(key: string): Entry | undefined;
  /** The entry as held now (the value's text or base64, no bytes made), durable or not. */
  peekHeld(key: string): Stored | undefined;
  /** The version of the entry as it is now (tombstones included), no value made. */
  peekVersion(key: string): string | undefined;
  /** Undefined when no write to `key` awaits its fsync, else that fsync's promise. */
  settled(key: string): Promise<void> | undefined;
  /** Entries in key order, tombstones included; resolves once they are durable. */
  list(options: ListOptions): Promise<{ entries: [string, Entry][]; more: boolean }>;
  /** Sets every pair of a flat image as one log record. */
  importFlat(image: Record<string, string | { base64: string }>): Promise<number>;
  /** The live entries as a flat image; non-UTF-8 values as `{base64}` or, without it, an error. */
  exportFlat(binary: "base64" | "refuse"): Record<string, string | { base64: string }>;
  /** The stored cluster map, if any. */
  loadClusterMap(): Promise<ClusterMap | null>;
  /** Stores the cluster map atomically (temp file, fsync, rename, directory fsync). */
  saveClusterMap(map: ClusterMap): Promise<void>;
  /** The stored vote on the next cluster map (node/paxos/map_acceptor.ts), or null. */
  loadMapVote(): Promise<unknown>;
  /** Stores the vote atomically, as the cluster map. */
  saveMapVote(vote: unknown): Promise<void>;
  stats(): EngineStats;
  /** Whether the node takes writes (a failing disk makes it read-only until repaired). */
  writeHealth(): WriteHealth;
  /** This node's wall clock (ms): the one it stamps versions and decides expiry by. */
  now(): number;
  /** Disk writes outside the log that requests wait on; a stalled one shows in writeHealth(). */
  readonly diskWaits: DiskWaits;
  /** Flushes, writes a snapshot, releases files. */
  close(): Promise<void>;
}
