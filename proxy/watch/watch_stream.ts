/**
 * One watcher's stream: reads every node's change log (long polls through
 * {@link ChangeFeed}), merges them ({@link WatchMerge}) and yields events with their cursor,
 * or an explicit `compacted` when what a cursor needs is gone (the client re-lists) or the
 * cluster map changed, or `reset` when the stream cannot go on.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import type { KeyPoints } from "../../shared/key_points.ts";
import { hashKey } from "../../shared/ring.ts";
import type { Topology, TopologySource } from "../cluster/topology.ts";
import { quorumOf } from "../replication/quorum.ts";
import type { ChangeFeed, ChangePage } from "./change_feed.ts";
import { encodeWatchCursor, type WatchCursor } from "./watch_cursor.ts";
import { basePosition, type Bases, type NodePos, WatchEvent, WatchMerge } from "./watch_merge.ts";

/** What a watch stream needs. */
export interface WatchStreamDeps {
  topology: TopologySource;
  feed: Pick<ChangeFeed, "page" | "versionsAt">;
  /** How long a node holds a read open waiting for a change, in ms (default 5000). */
  waitMs?: number;
  /** Keys the merge may track before the stream is reset (default 50,000). */
  maxTracked?: number;
  /** The proxy's memo of keys' ring points (a key just written is there): no digest per stream. */
  points?: Pick<KeyPoints, "pointOf">;
}

/** What a stream yields. */
export type WatchItem =
  | { kind: "change"; event: WatchEvent; id: string }
  | { kind: "compacted"; reason: string }
  | { kind: "reset"; reason: string };

type Polled = { id: string; page?: ChangePage; error?: RingkvError };

const PAGE = 500;
/** Keys whose replicas all caught up that a stream keeps tracking (saves questions). */
const SETTLED_KEEP = 10_000;

/** Streams events under `prefix` after `cursor` (none: from now) until `signal`. */
export async function* watchStream(
  deps: WatchStreamDeps,
  prefix: string,
  cursor: WatchCursor | undefined,
  signal: AbortSignal,
): AsyncGenerator<WatchItem> {
  while (!signal.aborted) {
    const topo = deps.topology.current();
    const opened = await open(deps, topo, prefix, cursor);
    if (opened.compacted) yield { kind: "compacted", reason: opened.compacted };
    cursor = undefined;
    const end = yield* run(deps, topo, opened.merge, prefix, signal);
    if (end !== undefined && end.startsWith("reset: ")) {
      return yield { kind: "reset", reason: end.slice(7) };
    }
    if (!signal.aborted) {
      yield {
        kind: "compacted",
        reason: end ?? "the cluster map changed (a node was added or removed)",
      };
    }
  }
}

/**
 * Whether so many nodes lost unread changes over the watch's life that a key's acknowledged
 * version may be on none of the others (a majority of its replicas).
 */
function tooManyLost(topo: Topology, lost: number): boolean {
  return lost >= quorumOf(Math.min(topo.map.replicas, topo.ring.nodeIds.length));
}

function nodesOf(topo: Topology): { id: string; url: string }[] {
  const ids = new Set([...topo.ring.nodeIds, ...(topo.nextRing?.nodeIds ?? [])]);
  return [...ids].map((id) => ({ id, url: topo.nodeUrl(id) ?? "" }));
}

