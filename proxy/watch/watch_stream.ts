/**
 * One watcher's stream: reads every node's change log (long polls through
 * {@link ChangeFeed}), merges them ({@link WatchMerge}) and yields events with their cursor,
 * or an explicit `compacted` when what a cursor needs is gone (the client re-lists), or
 * `reset` when the stream cannot go on. It goes on across a node added or removed: the
 * barrier of proxy/watch/ring_move.ts, then keys count on their new replicas.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import { hashKey } from "../../shared/ring.ts";
import type { Topology, TopologySource } from "../cluster/topology.ts";
import { quorumOf } from "../replication/quorum.ts";
import type { ChangeFeed, ChangePage } from "./change_feed.ts";
import { type NodeRef, StaleEpochError } from "../nodes/node_client.ts";
import { type MapPoint, ringMove } from "./ring_move.ts";
import { encodeWatchCursor, type WatchCursor } from "./watch_cursor.ts";
import {
  addJoined,
  dropLeft,
  fetchBases,
  mapPointOf,
  nodesOf,
  pointOf,
  retargetAll,
  UNREACHED,
} from "./watch_epoch.ts";
import { type NodePos, WatchEvent, WatchMerge } from "./watch_merge.ts";

/** What a watch stream needs. */
export interface WatchStreamDeps {
  topology: TopologySource;
  feed: Pick<ChangeFeed, "page" | "versionsAt">;
  /** How long a node holds a read open waiting for a change, in ms (default 5000). */
  waitMs?: number;
  /** Keys the merge may track before the stream is reset (default 50,000). */
  maxTracked?: number;
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
  const opened = await openLatest(deps, prefix, cursor);
  if (opened.compacted) yield { kind: "compacted", reason: opened.compacted };
  let { topo, merge, barrier } = opened;
  while (!signal.aborted) {
    let end = barrier ? yield* settle(deps, topo, merge, prefix, barrier, signal) : undefined;
    if (end?.startsWith(STALE)) {
      const moved = await barrierOnNewer(deps, topo, barrier!, merge, end.slice(STALE.length));
      if (typeof moved !== "string") {
        ({ topo, barrier } = moved);
        continue;
      }
      end = moved;
    }
    barrier = undefined;
    end ??= yield* run(deps, topo, merge, prefix, signal);
    if (end !== undefined && end.startsWith("reset: ")) {
      return yield { kind: "reset", reason: end.slice(7) };
    }
    if (signal.aborted) return;
    const from = topo;
    topo = deps.topology.current();
    if (end === undefined) {
      const moved = await moveTo(deps, from, topo, merge);
      if (typeof moved === "string") end = moved;
      else barrier = moved;
    }
    if (end !== undefined) {
      yield { kind: "compacted", reason: end };
      ({ topo, merge } = await openLatest(deps, prefix, undefined));
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

/** What `settle` returns, with the node's URL, when a node holds a newer map than the stream. */
const STALE = "stale: ";

/**
 * Carries `merge` from map `from` to map `to`: the nodes it reads, and when the ring changed,
 * the keys' replicas (the merge pauses until the barrier it returns is read); or why it cannot.
 */
async function moveTo(
  deps: WatchStreamDeps,
  from: Topology,
  to: Topology,
  merge: WatchMerge,
): Promise<Barrier | string | undefined> {
  const move = ringMove(mapPointOf(from), mapPointOf(to), to.map.replicas);
  if (move.kind === "refused") return move.reason;
  addJoined(to, merge);
  if (move.kind === "same") {
    dropLeft(to, merge);
    return undefined;
  }
  const before = { nodes: nodesOf(from), oldRing: from.ring.nodeIds, from: mapPointOf(from) };
  return await holdFor(deps, before, to, merge);
}

/** Pauses `merge`, counts its keys on `to`'s replicas; the barrier then reads `to`'s nodes too. */
async function holdFor(
  deps: WatchStreamDeps,
  barrier: Barrier,
  to: Topology,
  merge: WatchMerge,
): Promise<Barrier> {
  merge.pause();
  await retargetAll(deps.feed, to, merge);
  // Every node of both maps is read up to its head before any key counts anew.
  const joined = nodesOf(to).filter((n) => !barrier.nodes.some((r) => r.id === n.id));
  return { ...barrier, nodes: [...barrier.nodes, ...joined] };
}

/**
 * A barrier's node at `url` holds a newer map than `topo`: loads it and carries the barrier
 * there (counted from the map before the barrier); or why the stream cannot go on.
 */
async function barrierOnNewer(
  deps: WatchStreamDeps,
  topo: Topology,
  barrier: Barrier,
  merge: WatchMerge,
  url: string,
): Promise<{ topo: Topology; barrier: Barrier } | string> {
  const to = await newerMap(deps, topo, [url]);
  if (to === undefined) {
    return `node ${url} holds a newer cluster map than epoch ${topo.map.epoch}, and it could not be loaded`;
  }
  const move = ringMove(barrier.from, mapPointOf(to), to.map.replicas);
  if (move.kind === "refused") return move.reason;
  addJoined(to, merge);
  return { topo: to, barrier: await holdFor(deps, barrier, to, merge) };
}

/** Loads the map of the first of `urls` that has one newer than `topo`'s; undefined if none. */
async function newerMap(
  deps: WatchStreamDeps,
  topo: Topology,
  urls: readonly string[],
): Promise<Topology | undefined> {
  for (const url of urls) {
    await deps.topology.refreshFrom(url).catch((err) => {
      if (!(err instanceof RingkvError)) throw err;
    });
    const now = deps.topology.current();
    if (now.map.epoch > topo.map.epoch) return now;
  }
  return undefined;
}

/** The positions a ring change's barrier reads up to: every node of both maps. */
interface Barrier {
  nodes: NodeRef[];
  /** The ring the majorities were counted on before (its unread nodes count as lost). */
  oldRing: readonly string[];
  /** The map the majorities were counted on before. */
  from: MapPoint;
}

/** What {@link open} hands the stream. */
interface Opened {
  merge: WatchMerge;
  compacted?: string;
  barrier?: Barrier;
}

/**
 * The head of node `n`'s log (its boot and last position), or undefined when it is down; a
 * node on a newer map throws {@link StaleEpochError} unless `staleIsDown`.
 */
function headOf(
  deps: WatchStreamDeps,
  n: NodeRef,
  epoch: number,
  prefix: string,
  staleIsDown = false,
) {
  return deps.feed.page(n, epoch, { prefix, waitMs: 0, limit: 1 }).catch((err) => {
    if (!(err instanceof RingkvError) || (err instanceof StaleEpochError && !staleIsDown)) {
      throw err;
    }
    return undefined;
  });
}

/**
 * {@link open} under the newest map the nodes hold: a cursor from a newer map than this
 * proxy's, or a node that answers stale_epoch, loads that map first (a few tries).
 */
async function openLatest(
  deps: WatchStreamDeps,
  prefix: string,
  cursor: WatchCursor | undefined,
): Promise<Opened & { topo: Topology }> {
  let topo = deps.topology.current();
  if (cursor !== undefined && cursor.epoch > topo.map.epoch) {
    topo = await newerMap(deps, topo, nodesOf(topo).map((n) => n.url)) ?? topo;
  }
  for (let attempt = 1;; attempt++) {
    try {
      return { topo, ...await open(deps, topo, prefix, cursor, attempt >= 3) };
    } catch (err) {
      if (!(err instanceof StaleEpochError)) throw err;
      topo = await newerMap(deps, topo, [err.node.url]) ?? topo;
    }
  }
}

/**
 * Positions to start from, and why the cursor could not be used, if it could not
 * (`staleIsDown`: a node on a newer map counts as down, else it throws).
 */
async function open(
  deps: WatchStreamDeps,
  topo: Topology,
  prefix: string,
  cursor: WatchCursor | undefined,
  staleIsDown: boolean,
): Promise<Opened> {
  const nodes = nodesOf(topo);
  const heads = await Promise.all(
    nodes.map((n) => headOf(deps, n, topo.map.epoch, prefix, staleIsDown)),
  );
  const fresh = new Map<string, NodePos>();
  nodes.forEach((n, i) => {
    const h = heads[i];
    fresh.set(n.id, h ? { boot: h.boot, low: h.last, read: h.last } : { ...UNREACHED });
  });
  const quorum = (n: number) => quorumOf(n);
  if (cursor === undefined) return { merge: new WatchMerge(fresh, quorum) };
  const resumed = resume(topo, nodes, heads, cursor);
  if (typeof resumed === "string") {
    return { merge: new WatchMerge(fresh, quorum), compacted: resumed };
  }
  const merge = new WatchMerge(resumed.positions, quorum, cursor.pending, resumed.lost);
  if (resumed.oldRing === undefined) return { merge };
  merge.pause();
  const from = { epoch: cursor.epoch, phase: cursor.phase, ring: resumed.oldRing };
  return { merge, barrier: { nodes, oldRing: resumed.oldRing, from } };
}

/**
 * The positions a cursor resumes from under `topo`, the ring it counted on when that ring
 * changed since, or why it cannot resume.
 */
function resume(
  topo: Topology,
  nodes: readonly NodeRef[],
  heads: readonly (ChangePage | undefined)[],
  cursor: WatchCursor,
): { positions: Map<string, NodePos>; lost: Set<string>; oldRing?: readonly string[] } | string {
  const since =
    `the cluster map changed since the cursor (epoch ${cursor.epoch}, now ${topo.map.epoch})`;
  const same = cursor.epoch === topo.map.epoch;
  const move = same
    ? undefined
    : cursor.ring === undefined
    ? { kind: "refused" as const, reason: "the cursor does not say which nodes it counted on" }
    : ringMove({ ...cursor, ring: cursor.ring }, mapPointOf(topo), topo.map.replicas);
  if (move?.kind === "refused") return `${since}: ${move.reason}`;
  const positions = new Map<string, NodePos>();
  const lost = new Set(cursor.lost);
  nodes.forEach((n, i) => {
    const was = cursor.nodes[n.id];
    const h = heads[i];
    if (was === undefined && !same) {
      positions.set(n.id, { ...UNREACHED }); // joined since the cursor: its whole log is read
    } else if (
      was !== undefined && h !== undefined && h.boot === was.boot && h.first - 1 <= was.low
    ) {
      positions.set(n.id, { boot: was.boot, low: was.low, read: was.low, at: was.read });
    } else {
      lost.add(n.id);
      positions.set(
        n.id,
        h ? { boot: h.boot, low: h.first - 1, read: h.first - 1 } : { ...UNREACHED },
      );
    }
  });
  // A node that left with changes this watch had not read.
  for (const id of Object.keys(cursor.nodes)) if (!positions.has(id)) lost.add(id);
  if (tooManyLost(topo, lost.size)) {
    return `${lost.size} node(s) lost changes this watch had not read (restarted, removed or too far behind)`;
  }
  return { positions, lost, ...(move?.kind === "moved" ? { oldRing: cursor.ring! } : {}) };
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
      if (got.error instanceof StaleEpochError) {
        // The node holds a newer map: load it (the loop then ends) rather than wait for the poll.
        if (await newerMap(deps, topo, [got.error.node.url]) !== undefined) return undefined;
      }
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
    // Only an event out now needs the point before it (held back, none goes out).
    const before = !merge.paused && merge.isWaiting(change.k) ? pointOf(topo, merge) : undefined;
    const end = yield* emit(topo, merge, change.k, before, merge.observe(id, change));
    if (end !== undefined) return end;
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

/** Yields `events` of `key` with their cursors (`before`: the point before they were due). */
function* emit(
  topo: Topology,
  merge: WatchMerge,
  key: string,
  before: WatchCursor | undefined,
  events: WatchEvent[],
): Generator<WatchItem, string | undefined> {
  for (let i = 0; i < events.length; i++) {
    const last = i === events.length - 1;
    const at = last ? pointOf(topo, merge) : before!;
    // An earlier event of a batch: resume right after it (later versions stay pending).
    const cursor = last ? at : { ...at, pending: { ...at.pending, [key]: events[i]!.version } };
    const text = encodeWatchCursor(cursor);
    if (text === undefined) {
      return "too many changes wait for a majority of replicas to fit a cursor";
    }
    yield { kind: "change", event: events[i]!, id: text };
  }
  return undefined;
}

/**
 * The barrier of a ring change (proxy/watch/ring_move.ts): reads the nodes of both maps up to
 * their heads with events held back, stops reading the nodes that left, then lets events out.
 */
async function* settle(
  deps: WatchStreamDeps,
  topo: Topology,
  merge: WatchMerge,
  prefix: string,
  barrier: Barrier,
  signal: AbortSignal,
): AsyncGenerator<WatchItem, string | undefined> {
  const end = yield* drain(deps, topo, merge, prefix, barrier, signal);
  if (end !== undefined || signal.aborted) return end;
  if (tooManyLost(topo, merge.lost.size)) {
    return `${merge.lost.size} node(s) lost changes this watch had not read (restarted, removed or down when the cluster map changed)`;
  }
  dropLeft(topo, merge);
  for (const key of merge.resume()) {
    const before = pointOf(topo, merge);
    const end = yield* emit(topo, merge, key, before, merge.recount(key));
    if (end !== undefined) return end;
  }
  return undefined;
}

/** Reads each barrier node up to the head it has now; an old one that cannot be read is lost. */
async function* drain(
  deps: WatchStreamDeps,
  topo: Topology,
  merge: WatchMerge,
  prefix: string,
  barrier: Barrier,
  signal: AbortSignal,
): AsyncGenerator<WatchItem, string | undefined> {
  try {
    const heads = await Promise.all(
      barrier.nodes.map((n) => headOf(deps, n, topo.map.epoch, prefix)),
    );
    for (const [i, n] of barrier.nodes.entries()) {
      const pos = merge.positions.get(n.id)!; // the barrier's nodes are dropped only after it
      const head = heads[i];
      // Down, or never reached by this watch: what it logged before the change is unread.
      const read = head !== undefined && pos.boot !== "" &&
        (yield* readTo(deps, topo, merge, prefix, n, head, signal));
      if (typeof read === "string") return read;
      if (read !== true && barrier.oldRing.includes(n.id)) merge.lost.add(n.id);
    }
  } catch (err) {
    // A node on a newer map is not down: the barrier goes on under that map.
    if (!(err instanceof StaleEpochError)) throw err;
    return STALE + err.node.url;
  }
  return undefined;
}

/**
 * Reads node `n` up to `head`: true once there (or once it restarted: counted lost), false
 * when it fails, or why the stream must end.
 */
async function* readTo(
  deps: WatchStreamDeps,
  topo: Topology,
  merge: WatchMerge,
  prefix: string,
  n: NodeRef,
  head: ChangePage,
  signal: AbortSignal,
): AsyncGenerator<WatchItem, string | boolean> {
  const at = merge.positions.get(n.id)!;
  // Restarted since last read: what it logged before is gone unread, which settle must count
  // before any held event goes out; its new log is read up to the head like any other.
  if (at.boot !== head.boot) merge.restarted(n.id, head.boot, head.first, at.boot !== "");
  for (let round = 0; round < 100_000 && !signal.aborted; round++) {
    const pos = merge.positions.get(n.id)!;
    // A restart while reading was counted by take.
    if (pos.boot !== head.boot || pos.read >= head.last) return true;
    const q = { boot: pos.boot, after: pos.read, prefix, waitMs: 0, limit: PAGE };
    const page = await deps.feed.page(n, topo.map.epoch, q).catch((err) => {
      if (!(err instanceof RingkvError) || err instanceof StaleEpochError) throw err;
      return undefined;
    });
    if (page === undefined) return false;
    const end = yield* take(deps, topo, merge, n.id, page);
    if (end !== undefined) return end;
  }
  return false;
}

/** Asks each replica of the new keys which version it holds at the merge's position. */
async function startKeys(deps: WatchStreamDeps, topo: Topology, merge: WatchMerge, keys: string[]) {
  const fresh = keys.filter((k) => merge.needsStart(k));
  if (fresh.length === 0) return;
  const owners = await Promise.all(
    fresh.map(async (k) => topo.ring.ownersOf(await hashKey(k), topo.map.replicas)),
  );
  const byNode = new Map<string, string[]>();
  fresh.forEach((k, i) => {
    for (const id of owners[i]!) byNode.set(id, [...(byNode.get(id) ?? []), k]);
  });
  const bases = await fetchBases(deps.feed, topo, merge, byNode);
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
