/**
 * The node's change log across restarts. A watcher holds positions in each node's change log
 * (node/engine/change_log.ts); when a restart began a new numbering, a watch had to take the node
 * as one that lost changes, and after two such restarts of a key's three replicas (a rolling
 * restart) it could only say `compacted`. So a start continues the numbering from the log file.
 *
 * The log's first line (its marker, node/storage/recovery.ts) carries `changes`: the numbering's
 * name (`log`), the sequence number before the first change in the log's records (`from`), the one
 * after which replaying the records gives exactly the states the writes saw (`exactAfter`), and
 * the newest changes up to it (`recent`, with the version each replaced). A snapshot reads the
 * store while writes go on, so the records written meanwhile may already be in it: their replay
 * cannot tell what version each replaced, and only the changes after `exactAfter` are rebuilt from
 * the records. A start numbers every `set` entry of the log on from `from` (a change is exactly a
 * `set` entry: node/engine/durable_engine.ts logs one per change, in the order it numbers them),
 * keeps `recent` and the entries after `exactAfter`, and goes on from the last. A missing or empty
 * log starts with a marker of a new name; a log without one (written before 2026-12-07), or one
 * whose replay does not agree with its marker, gets a new name: watchers then take the node as
 * restarted, as before. docs/storage.md has the format.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { ChangeLog } from "./change_log.ts";
 * import { changeMark, ChangeReplay } from "./change_recovery.ts";
 * const log = new ChangeLog("b1");
 * const version = "018bcfe56800-0000-n1";
 * const stored = { kind: "text" as const, data: "v", hash: 1, contentType: "t", version };
 * log.stage(1, [{ key: "a", stored, prev: null }]);
 * log.durable(1);
 * const replay = new ChangeReplay();
 * replay.first({ snapshot: {}, changes: JSON.parse(changeMark(log, 1, 1)) });
 * const again = replay.finish();
 * assert(again.boot === "b1" && again.last === 1);
 * const page = again.read(0, 10, "");
 * assert(page !== "gone" && page[0]!.key === "a" && page[0]!.stored.data === "v");
 * ```
 */
import { type Change, CHANGE_LOG_LIMITS, ChangeLog, type ChangeLogLimits } from "./change_log.ts";
import { entryFromJson, entryToJson } from "./entry_json.ts";
import type { Stored } from "./packed.ts";
import type { ReplayObserver } from "../storage/recovery.ts";
import type { Store } from "./store.ts";

/**
 * How many of the newest changes a marker carries: a watcher a few polls behind when the log was
 * cut (at a clean shutdown, or by a kill -9 soon after a snapshot) still finds what it had not
 * read. ~250 B each for small values; at most 256 KiB of keys and values (and a quarter of the
 * log's snapshot size), which the log's cut writes beside its tail.
 */
export const RECENT_CHANGES = { maxEntries: 1_000, maxBytes: 256 << 10 } as const;

/** A new numbering's name: random, as long as the one before. */
export function newChangeLogName(): string {
  return crypto.randomUUID().slice(0, 13);
}

/**
 * The marker's `changes` JSON for a log cut now: `from`, the change log's `last` when the log's
 * tail began; `exactAfter`, its `appended` once the snapshot had read the store; with the newest
 * changes up to it, at most `recentBytes` of them (and {@link RECENT_CHANGES}).
 */
export function changeMark(
  log: ChangeLog,
  from: number,
  exactAfter: number,
  recentBytes: number = RECENT_CHANGES.maxBytes,
): string {
  const { maxEntries, maxBytes } = RECENT_CHANGES;
  const bytes = Math.min(maxBytes, recentBytes);
  const kept = bytes > 0 ? log.recent(exactAfter, maxEntries, bytes) : [];
  const recent = kept.map((c) =>
    `[${c.seq},${JSON.stringify(c.prev)},${entryToJson(c.key, c.stored)}]`
  );
  return `{"log":${JSON.stringify(log.boot)},"from":${from},"exactAfter":${exactAfter},` +
    `"recent":[${recent.join(",")}]}`;
}

/** A marker's `changes`, read; a string says what is wrong with it. */
function readMark(
  json: unknown,
): { log: string; from: number; exactAfter: number; recent: Change[] } | string {
  const o = json as Record<string, unknown>;
  if (typeof o !== "object" || o === null || typeof o.log !== "string" || o.log === "") {
    return "its name is missing";
  }
  const { from, exactAfter } = o;
  if (!Number.isSafeInteger(from) || !Number.isSafeInteger(exactAfter)) return "no positions";
  if ((from as number) < 0 || (exactAfter as number) < (from as number)) return "bad positions";
  if (!Array.isArray(o.recent)) return "no recent changes";
  const recent: Change[] = [];
  for (const item of o.recent) {
    if (!Array.isArray(item) || !Number.isSafeInteger(item[0])) {
      return "a recent change is malformed";
    }
    const prev = item[1];
    if (prev !== null && typeof prev !== "string") return "a recent change is malformed";
    let entry: { key: string; stored: Stored };
    try {
      entry = entryFromJson(item[2]);
    } catch (err) {
      return `a recent change is malformed: ${(err as Error).message}`;
    }
    recent.push({ seq: item[0], key: entry.key, stored: entry.stored, prev });
  }
  // Contiguous, ending at exactAfter: what a reader at any of those positions needs.
  const end = exactAfter as number;
  if (recent.some((c, i) => c.seq !== end - recent.length + 1 + i)) {
    return "its recent changes do not end at its position";
  }
  return { log: o.log, from: from as number, exactAfter: end, recent };
}

