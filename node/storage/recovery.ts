/**
 * Start-up: the node id and incarnation of the data directory, then the snapshot, then the log replayed
 * over it. A torn last line of the log (a crash during an append) is cut off; damage
 * anywhere else stops the start with a {@link RecoveryError} that names the file, the
 * byte offset and what to do.
 *
 * @module
 */
import { isWriterId } from "../../shared/version.ts";
import type { ByteRange, Disk } from "./disk.ts";
import { TEMP_SUFFIX } from "./disk.ts";
import { entryFromJson } from "../engine/entry_json.ts";
import { encodeJsonLine, scanLines } from "./log_format.ts";
import { readSnapshot, SnapshotDamage } from "./snapshot.ts";
import type { Stored } from "../engine/packed.ts";
import type { Store } from "../engine/store.ts";

/** File names in the data directory. */
export const FILES = {
  node: "node.json",
  wal: "wal.jsonl",
  snapshot: "snapshot.json",
  cluster: "cluster.json",
  /** The node's promise and accepted map for the next map epoch (node/paxos/map_acceptor.ts). */
  mapVote: "map_vote.json",
} as const;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The data directory cannot be loaded as it is; the message says where and what to do. */
export class RecoveryError extends Error {
  /** `file` and `offset` locate the damage; `advice` says what the operator can do. */
  constructor(readonly file: string, readonly offset: number, reason: string, advice: string) {
    super(
      `Cannot start from the data directory: ${file} is damaged at byte ${offset} (${reason}). ${advice}`,
    );
    this.name = "RecoveryError";
  }
}

/**
 * A file of the data directory could not be read (EIO from a failing disk, say): the start
 * stops and names the file and the error; a node never starts without what the file holds.
 */
export class UnreadableFileError extends Error {
  /** `file`: the file's name in the data directory; `cause`: the disk's error. */
  constructor(readonly file: string, cause: Error) {
    super(
      `Cannot load the data directory: reading ${file} failed (${cause.message}); nothing was ` +
        "loaded. Check the disk (dmesg), then start again, or restore the directory from a " +
        "backup or let replicas refill it (docs/storage.md).",
      { cause },
    );
    this.name = "UnreadableFileError";
  }
}

/**
 * The snapshot of a clean shutdown could not be written (a full or read-only directory): the
 * log still holds every acknowledged write, so the next start loses nothing.
 */
export class ShutdownSnapshotError extends Error {
  /** `cause`: the disk's error. */
  constructor(cause: Error) {
    super(
      `Cannot write ${FILES.snapshot} at shutdown: ${cause.message}. Nothing is lost: ` +
        `${FILES.wal} keeps every acknowledged write and the next start replays it.`,
      { cause },
    );
    this.name = "ShutdownSnapshotError";
  }
}

/** `run()`, with a disk error (not a missing file) named as {@link UnreadableFileError}. */
async function named<T>(name: string, run: () => Promise<T>): Promise<T> {
  try {
    return await run();
  } catch (err) {
    if (!(err instanceof Error) || err instanceof Deno.errors.NotFound) throw err;
    throw new UnreadableFileError(name, err);
  }
}

/** `disk.read(name)`, its error named as {@link UnreadableFileError}. */
function readNamed(disk: Disk, name: string): Promise<Uint8Array | null> {
  return named(name, () => disk.read(name));
}

/** Who a data directory is: its node id and the incarnation of the directory itself. */
export interface Identity {
  id: string;
  /**
   * Random, written once when the directory is first initialised: a node that comes back
   * on a new (wiped, replaced) directory under its old id has another one.
   */
  incarnation: string;
  /** Wall time (ms) the incarnation was written. */
  createdAt: number;
}

/** The identity stored in the directory; stores `wanted` (or a new id) on first start. */
export async function loadIdentity(
  disk: Disk,
  wanted: string | undefined,
  now: () => number = Date.now,
): Promise<Identity> {
  const bytes = await readNamed(disk, FILES.node);
  if (bytes === null) return await saveIdentity(disk, wanted ?? newNodeId(), now());
  let stored: { id?: unknown; incarnation?: unknown; createdAt?: unknown } | undefined;
  try {
    stored = JSON.parse(decoder.decode(bytes));
  } catch {
    stored = undefined;
  }
  const id = stored?.id;
  if (typeof id !== "string" || !isWriterId(id)) {
    throw new RecoveryError(
      FILES.node,
      0,
      'it is not {"id": "<node id>"}',
      `Write the node's id into it.`,
    );
  }
  if (wanted !== undefined && wanted !== id) {
    throw new Error(
      `Cannot start node ${wanted}: the data directory belongs to node ${id}; ` +
        `start with id ${id} or use another data directory`,
    );
  }
  const { incarnation, createdAt } = stored!;
  // A directory from before incarnations gets one now (the cluster map has none for it).
  if (typeof incarnation !== "string" || typeof createdAt !== "number") {
    return await saveIdentity(disk, id, now());
  }
  return { id, incarnation, createdAt };
}

