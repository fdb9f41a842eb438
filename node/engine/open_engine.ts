/**
 * Opens a node's storage engine over a {@link Disk}: reads (or creates) the node id,
 * loads `snapshot.json`, replays `wal.jsonl`, and returns the {@link NodeEngine}.
 * docs/storage.md describes the files and the recovery rules.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
 * import { openEngine } from "./open_engine.ts";
 * const disk = createFakeDisk();
 * const engine = await openEngine({ disk, id: "n1", hashKey: () => Promise.resolve(7) });
 * const value = new TextEncoder().encode("v");
 * await engine.write([{ op: "put", key: "a", value, contentType: "text/plain" }]);
 * await engine.close();
 * const again = await openEngine({ disk: disk.reopen(), hashKey: () => Promise.resolve(7) });
 * assert(again.id === "n1" && (await again.get("a"))?.hash === 7);
 * await again.close();
 * ```
 */
import { DEFAULT_LIMITS, type Limits } from "../../shared/limits.ts";
import { hashKey } from "../../shared/ring.ts";
import { HybridClock } from "../../shared/version.ts";
import type { Disk } from "../storage/disk.ts";
import { DurableEngine } from "./durable_engine.ts";
import type { NodeEngine } from "./engine.ts";
import { FILES, loadIdentity, loadSnapshot, replayLog } from "../storage/recovery.ts";
import { Store } from "./store.ts";
import type { ChangeLog } from "./change_log.ts";
import { ChangeReplay } from "./change_recovery.ts";
import { GcHint } from "./gc_hint.ts";
import { Wal } from "../storage/wal.ts";
import { DEFAULT_RESERVE_MIN_BYTES, SpaceReserve } from "../storage/reserve.ts";

export { RecoveryError, ShutdownSnapshotError } from "../storage/recovery.ts";

/** The default log size that triggers a snapshot: 64 MiB. */
export const DEFAULT_SNAPSHOT_EVERY_BYTES = 64 * 1024 * 1024;

/** What {@link openEngine} needs. */
export interface OpenEngineOptions {
  disk: Disk;
  /** The node id; taken from the data directory when omitted (a new one on first start). */
  id?: string;
  /** Wall clock in milliseconds, for versions. */
  now?: () => number;
  limits?: Limits;
  /** Log size past which a snapshot is written and the log restarts. */
  snapshotEveryBytes?: number;
  /**
   * The smallest `snapshot.reserve` (default 64 KiB); it grows to 1.5 times the data plus this.
   * 0: no reserve (a log that fills the disk then needs an operator; docs/storage.md).
   */
  reserveMinBytes?: number;
  /** Ring point of a key; tests may inject one. */
  hashKey?: (key: string) => Promise<number>;
  /** First delay before a read-only node retries its repair (node/engine/write_guard.ts). */
  firstRetryMs?: number;
  /** Where read-only transitions and a torn log tail cut at start are told (default: stderr). */
  log?: (message: string) => void;
  /** How long a log write may wait on the disk before health says `stalled` (default 5 s). */
  stallAfterMs?: number;
}

/** Loads the data directory and returns the engine; throws RecoveryError on damage. */
export async function openEngine(options: OpenEngineOptions): Promise<NodeEngine> {
  const { disk } = options;
  const { id, incarnation, createdAt } = await loadIdentity(disk, options.id, options.now);
  const store = new Store(new HybridClock(id, options.now), options.now);
  const snapshot = await loadSnapshot(disk, store);
  const log = options.log ?? console.error;
  const changes = new ChangeReplay(snapshot, undefined, log);
  const walBytes = await replayLog(disk, store, { snapshot, log, observer: changes });
  const changeLog = await syncedChanges(disk, changes);
  const gcHint = new GcHint();
  gcHint.now();
  const engine = new DurableEngine({
    id,
    incarnation,
    createdAt,
    disk,
    store,
    wal: new Wal(disk, FILES.wal, walBytes),
    hashKey: options.hashKey ?? hashKey,
    limits: options.limits ?? DEFAULT_LIMITS,
    snapshotEveryBytes: options.snapshotEveryBytes ?? DEFAULT_SNAPSHOT_EVERY_BYTES,
    reserve: await SpaceReserve.open(disk),
    reserveMinBytes: options.reserveMinBytes ?? DEFAULT_RESERVE_MIN_BYTES,
    snapshot,
    changes: changeLog,
    gcHint,
    ...(options.firstRetryMs === undefined ? {} : { firstRetryMs: options.firstRetryMs }),
    ...(options.log === undefined ? {} : { log: options.log }),
    ...(options.stallAfterMs === undefined ? {} : { stallAfterMs: options.stallAfterMs }),
  });
  await engine.startReserve();
  return engine;
}

/**
 * The change log the replay rebuilt, once the log is synced: a record a crash left unsynced would be
 * numbered now and could still be lost (then its number given again). A sync that fails leaves the
 * start to go on, as before, on a new numbering (the node's next write meets the disk's error).
 */
async function syncedChanges(disk: Disk, replay: ChangeReplay): Promise<ChangeLog> {
  if (replay.replayed) {
    await disk.sync(FILES.wal).catch((err: Error) => {
      replay.abandon(`${FILES.wal} cannot be synced at start (${err.message})`);
    });
  }
  return replay.finish();
}
