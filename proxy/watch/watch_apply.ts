/**
 * What a watch stream does with a page of a node's change log: merges its changes and yields
 * the events that are due with their cursors (proxy/watch/watch_merge.ts), or says why the
 * stream must end. Shared by the stream's reads (watch_stream.ts) and a ring change's barrier
 * (watch_barrier.ts).
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import type { KeyPoints } from "../../shared/key_points.ts";
import { hashKey } from "../../shared/ring.ts";
import type { Topology, TopologySource } from "../cluster/topology.ts";
import { quorumOf } from "../replication/quorum.ts";
import type { WireChange } from "../../node/http/change_routes.ts";
import type { ChangeFeed, ChangePage } from "./change_feed.ts";
import { type NodeRef, StaleEpochError } from "../nodes/node_client.ts";
import type { WatchCursor } from "./watch_cursor.ts";
import { fetchBases, pointOf } from "./watch_epoch.ts";
import { basePosition, type Bases, type WatchEvent, type WatchMerge } from "./watch_merge.ts";
import { SLICE_MS, TurnBudget } from "./turn_budget.ts";

/** What a watch stream needs. */
export interface WatchStreamDeps {
  topology: TopologySource;
  feed: Pick<ChangeFeed, "page" | "versionsAt">;
  /** How long a node holds a read open waiting for a change, in ms (default 5000). */
  waitMs?: number;
  /** Keys the merge may track before the stream is reset (default 50,000). */
  maxTracked?: number;
  /**
   * Characters of values the merge may hold waiting for a majority before the stream is reset
   * (default {@link MAX_HELD_CHARS}): a replica far behind under large values held many.
   */
  maxHeldChars?: number;
  /** The proxy's memo of keys' ring points (a key just written is there): no digest per stream. */
  points?: Pick<KeyPoints, "pointOf">;
  /** How long a stream waits for the other nodes' pages after one came, in ms ({@link STEP_MS}). */
  stepMs?: number;
  /** How long a page's merge holds the thread before it lets the loop turn, in ms ({@link SLICE_MS}). */
  sliceMs?: number;
}

/**
 * How long a stream waits, after one node's page came, for the other nodes' pages of the same
 * moment (their pollers poll in step: proxy/watch/shared_feed.ts), to merge them together.
 */
export const STEP_MS = 5;

/** The default of {@link WatchStreamDeps.maxHeldChars}: 64 Mi characters (2 bytes each at most). */
export const MAX_HELD_CHARS = 64 << 20;

/** A change event with its cursor (the SSE `id:` to resume right after it). */
export interface WatchChange {
  event: WatchEvent;
  id: string;
}

/**
 * What a stream yields: the events of a page as one item (each item costs every generator it
 * passes a promise and a turn), or the stream's `compacted` / `reset`.
 */
export type WatchItem =
  | { kind: "changes"; changes: WatchChange[] }
  | {
    kind: "compacted";
    reason: string;
    /** The cursor of the present: a client that reconnects before the next event resumes here. */
    id?: string;
  }
  | { kind: "reset"; reason: string };

/** The events a page made due (in order), and why the stream must end, if it must. */
export interface AppliedPage {
  changes: WatchChange[];
  end?: string;
}

/** Changes merged between two looks at the clock (a look costs about as much as a change). */
const CHECK_EVERY = 8;
/** Changes a read asks a node for at once. */
export const PAGE = 500;
/** Keys whose replicas all caught up that a stream keeps tracking (saves questions). */
const SETTLED_KEEP = 10_000;

/**
 * Why a node counts as lost, in every `compacted` reason that counts them: an operator reading
 * it after only adding or removing nodes must find that cause too (QA: the reasons named restarts
 * alone, in three wordings).
 */
export const LOST_CAUSES =
  "restarted on a new numbering of its log, too far behind, joined or left while the watch was " +
  "away, or down when the cluster map changed";

/** The `compacted` reason of a stream whose lost nodes reached a majority. */
export function lostNodes(lost: number): string {
  return `${lost} node(s) lost changes this watch had not read (${LOST_CAUSES})`;
}

/**
 * Whether so many nodes lost unread changes over the watch's life that a key's acknowledged
 * version may be on none of the others (a majority of its replicas).
 */
export function tooManyLost(topo: Topology, lost: number): boolean {
  return lost >= quorumOf(Math.min(topo.map.replicas, topo.ring.nodeIds.length));
}

/**
 * The head of node `n`'s log (its boot and last position), or undefined when it is down; a
 * node on a newer map throws {@link StaleEpochError} unless `staleIsDown`.
 */
