/**
 * One watcher's stream: reads every node's change log (long polls through
 * {@link ChangeFeed}), merges them ({@link WatchMerge}) and yields events with their cursor,
 * or an explicit `compacted` when what a cursor needs is gone (the client re-lists), or
 * `reset` when the stream cannot go on. It goes on across a node added or removed: the
 * barrier of proxy/watch/watch_barrier.ts, then keys count on their new replicas. What it does
 * with each page: proxy/watch/watch_apply.ts.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import type { Topology } from "../cluster/topology.ts";
import { quorumOf } from "../replication/quorum.ts";
import type { ChangePage } from "./change_feed.ts";
import { type NodeRef, StaleEpochError } from "../nodes/node_client.ts";
import { ringMove } from "./ring_move.ts";
import type { WatchCursor } from "./watch_cursor.ts";
import { mapPointOf, nodesOf, pointOf, UNREACHED } from "./watch_epoch.ts";
import { type NodePos, WatchMerge } from "./watch_merge.ts";
import {
  type AppliedPage,
  headOf,
  lostNodes,
  type NodePage,
  PAGE,
  STEP_MS,
  takeAll,
  tooManyLost,
  type WatchItem,
  type WatchStreamDeps,
} from "./watch_apply.ts";
import { type Barrier, barrierOnNewer, moveTo, newerMap, settle, STALE } from "./watch_barrier.ts";
import { abortableSleep } from "../../shared/abortable_sleep.ts";

export type { WatchItem, WatchStreamDeps } from "./watch_apply.ts";

/** A node's answer to a read after position `after`. */
type Polled = { id: string; after: number; page?: ChangePage; error?: RingkvError };

/**
 * Streams events under `prefix` after `cursor` (none: from now) until `signal`. `started` is
 * called once the stream has read where it starts in each node's log: "now" is then, every
 * change a node logs after it comes (the watch route answers only after it: docs/api.md).
 */
export async function* watchStream(
  deps: WatchStreamDeps,
  prefix: string,
  cursor: WatchCursor | undefined,
  signal: AbortSignal,
  started?: () => void,
): AsyncGenerator<WatchItem> {
  const opened = await openLatest(deps, prefix, cursor);
  started?.();
  let { topo, merge, barrier } = opened;
  if (opened.compacted) yield compacted(opened.compacted, topo, merge);
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
      ({ topo, merge } = await openLatest(deps, prefix, undefined));
      yield compacted(end, topo, merge);
    }
  }
}

/**
 * The `compacted` item of a stream that goes on from the present with `merge`: its id is that
 * point, so a client that reconnects before the next event is not told `compacted` again.
 */
function compacted(reason: string, topo: Topology, merge: WatchMerge): WatchItem {
  const id = merge.cursorText.encode(pointOf(topo, merge));
  return id === undefined ? { kind: "compacted", reason } : { kind: "compacted", reason, id };
}