/** Positions to start from, and why the cursor could not be used, if it could not. */
async function open(
  deps: WatchStreamDeps,
  topo: Topology,
  prefix: string,
  cursor: WatchCursor | undefined,
): Promise<{ merge: WatchMerge; compacted?: string }> {
  const nodes = nodesOf(topo);
  const heads = await Promise.all(
    nodes.map((n) =>
      deps.feed.page(n, topo.map.epoch, { prefix, waitMs: 0, limit: 1 }).catch((err) => {
        if (!(err instanceof RingkvError)) throw err;
        return undefined;
      })
    ),
  );
  const fresh = new Map<string, NodePos>();
  nodes.forEach((n, i) => {
    const h = heads[i];
    fresh.set(
      n.id,
      h ? { boot: h.boot, low: h.last, read: h.last } : { boot: "", low: 0, read: 0 },
    );
  });
  const quorum = (n: number) => quorumOf(n);
  if (cursor === undefined) return { merge: new WatchMerge(fresh, quorum) };
  if (cursor.epoch !== topo.map.epoch) {
    const why =
      `the cluster map changed since the cursor (epoch ${cursor.epoch}, now ${topo.map.epoch})`;
    return { merge: new WatchMerge(fresh, quorum), compacted: why };
  }
  const resumed = new Map<string, NodePos>();
  const lost = new Set(cursor.lost);
  nodes.forEach((n, i) => {
    const was = cursor.nodes[n.id];
    const h = heads[i];
    if (was !== undefined && h !== undefined && h.boot === was.boot && h.first - 1 <= was.low) {
      resumed.set(n.id, { boot: was.boot, low: was.low, read: was.low, at: was.read });
    } else {
      lost.add(n.id);
      resumed.set(
        n.id,
        h ? { boot: h.boot, low: h.first - 1, read: h.first - 1 } : fresh.get(n.id)!,
      );
    }
  });
  if (tooManyLost(topo, lost.size)) {
    const why =
      `${lost.size} node(s) lost changes this watch had not read (restarted or too far behind)`;
    return { merge: new WatchMerge(fresh, quorum), compacted: why };
  }
  return { merge: new WatchMerge(resumed, quorum, cursor.pending, lost) };
}

/** Reads and merges until the map changes (undefined) or the stream must end (why). */
async function* run(
  deps: WatchStreamDeps,
  topo: Topology,
  merge: WatchMerge,
  prefix: string,
  signal: AbortSignal,
): AsyncGenerator<WatchItem, string | undefined> {
  const epoch = topo.map.epoch;
  const waitMs = deps.waitMs ?? 5000;
  const nodes = new Map(nodesOf(topo).map((n) => [n.id, n]));
  const answers = new Answers(signal);
  const poll = (id: string, delayMs = 0) => {
    const pos = merge.positions.get(id)!;
    const q = { boot: pos.boot, after: pos.read, prefix, waitMs, limit: PAGE };
    const call = () =>
      deps.feed.page(nodes.get(id)!, epoch, q).then(
        (page): Polled => ({ id, page }),
        (error): Polled => {
          if (!(error instanceof RingkvError)) throw error;
          return { id, error };
        },
      );
    answers.add(delayMs > 0 ? sleep(delayMs, signal).then(call) : call());
  };
  for (const id of nodes.keys()) poll(id);
  try {
    while (!signal.aborted) {
      if (deps.topology.current().map.epoch !== epoch) return undefined;
      const got = await answers.next();
      if (got === undefined) continue;
      if (got.error !== undefined) {
        poll(got.id, 500);
        continue;
      }
      const end = yield* take(deps, topo, merge, got.id, got.page!);
      if (end !== undefined) return end;
      poll(got.id);
    }
  } finally {
    answers.close();
  }
  return undefined;
}

/** Handles one page of node `id`: a log that is gone, or changes to merge. */
async function* take(
  deps: WatchStreamDeps,
  topo: Topology,
  merge: WatchMerge,
  id: string,
  page: ChangePage,
): AsyncGenerator<WatchItem, string | undefined> {
  const pos = merge.positions.get(id)!;
  if (page.gone || page.boot !== pos.boot) {
    // A node this watch never reached (boot "") lost nothing it had to read.
    merge.restarted(id, page.boot, page.first, pos.boot !== "");
    if (tooManyLost(topo, merge.lost.size)) {
      return `${merge.lost.size} node(s) lost changes this watch had not read (restarted or too far behind)`;
    }
    return undefined;
  }
  return yield* apply(deps, topo, merge, id, page);
}