export function headOf(
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

/** A page of node `id`'s log. */
export interface NodePage {
  id: string;
  page: ChangePage;
  /**
   * The position the page was read after, when known: a page read right after the merge's
   * position answers its keys' versions there ({@link pageBases}).
   */
  after?: number;
}

/**
 * Handles pages of several nodes read together: logs that are gone, then the changes of the
 * others merged in step ({@link interleave}).
 */
export async function takeAll(
  deps: WatchStreamDeps,
  topo: Topology,
  merge: WatchMerge,
  pages: readonly NodePage[],
  signal?: AbortSignal,
): Promise<AppliedPage> {
  const current: NodePage[] = [];
  for (const read of pages) {
    const { id, page } = read;
    const pos = merge.positions.get(id)!;
    if (!page.gone && page.boot === pos.boot) {
      current.push(read);
      continue;
    }
    merge.restarted(id, page.boot, page.first);
    if (tooManyLost(topo, merge.lost.size)) {
      return { changes: [], end: lostNodes(merge.lost.size) };
    }
  }
  return current.length === 0 ? { changes: [] } : await apply(deps, topo, merge, current, signal);
}

/**
 * The changes of `pages` in one order, each page's in its own: in step by their share of
 * their page, so a write's copies on its replicas come close together and few keys wait
 * for a majority at each event (every cursor lists those keys).
 */
export function interleave(pages: readonly NodePage[]): { id: string; change: WireChange }[] {
  const out: { id: string; change: WireChange; at: number }[] = [];
  for (const { id, page } of pages) {
    const changes = page.changes ?? [];
    changes.forEach((change, i) => out.push({ id, change, at: (i + 0.5) / changes.length }));
  }
  // A stable sort: equal shares keep the pages' order.
  return out.sort((a, b) => a.at - b.at);
}

/** Merges the pages' changes into the events due, in order; or why the stream must end. */
async function apply(
  deps: WatchStreamDeps,
  topo: Topology,
  merge: WatchMerge,
  pages: readonly NodePage[],
  signal?: AbortSignal,
): Promise<AppliedPage> {
  const changes = pages.length === 1
    ? (pages[0]!.page.changes ?? []).map((change) => ({ id: pages[0]!.id, change }))
    : interleave(pages);
  const unknown = await startKeys(
    deps,
    topo,
    merge,
    [...new Set(changes.map((c) => c.change.k))],
    pages,
  );
  if (unknown !== undefined) return { changes: [], end: unknown };
  const out: WatchChange[] = [];
  // In slices: the PUTs' requests and node answers are served between them. Only this
  // stream's loop, waiting here, touches the merge, so a pause changes no result.
  const budget = new TurnBudget(deps.sliceMs ?? SLICE_MS);
  for (let i = 0; i < changes.length; i++) {
    if (i % CHECK_EVERY === CHECK_EVERY - 1 && budget.spent()) {
      await budget.yield();
      // A stream that ended meanwhile (its client gone): nothing reads the rest.
      if (signal?.aborted) return { changes: out, end: "aborted" };
    }
    const { id, change } = changes[i]!;
    // Only an event out now needs the point before it (held back, none goes out).
    const several = !merge.paused && merge.maySendSeveral(change.k, change.ver);
    const before = several ? pointOf(topo, merge) : undefined;
    const end = emit(topo, merge, change.k, before, merge.observe(id, change), out);
    if (end !== undefined) return { changes: out, end };
  }
  for (const { id, page } of pages) merge.advance(id, page.last);
  merge.forgetSettled(SETTLED_KEEP);
  if (merge.trackedKeys > (deps.maxTracked ?? 50_000)) {
    const end = `reset: more than ${
      deps.maxTracked ?? 50_000
    } keys are tracked, waiting for a replica to catch up`;
    return { changes: out, end };
  }
  const maxHeld = deps.maxHeldChars ?? MAX_HELD_CHARS;
  if (merge.heldChars > maxHeld) {
    const end = `reset: more than ${
      maxHeld >> 20
    } Mi characters of values wait for a majority of their replicas, waiting for a replica to catch up`;
    return { changes: out, end };
  }
  return { changes: out };
}

/**
 * Appends `events` of `key` to `out` with their cursors (`before`: the point before they were
 * due); or why the stream must end (a cursor would be too long).
 */
export function emit(
  topo: Topology,
  merge: WatchMerge,
  key: string,
  before: WatchCursor | undefined,
  events: WatchEvent[],
  out: WatchChange[],
): string | undefined {
  for (let i = 0; i < events.length; i++) {
    const last = i === events.length - 1;
    // The last event's cursor is encoded at once: the merge's live state will do.
    // An earlier event of a batch: resume right after it (later versions stay pending).
    const text = last
      ? merge.cursorText.encode(pointOf(topo, merge, true))
      : merge.cursorText.encode(before!, key, events[i]!.version);
    if (text === undefined) {
      return "too many changes wait for a majority of replicas to fit a cursor";
    }
    out.push({ event: events[i]!, id: text });
  }
  return undefined;
}

/**
 * Starts the new keys from the versions each replica held at the merge's position: from the
 * pages in hand where they show it ({@link pageBases}), else asked of the node. Why the stream
 * must say `compacted`, when a key cannot be started (WatchMerge.start).
 */
async function startKeys(
  deps: WatchStreamDeps,
  topo: Topology,
  merge: WatchMerge,
  keys: string[],
  pages: readonly NodePage[],
): Promise<string | undefined> {
  const fresh = keys.filter((k) => merge.needsStart(k));
  if (fresh.length === 0) return;
  // A key the proxy wrote has its point remembered: awaited only when one is not.
  let points = fresh.map((k) => deps.points?.pointOf(k) ?? hashKey(k));
  if (points.some((p) => typeof p !== "number")) points = await Promise.all(points);
  const owners = points.map((p) => topo.ring.ownersOf(p as number, topo.map.replicas));
  const inHand = pageBases(merge, pages, new Set(fresh));
  const byNode = new Map<string, string[]>();
  fresh.forEach((k, i) => {
    for (const id of owners[i]!) {
      if (inHand.get(id)?.has(k)) continue;
      const keys = byNode.get(id);
      if (keys === undefined) byNode.set(id, [k]);
      else keys.push(k);
    }
  });
  let stale: StaleEpochError | undefined;
  const bases: Bases = byNode.size === 0
    ? new Map()
    : await fetchBases(deps.feed, topo, merge, byNode, (err) => stale ??= err);
  // A replica already on a newer map than the stream's (its pages came through the shared
  // buffer, which polls under the newest map any stream knows): no key starts without its word;
  // the stream moves to that map first and reads these pages again there (QA: compacted, "too
  // few of its replicas answered", while a node was added). Nothing of the merge changed yet.
  if (stale !== undefined) throw stale;
  // Asked about keys its page did not show, and no answer (down, or on a newer map).
  const silent = [...byNode.keys()].filter((id) => bases.get(id) === undefined);
  for (const [id, known] of inHand) {
    // A node asked about some keys too: its answer joins what its page showed.
    for (const [k, v] of Object.entries(bases.get(id) ?? {})) known.set(k, v);
    bases.set(id, known);
  }
  const unknown = fresh.filter((k, i) => !merge.start(k, owners[i]!, toldOf(bases, silent, k)));
  if (unknown.length === 0) return undefined;
  return `the last event of key ${JSON.stringify(unknown[0])} is not known: too few of its ` +
    `replicas answered that did not lose changes this watch had not read (down, or ${LOST_CAUSES})`;
}

/**
 * `bases` as told of `key`: a node in `silent` whose page did not show the key told nothing of
 * it (its page's answer is about the page's keys only; taken as its whole answer, "held
 * nothing" made two such replicas vouch for no last event, and the last event went out again).
 */
function toldOf(bases: Bases, silent: readonly string[], key: string): Bases {
  if (silent.length === 0) return bases; // every node asked answered: no array per key
  const untold = silent.filter((id) => {
    const known = bases.get(id);
    return known instanceof Map && !known.has(key);
  });
  if (untold.length === 0) return bases;
  const told: Bases = new Map(bases);
  for (const id of untold) told.delete(id);
  return told;
}

/**
 * What the pages in hand say each node held of `keys` at the merge's position there: a page
 * read right after that position holds the first change of a key after it, if the page has
 * the key, and that change's `prev` is the version the node held at the position (what a
 * node answers for `/internal/changes/at`). Saves a question per page and node.
 */
export function pageBases(
  merge: WatchMerge,
  pages: readonly NodePage[],
  keys: ReadonlySet<string>,
): Map<string, Map<string, string | null>> {
  const out = new Map<string, Map<string, string | null>>();
  for (const { id, page, after } of pages) {
    const pos = merge.positions.get(id);
    if (after === undefined || pos === undefined || basePosition(pos) !== after) continue;
    const known = new Map<string, string | null>();
    for (const c of page.changes ?? []) {
      if (keys.has(c.k) && !known.has(c.k)) known.set(c.k, c.prev);
    }
    out.set(id, known);
  }
  return out;
}