/** Rebuilds the change log from a replay (node/storage/recovery.ts `replayLog`). */
export class ChangeReplay implements ReplayObserver {
  /** The numbering continued (null: none; a new one at {@link finish}). */
  #name: string | null = null;
  #last = 0;
  #exactAfter = 0;
  /** Changes up to this one are counted, not kept. */
  #keepAfter = 0;
  #kept: Change[] = [];
  /** Why the numbering cannot be continued, once found. */
  #broken: string | null = null;

  /** Whether the records' replay is over another snapshot than the marker's (see `first`). */
  #otherSnapshot = false;
  #replayed = false;

  /** `snapshot`: the one loaded before the replay (its generation, where its read ended). */
  constructor(
    private readonly snapshot: { generation: number; changes?: unknown } = { generation: 0 },
    private readonly limits: ChangeLogLimits = CHANGE_LOG_LIMITS,
    private readonly warn: (message: string) => void = console.error,
  ) {}

  fresh(): string {
    this.#name = newChangeLogName();
    return `{"log":"${this.#name}","from":0,"exactAfter":0,"recent":[]}`;
  }

  first(record: Record<string, unknown> | undefined, setEntries = 0): void {
    if (record?.snapshot === undefined || record.changes === undefined) return;
    const mark = readMark(record.changes);
    if (typeof mark === "string") {
      this.#broken = `the log's first line names no numbering of changes it can continue (${mark})`;
      return;
    }
    this.#name = mark.log;
    this.#last = mark.from;
    this.#exactAfter = mark.exactAfter;
    // A crash between a snapshot's rename and the log's cut leaves a newer snapshot under the old
    // log: the count still holds, and the replay is exact past where that snapshot's read of the
    // store ended, which it says (of this numbering) in its closing line; else nothing is known
    // to be what its write saw.
    const marked = (record.snapshot as { generation?: unknown }).generation ?? 0;
    if (marked !== this.snapshot.generation) {
      const newer = this.snapshot.changes as { log?: unknown; exactAfter?: unknown } | undefined;
      const exact = newer?.exactAfter;
      if (
        newer?.log === mark.log && Number.isSafeInteger(exact) && (exact as number) >= mark.from
      ) {
        this.#exactAfter = exact as number;
      } else this.#otherSnapshot = true;
    }
    // Only the newest the log keeps are rebuilt (each asks the store for a version): a long log
    // replayed after a crash would pay for every change otherwise (+15 % on a 45 MB log).
    this.#keepAfter = Math.max(this.#exactAfter, mark.from + setEntries - this.limits.maxEntries);
    // Kept only when they join the replayed ones without a gap.
    this.#kept = this.#keepAfter === mark.exactAfter ? mark.recent : [];
  }

  /** Whether the replay met any change (a start then syncs the log before numbering them). */
  get replayed(): boolean {
    return this.#replayed;
  }

  set(key: string, stored: Stored, store: Store): void {
    this.#replayed = true;
    if (this.#name === null || this.#broken !== null) return;
    const seq = ++this.#last;
    if (seq <= this.#keepAfter || this.#otherSnapshot) return;
    const prev = store.versionOf(key) ?? null;
    // Past exactAfter the replay sees what the write saw: it replaced an older version.
    if (prev !== null && prev >= stored.version) {
      this.#broken = `change ${seq} (key ${JSON.stringify(key)}) replays over a version as new`;
      return;
    }
    this.#kept.push({ seq, key, stored, prev });
  }

  cut(unfinished: boolean): void {
    // A whole line that went bad may be a change readers were given: its number would be given
    // again to the next write. An unfinished one was never fsync'd, so never numbered.
    if (!unfinished) this.#broken ??= "the log's last record was damaged and cut";
  }

  /** The numbering cannot be continued, for `why` (the log cannot be synced at start, say). */
  abandon(why: string): void {
    this.#broken ??= why;
  }

  /** The change log to start with. */
  finish(): ChangeLog {
    if (this.#name !== null && this.#broken === null && this.#last < this.#exactAfter) {
      this.#broken = `the log holds ${this.#last} changes, its first line says ${this.#exactAfter}`;
    }
    if (this.#broken !== null) {
      this.warn(
        `Starting a new numbering of changes: ${this.#broken}. Watch streams read this node ` +
          "again from its first change, as after a restart that lost its change log.",
      );
    }
    if (this.#name === null || this.#broken !== null) {
      return new ChangeLog(newChangeLogName(), this.limits);
    }
    // Contiguous up to the last change, or none held: a reader behind takes the node as restarted.
    const kept = this.#otherSnapshot && this.#last > this.#exactAfter ? [] : this.#kept;
    return ChangeLog.continued(this.#name, this.#last, kept, this.limits);
  }
}