async function* apply(
  deps: WatchStreamDeps,
  topo: Topology,
  merge: WatchMerge,
  id: string,
  page: ChangePage,
): AsyncGenerator<WatchItem, string | undefined> {
  const changes = page.changes ?? [];
  await startKeys(deps, topo, merge, [...new Set(changes.map((c) => c.k))]);
  for (const change of changes) {
    const before = merge.isWaiting(change.k) ? point(topo, merge) : undefined;
    const events = merge.observe(id, change);
    for (let i = 0; i < events.length; i++) {
      const last = i === events.length - 1;
      const at = last ? point(topo, merge) : before!;
      // An earlier event of a batch: resume right after it (later versions stay pending).
      const cursor = last
        ? at
        : { ...at, pending: { ...at.pending, [change.k]: events[i]!.version } };
      const text = encodeWatchCursor(cursor);
      if (text === undefined) {
        return "too many changes wait for a majority of replicas to fit a cursor";
      }
      yield { kind: "change", event: events[i]!, id: text };
    }
  }
  merge.advance(id, page.last);
  merge.forgetSettled(SETTLED_KEEP);
  if (merge.trackedKeys > (deps.maxTracked ?? 50_000)) {
    return `reset: more than ${
      deps.maxTracked ?? 50_000
    } keys are tracked, waiting for a replica to catch up`;
  }
  return undefined;
}

function point(topo: Topology, merge: WatchMerge): WatchCursor {
  return { epoch: topo.map.epoch, ...merge.resumePoint() };
}

/** Asks each replica of the new keys which version it holds at the merge's position. */
async function startKeys(deps: WatchStreamDeps, topo: Topology, merge: WatchMerge, keys: string[]) {
  const fresh = keys.filter((k) => merge.needsStart(k));
  if (fresh.length === 0) return;
  const owners = await Promise.all(
    fresh.map(async (k) =>
      topo.ring.ownersOf(await (deps.points?.pointOf(k) ?? hashKey(k)), topo.map.replicas)
    ),
  );
  const byNode = new Map<string, string[]>();
  fresh.forEach((k, i) => {
    for (const id of owners[i]!) byNode.set(id, [...(byNode.get(id) ?? []), k]);
  });
  const bases: Bases = new Map();
  await Promise.all([...byNode].map(async ([id, ks]) => {
    const pos = merge.positions.get(id);
    const url = topo.nodeUrl(id);
    if (pos === undefined || url === undefined || pos.boot === "") return;
    const got = await deps.feed.versionsAt(
      { id, url },
      topo.map.epoch,
      pos.boot,
      basePosition(pos),
      ks,
    )
      .catch((err) => {
        if (!(err instanceof RingkvError)) throw err;
        return undefined;
      });
    bases.set(id, got);
  }));
  fresh.forEach((k, i) => merge.start(k, owners[i]!, bases));
}

/**
 * The nodes' answers in the order they come. The loop waits on this queue, not on a race of
 * the pending calls (and of the abort): each race would leave a reaction on every call still
 * pending, each holding the page its turn took, for as long as those calls (the abort: the
 * stream) live.
 */
class Answers {
  readonly #ready: Polled[] = [];
  #failed: { error: unknown } | undefined;
  #wake: (() => void) | undefined;
  readonly #arrived = () => this.#wake?.();

  constructor(private readonly signal: AbortSignal) {
    signal.addEventListener("abort", this.#arrived);
  }

  /** Queues the answer of a call (a call that fails unexpectedly fails {@link next}). */
  add(call: Promise<Polled>): void {
    void call.then((got) => {
      this.#ready.push(got);
      this.#arrived();
    }, (error) => {
      this.#failed ??= { error };
      this.#arrived();
    });
  }

  /** The oldest answer not taken, once there is one; undefined once the stream is aborted. */
  async next(): Promise<Polled | undefined> {
    if (this.#ready.length === 0 && this.#failed === undefined && !this.signal.aborted) {
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
    if (this.#failed !== undefined) throw this.#failed.error;
    return this.#ready.shift();
  }

  /** Stops listening for the abort. */
  close(): void {
    this.signal.removeEventListener("abort", this.#arrived);
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    // The listener goes when the timer fires: a stream retries a down node for its whole life.
    const done = () => {
      clearTimeout(timer);
      signal.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener("abort", done, { once: true });
  });
}