async function saveIdentity(disk: Disk, id: string, createdAt: number): Promise<Identity> {
  const identity = { id, incarnation: newIncarnation(), createdAt };
  await disk.writeAtomic(FILES.node, encoder.encode(JSON.stringify(identity) + "\n"));
  return identity;
}

/** A fresh directory incarnation: "i" and 12 random hex digits. */
export function newIncarnation(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return "i" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A fresh node id: "n" and 8 random hex digits. */
export function newNodeId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(4));
  return "n" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Loads the snapshot into the store; returns its size (0 when there is none) and generation. */
export async function loadSnapshot(disk: Disk, store: Store): Promise<LoadedSnapshot> {
  await disk.remove(FILES.snapshot + TEMP_SUFFIX);
  // Only the disk's own errors are named as unreadable; damage is a RecoveryError.
  const reading = {
    read: (name: string, range?: ByteRange) => named(name, () => disk.read(name, range)),
    size: (name: string) => named(name, () => disk.size(name)),
  };
  try {
    const info = await readSnapshot(reading, FILES.snapshot, (key, entry) => {
      store.apply(key, entry);
    });
    const loaded = { bytes: info?.bytes ?? 0, generation: info?.generation ?? 0 };
    return info?.changes === undefined ? loaded : { ...loaded, changes: info.changes };
  } catch (err) {
    if (!(err instanceof SnapshotDamage)) throw err;
    throw new RecoveryError(
      FILES.snapshot,
      err.offset,
      err.reason,
      "Restore the data directory from a backup, or let the cluster copy this node's keys " +
        "back from replicas after moving the directory away.",
    );
  }
}

/** The snapshot a start loaded: its size (0: none was found) and generation. */
export interface LoadedSnapshot {
  bytes: number;
  generation: number;
  /** Where the change log stood when it read the store (node/engine/change_recovery.ts). */
  changes?: unknown;
}

/**
 * Watches a replay for the change log (node/engine/change_recovery.ts): the log's first record,
 * then every `set` entry before it is applied.
 */
export interface ReplayObserver {
  /** The log's first record (undefined: an empty log), and how many `set` entries the log holds. */
  first(record: Record<string, unknown> | undefined, setEntries: number): void;
  /** A `set` entry, before the store applies it. */
  set(key: string, stored: Stored, store: Store): void;
  /** The `changes` JSON of the marker a new log starts with (the log was missing or empty). */
  fresh(): string;
  /**
   * A torn tail was cut: `unfinished` when it is one line without its newline (an append a crash
   * cut short, never fsync'd), not a whole line gone bad (which may have been fsync'd).
   */
  cut(unfinished: boolean): void;
}

/** What {@link replayLog} knows besides the log. */
export interface ReplayOptions {
  /** The snapshot loaded before the log (none: no snapshot was found). */
  snapshot?: LoadedSnapshot;
  /** Where a torn tail cut at start is told. */
  log?: (message: string) => void;
  /** Told the records as they are replayed; a missing or empty log then starts with a marker. */
  observer?: ReplayObserver;
}

/**
 * The first line of a log restarted after a snapshot: without it a deleted (or lost)
 * `snapshot.json` left a log of the later writes only, and the node started without a word
 * and without every key the snapshot held. `changes` (JSON: node/engine/change_recovery.ts)
 * says where the node's change log stood, so a start continues its numbering. A log started
 * with no snapshot has one with `bytes` 0.
 */
export function snapshotMarker(snapshot: LoadedSnapshot, changes?: string): Uint8Array {
  const { bytes, generation } = snapshot;
  const head = `{"snapshot":${JSON.stringify({ bytes, generation })}`;
  return encodeJsonLine(changes === undefined ? `${head}}` : `${head},"changes":${changes}}`);
}

const REFILL = "with replicas, move the directory away and let them refill the node " +
  "(docs/storage.md); or, accepting the loss of every key the log's snapshot held, delete the " +
  `first line of ${FILES.wal} and start again.`;

/**
 * Refuses a log that continues a snapshot which is missing, or older than the one it continues
 * (a backup put back): the writes between the two would be lost without a word. A snapshot one
 * generation newer is what a crash between its rename and the log's replacement leaves.
 */