/** What {@link open} hands the stream. */
interface Opened {
  merge: WatchMerge;
  compacted?: string;
  barrier?: Barrier;
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
      // Joined since the cursor: what it still logs is read, but it may have restarted or
      // dropped its oldest changes since it joined, which no head shows: it counts as lost.
      lost.add(n.id);
      positions.set(
        n.id,
        h ? { boot: h.boot, low: h.first - 1, read: h.first - 1 } : { ...UNREACHED },
      );
    } else if (
      was !== undefined && (h === undefined ? was.boot !== "" : h.boot === was.boot) &&
      // A position past the head: a log that never got there (a forged cursor, a directory put
      // back from a backup) numbers its next changes at positions this cursor counts as read.
      (h === undefined || (h.first - 1 <= was.low && was.read <= h.last))
    ) {
      // Not answering now (down, restarting) is not lost: its log keeps its numbering across a
      // restart (node/engine/change_recovery.ts), and once it answers, a new numbering or a log
      // cut past the position makes it lost then (watch_apply.ts). Lost here, a `kv watch` that
      // reconnected during each restart of a rolling one said `compacted` at the second (QA).
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
    return lostNodes(lost.size);
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
        (page): Polled => ({ id, after: q.after, page }),
        (error): Polled => {
          if (!(error instanceof RingkvError)) throw error;
          return { id, after: q.after, error };
        },
      );
    // A retry's wait ends early when the stream ends: then no read goes out (a read through the
    // shared feed would keep the node's poller running for nothing).
    const ended = (): Polled => ({
      id,
      after: q.after,
      error: new RingkvError("unavailable", "The watch ended"),
    });
    answers.add(
      delayMs > 0
        ? abortableSleep(delayMs, signal).then(() => signal.aborted ? ended() : call())
        : call(),
    );
  };
  for (const id of nodes.keys()) poll(id);
  try {
    while (!signal.aborted) {
      if (deps.topology.current().map.epoch !== epoch) return undefined;
      const pages: NodePage[] = [];
      for (const got of await answers.next(deps.stepMs ?? STEP_MS)) {
        if (got.error instanceof StaleEpochError) {
          // The node holds a newer map: load it (the loop then ends) rather than wait for the poll.
          if (await newerMap(deps, topo, [got.error.node.url]) !== undefined) return undefined;
        }
        if (got.error === undefined) pages.push({ id: got.id, page: got.page!, after: got.after });
        else poll(got.id, 500);
      }
      if (pages.length === 0) continue;
      let taken: AppliedPage;
      try {
        taken = await takeAll(deps, topo, merge, pages, signal);
      } catch (err) {
        if (!(err instanceof StaleEpochError)) throw err;
        // A node asked about a key is on a newer map: move there; these pages are read again.
        if (await newerMap(deps, topo, [err.node.url]) !== undefined) return undefined;
        for (const { id } of pages) poll(id, 500);
        continue;
      }
      const { changes, end } = taken;
      if (changes.length > 0) yield { kind: "changes", changes };
      if (end !== undefined) return end;
      for (const { id } of pages) poll(id);
    }
  } finally {
    answers.close();
  }
  return undefined;
}

/**
 * The nodes' answers in the order they come. The loop waits on this queue, not on a race of
 * the pending calls (and of the abort): each race would leave a reaction on every call still
 * pending, each holding the page its turn took, for as long as those calls (the abort: the
 * stream) live.
 */
class Answers {
  #ready: Polled[] = [];
  /** Calls added and not answered yet. */
  #pending = 0;
  #failed: { error: unknown } | undefined;
  #wake: (() => void) | undefined;
  readonly #arrived = () => this.#wake?.();

  constructor(private readonly signal: AbortSignal) {
    signal.addEventListener("abort", this.#arrived);
  }

  /** Queues the answer of a call (a call that fails unexpectedly fails {@link next}). */
  add(call: Promise<Polled>): void {
    this.#pending++;
    void call.then((got) => {
      this.#pending--;
      this.#ready.push(got);
      this.#arrived();
    }, (error) => {
      this.#pending--;
      this.#failed ??= { error };
      this.#arrived();
    });
  }

  /**
   * The answers not taken, once there is one, and those that come within `stepMs` after it
   * while calls are pending (the nodes' pages of one moment, merged in step); none once the
   * stream is aborted.
   */
  async next(stepMs: number): Promise<Polled[]> {
    if (this.#ready.length === 0) await this.#until(undefined);
    if (this.#ready.length > 0 && this.#pending > 0 && stepMs > 0) {
      const deadline = performance.now() + stepMs;
      // Bounded by the calls pending: each arrival wakes it once.
      while (this.#pending > 0 && this.#failed === undefined && !this.signal.aborted) {
        const left = deadline - performance.now();
        if (left <= 0 || !(await this.#until(left))) break;
      }
    }
    if (this.#failed !== undefined) throw this.#failed.error;
    const ready = this.#ready;
    this.#ready = [];
    return ready;
  }

  /** Waits for the next arrival (or failure, or abort), up to `ms`; false when it timed out. */
  async #until(ms: number | undefined): Promise<boolean> {
    if (this.#failed !== undefined || this.signal.aborted) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arrived = await new Promise<boolean>((resolve) => {
      this.#wake = () => resolve(true);
      if (ms !== undefined) timer = setTimeout(() => resolve(false), ms);
    });
    clearTimeout(timer);
    this.#wake = undefined;
    return arrived;
  }

  /** Stops listening for the abort. */
  close(): void {
    this.signal.removeEventListener("abort", this.#arrived);
  }
}