function assertSnapshotLoaded(
  first: Record<string, unknown> | undefined,
  loaded: LoadedSnapshot,
): void {
  if (first?.snapshot === undefined) return;
  const marker = first.snapshot as { bytes?: unknown; generation?: unknown };
  // A log that was started with no snapshot says so: it continues none.
  if (marker.bytes === 0) return;
  if (loaded.bytes === 0) {
    throw new RecoveryError(
      FILES.wal,
      0,
      `it continues a snapshot of ${marker.bytes} bytes, and ${FILES.snapshot} is missing`,
      `Put back the ${FILES.snapshot} it continues if you have it; else ${REFILL}`,
    );
  }
  if (typeof marker.generation === "number" && loaded.generation < marker.generation) {
    throw new RecoveryError(
      FILES.wal,
      0,
      `it continues snapshot generation ${marker.generation}, and ${FILES.snapshot} is ` +
        `generation ${loaded.generation}, older: the writes between them are in neither file`,
      `Put back the ${FILES.snapshot} of generation ${marker.generation} if you have it; else ${REFILL}`,
    );
  }
}

/**
 * Replays the log over the store and cuts a torn tail, telling `log` what it cut (the
 * operator learns that bytes left the log); returns the log's size.
 */
export async function replayLog(
  disk: Disk,
  store: Store,
  options: ReplayOptions = {},
): Promise<number> {
  const { log, observer } = options;
  const bytes = await readNamed(disk, FILES.wal);
  if (bytes === null || (bytes.length === 0 && observer !== undefined)) {
    const head = observer === undefined
      ? new Uint8Array(0)
      : snapshotMarker(options.snapshot ?? { bytes: 0, generation: 0 }, observer.fresh());
    await disk.writeAtomic(FILES.wal, head);
    return head.length;
  }
  const scan = scanLines(bytes);
  if (scan.damage) {
    throw new RecoveryError(
      FILES.wal,
      scan.damage.offset,
      `${scan.damage.reason}, and intact records follow it`,
      `Restore the data directory from a backup; or, accepting the loss of the records from ` +
        `that byte on, cut ${FILES.wal} to its first ${scan.damage.offset} bytes and start again.`,
    );
  }
  assertSnapshotLoaded(scan.records[0]?.record, options.snapshot ?? { bytes: 0, generation: 0 });
  if (observer !== undefined) {
    let entries = 0;
    for (const { record } of scan.records) {
      if (Array.isArray(record.set)) entries += record.set.length;
    }
    observer.first(scan.records[0]?.record, entries);
  }
  for (const { offset, record } of scan.records) {
    try {
      applyRecord(store, record, observer);
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
      throw new RecoveryError(
        FILES.wal,
        offset,
        err.message,
        "Restore the data directory from a backup.",
      );
    }
  }
  if (scan.goodLength < bytes.length) {
    observer?.cut(bytes.indexOf(0x0a, scan.goodLength) === -1);
    await disk.truncate(FILES.wal, scan.goodLength);
    log?.(tornTailMessage(scan.torn, bytes.length - scan.goodLength));
  }
  return scan.goodLength;
}

function tornTailMessage(torn: { offset: number; reason: string } | undefined, bytes: number) {
  const where = `${FILES.wal} at byte ${torn?.offset ?? "?"} (${bytes} bytes dropped)`;
  return `Cut a torn last record of ${where}: ${torn?.reason ?? "incomplete"}. A crash during ` +
    "an append leaves one, and its write was never acknowledged; damage there instead (bit " +
    "rot, an edit) lost that record.";
}

/**
 * Applies one log record: `{"set": [entry...]}`, `{"drop": [[start, end]...]}` or
 * `{"purge": [[key, version]...]}` (old tombstones forgotten, each only if still that one).
 */
export function applyRecord(
  store: Store,
  record: Record<string, unknown>,
  observer?: ReplayObserver,
): void {
  if (Array.isArray(record.set)) {
    for (const json of record.set) {
      const { key, stored } = entryFromJson(json);
      observer?.set(key, stored, store);
      store.apply(key, stored);
    }
  } else if (Array.isArray(record.drop)) {
    store.drop(record.drop.map(toRange));
  } else if (Array.isArray(record.purge)) {
    // Replayed as done: the tombstones were old enough then (their arrival is the load's time now).
    store.purge(record.purge.map(toKeyVersion), Number.POSITIVE_INFINITY);
  } else if (record.snapshot !== undefined) {
    // The marker of a restarted log (snapshotMarker): checked before the replay, nothing to apply.
  } else {
    throw new TypeError('the record has neither "set", "drop" nor "purge"');
  }
}

function toKeyVersion(pair: unknown): { key: string; version: string } {
  if (!Array.isArray(pair) || typeof pair[0] !== "string" || typeof pair[1] !== "string") {
    throw new TypeError("a purged tombstone is not [key, version]");
  }
  return { key: pair[0], version: pair[1] };
}

function toRange(pair: unknown): { start: number; end: number } {
  if (!Array.isArray(pair) || typeof pair[0] !== "number" || typeof pair[1] !== "number") {
    throw new TypeError("a dropped range is not [start, end]");
  }
  return { start: pair[0], end: pair[1] };
}
