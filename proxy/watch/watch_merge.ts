/**
 * proxy/watch/ (this folder's main module): `GET /watch`, the merge of the nodes' change logs
 * into one stream of events per watcher. May import proxy/cluster, proxy/nodes and shared/.
 *
 * The merge (pure). Each node logs the changes it made durable in its own order, per key in
 * version order. A version of a key becomes an event once a majority of the key's replicas
 * have logged it or a newer one (with one replica: once its owner has); then every version
 * of the key seen since the last event and up to that one goes out, in version order. Why
 * nothing acknowledged is lost: an acknowledged version v was accepted by a majority Q; a
 * newer version w reaches a majority M only after the node in Q ∩ M accepted v (it refuses
 * v once it took w), so that node's log, read in order, shows v before w counts. A node that
 * lost changes this watch had not read (it restarted on a new numbering of its change log, or
 * its log was cut; node/engine/change_recovery.ts) may be that node, with v in what it lost: until the key's last event reaches what it held then, w counts only once
 * enough other replicas hold it that every majority has one of them (`Doubt` below). Nothing
 * goes out twice: per key, only versions above the last event's go out. A key's state is
 * kept while a replica has not caught up to its last event, so a late copy (a hint, a
 * catch-up) is recognised; then it is forgotten, and a key seen again starts from the
 * versions its replicas hold at the merge's positions (nodes answer those). Across a ring
 * change a key is counted on its new replicas ({@link WatchMerge.retarget}) once the stream
 * read every node to its head with events held back ({@link WatchMerge.pause}; why:
 * proxy/watch/ring_move.ts). docs/api.md states the guarantee.
 *
 * @module
 */
import type { WireChange } from "../../node/http/change_routes.ts";
import { CursorText } from "./cursor_text.ts";
import { SeqFloor } from "./seq_floor.ts";

/** A change event as a watcher gets it. */
export interface WatchEvent {
  key: string;
  version: string;
  /** base64 of the value; null when the key was deleted or expired. */
  value: string | null;
  contentType?: string;
}

/**
 * One node's positions in its log: `low` to replay from, `read` done up to, and while a
 * resumed watch replays, `at`: the position the cursor was taken at (what went out before
 * is judged by the versions there).
 */
export interface NodePos {
  boot: string;
  low: number;
  read: number;
  at?: number;
}

/** The position at which a key's replica versions are asked for, for a new key. */
export function basePosition(pos: NodePos): number {
  return Math.max(pos.read, pos.at ?? 0);
}

interface Seen {
  change: WireChange;
  /** Where each node logged this version. */
  seqs: Map<string, number>;
}

interface KeyState {
  /** The newest version that went out (or that needs not: older than the watch). */
  emitted: string | null;
  /** The newest version each replica is known to hold. */
  held: Map<string, string>;
  seen: Map<string, Seen>;
  replicas: readonly string[];
  /** Replicas in {@link WatchMerge.lost} that may have accepted versions this watch did not read. */
  doubt?: Map<string, Doubt>;
}

/**
 * A replica that lost changes may be the only one that both an older acknowledged version's
 * majority and a newer one's share, with the older one in what it lost: it counts as holding
 * what it was read holding in order (`read`) until the key's last event is at or above `upTo`,
 * the version it held when it lost them or later (null: not known yet).
 */
interface Doubt {
  upTo: string | null;
  read: string;
}

/**
 * The versions replicas hold at their positions, per node (undefined: node unknown): a node's
 * answer as it came, or a Map (the pages in hand: proxy/watch/watch_apply.ts); a key missing
 * holds nothing.
 */
export type Bases = Map<
  string,
  Record<string, string | null> | ReadonlyMap<string, string | null> | undefined
>;

/** What `bases` says node `id` held of `key` (null: nothing, or not known). */
function baseOf(bases: Bases, id: string, key: string): string | null {
  const known = bases.get(id);
  if (known === undefined) return null;
  if (known instanceof Map) return known.get(key) ?? null;
  return Object.hasOwn(known, key) ? (known as Record<string, string | null>)[key]! : null;
}

/** Merges node change logs into events. */
export class WatchMerge {
  readonly #keys = new Map<string, KeyState>();
  /** Characters of the values of the versions seen and not yet out (the caller caps them). */
  #heldChars = 0;
  /**
   * Keys with versions seen but not yet out, with their last event's version (what a cursor
   * lists): kept as the keys change, not gathered for each event's cursor.
   */
  readonly #waiting = new Map<string, string | null>();
  /** Keys every replica has caught up on, forgotten at the next {@link forgetSettled}. */
  readonly #settled = new Set<string>();
  /** Keys the cursor says had versions not yet out, with their last event's version. */
  readonly #pendingAtStart: Map<string, string | null>;
  /** Per node, the positions of the versions seen and not yet out (the cursor's `low`). */
  readonly #floors = new Map<string, SeqFloor>();
  /** Writes this merge's cursors, keeping what repeats between its events. */
  readonly cursorText = new CursorText();

  /**
   * `positions`: where each node's log is read from; `quorum`: replicas that must hold a
   * version before it goes out; `pending`: the cursor's keys with versions not yet out.
   */
  constructor(
    readonly positions: Map<string, NodePos>,
    private readonly quorum: (replicas: number) => number,
    pending: ReadonlyMap<string, string | null> = new Map(),
    /** Nodes that lost changes this watch had not read, over its life (and its cursors'). */
    readonly lost: Set<string> = new Set(),
  ) {
    this.#pendingAtStart = new Map(pending);
  }

  /** Whether events are held back (a ring change's barrier: proxy/watch/ring_move.ts). */
  #paused = false;

  /** Holds every event back until {@link resume}; changes are still merged. */
  pause(): void {
    this.#paused = true;
  }

  /** Whether events are held back. */
  get paused(): boolean {
    return this.#paused;
  }

  /** Lets events out again; returns the keys that may have some due ({@link recount}). */
  resume(): string[] {
    this.#paused = false;
    return [...this.#waiting.keys()];
  }

  /** The events due for `key` now. */
  recount(key: string): WatchEvent[] {
    const state = this.#keys.get(key);
    return state === undefined ? [] : this.#due(key, state);
  }

  /** Keys tracked now (the caller caps it). */
  get trackedKeys(): number {
    return this.#keys.size;
  }

  /** Characters of values held waiting for a majority (the caller caps them, as the keys). */
  get heldChars(): number {
    return this.#heldChars;
  }

  /** Whether `key` needs its replicas' versions ({@link start}) before its changes apply. */
  needsStart(key: string): boolean {
    return !this.#keys.has(key);
  }

  /**
   * Starts tracking `key` from the versions its replicas hold at their positions
   * (`bases`); the last event's version is the newest of them, unless the cursor says.
   * A node in {@link lost} counts as holding its version but not as having sent it: it is read
   * from the start of a log that does not reach back to the watch's position, so what it holds
   * there may be writes the watch never read. False (nothing started) when too few replicas that
   * did not lose changes told theirs for every majority to have one (see `#vouched`): then the
   * stream cannot know the key's last event, and says `compacted`.
   */
  start(key: string, replicas: readonly string[], bases: Bases): boolean {
    const held = new Map<string, string>();
    let newest: string | null = null;
    const fromCursor = this.#pendingAtStart.has(key);
    if (!fromCursor && !this.#vouched(replicas, bases)) return false;
    const doubt = this.#doubtOf(replicas, bases, key);
    for (const id of replicas) {
      const v = baseOf(bases, id, key);
      if (v === null) continue;
      // A node still replaying up to the cursor's read position re-reads what it logged since the
      // cursor's low mark: counted as held now, a newer version read first from another node would
      // make this one due before it is seen, and it would be skipped. Its replay counts it.
      if (fromCursor && this.#replaying(id)) continue;
      held.set(id, v);
      if (this.lost.has(id)) continue;
      if (newest === null || v > newest) newest = v;
    }
    const cursor = this.#pendingAtStart.get(key);
    const emitted = cursor !== undefined ? cursor : newest;
    this.#pendingAtStart.delete(key);
    this.#keys.set(key, { emitted, held, seen: new Map(), replicas, doubt });
    return true;
  }

  /**
   * Whether enough replicas that did not lose changes told what they held (`bases`) that every
   * majority has one: a version that went out was held by a majority, so the newest of theirs is
   * at or above it. A node that did not answer (down: a stream resumed while a node restarts
   * keeps its position) tells nothing; with a lost node, it would leave a majority of neither,
   * and a version sent before would go out again (QA).
   */
  #vouched(replicas: readonly string[], bases: Bases): boolean {
    let told = 0;
    for (const id of replicas) if (!this.lost.has(id) && bases.get(id) !== undefined) told++;
    return told >= replicas.length - this.quorum(replicas.length) + 1;
  }

  /**
   * The replicas of `key` among `ids` that lost changes, each with what it held at its position
   * (at or above anything it accepted unread before it; null when not known).
   */
  #doubtOf(ids: readonly string[], bases: Bases, key: string) {
    let doubt: Map<string, Doubt> | undefined;
    for (const id of ids) {
      if (!this.lost.has(id)) continue;
      const upTo = bases.get(id) === undefined ? null : baseOf(bases, id, key) ?? "";
      (doubt ??= new Map()).set(id, { upTo, read: "" });
    }
    return doubt;
  }

  /** Whether node `id` is re-reading changes a resumed cursor's stream had read already. */
  #replaying(id: string): boolean {
    const pos = this.positions.get(id);
    return pos?.at !== undefined && pos.read < pos.at;
  }

  /**
   * Whether observing `version` of `key` can make more than one event due: only when two
   * versions would then wait (one replica's copy of a write, the common case, cannot).
   */
  maySendSeveral(key: string, version: string): boolean {
    const seen = this.#keys.get(key)?.seen;
    return seen !== undefined && (seen.size > 1 || (seen.size === 1 && !seen.has(version)));
  }

  /** Node `id` logged `change`; returns the events that are due, in order. */
  observe(id: string, change: WireChange): WatchEvent[] {
    const pos = this.positions.get(id);
    if (pos !== undefined && change.s > pos.read) pos.read = change.s;
    const state = this.#keys.get(change.k);
    if (state === undefined) throw new Error(`Cannot merge key ${change.k}: not started`);
    // Its first change of the key since it lost changes: what it held before is their bound.
    const doubt = state.doubt?.get(id);
    if (doubt?.upTo === null) doubt.upTo = change.prev ?? "";
    const held = state.held.get(id);
    if (held === undefined || change.ver > held) state.held.set(id, change.ver);
    if (state.emitted === null || change.ver > state.emitted) {
      let seen = state.seen.get(change.ver);
      if (seen === undefined) {
        seen = { change, seqs: new Map() };
        this.#heldChars += change.v?.length ?? 0;
      }
      const floor = this.#floorOf(id);
      const was = seen.seqs.get(id);
      if (was !== undefined) floor.remove(was);
      floor.add(change.s);
      seen.seqs.set(id, change.s);
      state.seen.set(change.ver, seen);
      this.#waiting.set(change.k, state.emitted);
    }
    return this.#due(change.k, state);
  }

  /**
   * Forgets keys every replica has caught up on once more than `keep` keys are tracked
   * (kept until then: a key written again needs no new question to its replicas). Call
   * between pages, not within one.
   */
  forgetSettled(keep = 0): void {
    if (this.#keys.size <= keep) return;
    for (const key of this.#settled) {
      const state = this.#keys.get(key)!;
      const caughtUp = state.replicas.every((id) => (state.held.get(id) ?? "") >= state.emitted!);
      if (state.seen.size === 0 && caughtUp) this.#keys.delete(key);
    }
    this.#settled.clear();
  }

  /** Node `id`'s log was read up to `seq` (a page with nothing for this watch). */
  advance(id: string, seq: number): void {
    const pos = this.positions.get(id);
    if (pos !== undefined && seq > pos.read) pos.read = seq;
  }

  /**
   * Node `id` has another log, or lost the part of it this watch had not read: read it from
   * `first`, forget its seqs. It lost changes unless this watch never reached it and its log
   * still starts at its first change.
   */
  restarted(id: string, boot: string, first: number): void {
    const lost = this.positions.get(id)?.boot !== "" || first > 1;
    if (lost) this.lost.add(id);
    this.positions.set(id, { boot, low: first - 1, read: first - 1 });
    this.#floors.delete(id);
    for (const state of this.#keys.values()) {
      for (const seen of state.seen.values()) seen.seqs.delete(id);
      if (!lost || !state.replicas.includes(id)) continue;
      // What it was read holding in order stays known; a doubt it had stays, and its bound.
      const had = state.doubt?.get(id);
      const read = had?.read ?? state.held.get(id) ?? "";
      (state.doubt ??= new Map()).set(id, { upTo: null, read });
    }
  }

  /** The keys tracked now, with the replicas their versions are counted on. */
  trackedReplicas(): [string, readonly string[]][] {
    return [...this.#keys].map(([key, state]) => [key, state.replicas]);
  }

  /**
   * The cluster map moved `key` to `replicas` (docs/api.md "Watching changes"): from now on
   * its majority is counted on them; a new replica whose log this watch has not shown it yet
   * holds what `bases` says. Only while paused: its events come at {@link resume}.
   */
  retarget(key: string, replicas: readonly string[], bases: Bases): void {
    if (!this.#paused) throw new Error(`Cannot retarget key ${key}: the merge is not paused`);
    const state = this.#keys.get(key);
    if (state === undefined) return;
    for (const id of replicas) {
      const v = baseOf(bases, id, key);
      const held = state.held.get(id);
      if (v !== null && (held === undefined || v > held)) state.held.set(id, v);
    }
    const joined = this.#doubtOf(replicas.filter((id) => !state.replicas.includes(id)), bases, key);
    for (const [id, doubt] of joined ?? []) (state.doubt ??= new Map()).set(id, doubt);
    // A replica that left the key's set is no longer counted: nor is its doubt.
    for (const id of state.doubt?.keys() ?? []) if (!replicas.includes(id)) state.doubt!.delete(id);
    if (state.doubt?.size === 0) state.doubt = undefined;
    state.replicas = replicas;
  }

  /** Node `id` joined the nodes this watch reads, at `pos`. */
  addNode(id: string, pos: NodePos): void {
    if (!this.positions.has(id)) this.positions.set(id, pos);
  }

  /** Node `id` left the cluster map: its log is no longer read, nothing waits on it. */
  dropNode(id: string): void {
    this.positions.delete(id);
    this.#floors.delete(id);
    for (const state of this.#keys.values()) {
      for (const seen of state.seen.values()) seen.seqs.delete(id);
    }
  }

  /**
   * Positions to resume from and the keys with versions not yet out (the cursor's content).
   * `live`: its `pending` may be the merge's own map, valid until the merge next changes (a
   * cursor encoded at once; most events have one).
   */
  resumePoint(live = false): {
    nodes: Record<string, NodePos>;
    pending: ReadonlyMap<string, string | null>;
    lost: string[];
  } {
    let pending: ReadonlyMap<string, string | null> = this.#waiting;
    if (!live || this.#pendingAtStart.size > 0) {
      // A key the cursor listed is not tracked yet, so in one of the two maps only.
      pending = new Map([...this.#waiting, ...this.#pendingAtStart]);
    }
    const nodes: Record<string, NodePos> = {};
    for (const [id, pos] of this.positions) {
      const first = this.#floors.get(id)?.min();
      // Replay from before the oldest change still waiting for its majority; while this
      // watch itself replays, keep the old start (keys of the old cursor are there).
      let from = first === undefined ? pos.read : Math.min(pos.read, first - 1);
      if (pos.at !== undefined && pos.read < pos.at) from = Math.min(from, pos.low);
      nodes[id] = { boot: pos.boot, low: from, read: basePosition(pos) };
    }
    return { nodes, pending, lost: [...this.lost] };
  }

  #floorOf(id: string): SeqFloor {
    let floor = this.#floors.get(id);
    if (floor === undefined) this.#floors.set(id, floor = new SeqFloor());
    return floor;
  }

  /**
   * The newest version of the key that may go out: held by a majority of its replicas, and while
   * some are in doubt, by enough of the others that every majority which acknowledged an older
   * version has one of them, whose log showed it first.
   */
  #top(state: KeyState): string {
    const need = this.quorum(state.replicas.length);
    if (state.doubt !== undefined) {
      for (const [id, { upTo }] of state.doubt) {
        if (upTo !== null && (state.emitted ?? "") >= upTo) state.doubt.delete(id);
      }
      if (state.doubt.size === 0) state.doubt = undefined;
    }
    if (state.doubt === undefined) return majorityTop(state, need);
    return majorityTop(state, need, state.replicas.length - need + 1, state.doubt);
  }

  #due(key: string, state: KeyState): WatchEvent[] {
    if (this.#paused) return [];
    const events: WatchEvent[] = [];
    // An event can clear a doubt, and a replica trusted again can make a newer version due.
    for (let round = 0; round <= state.replicas.length; round++) {
      const top = this.#top(state);
      if (top === "" || (state.emitted !== null && top <= state.emitted)) break;
      const ready = [...state.seen.keys()].filter((v) => v <= top).sort();
      for (const v of ready) {
        const { change, seqs } = state.seen.get(v)!;
        for (const [id, seq] of seqs) this.#floors.get(id)?.remove(seq);
        state.seen.delete(v);
        this.#heldChars -= change.v?.length ?? 0;
        events.push({
          key,
          version: v,
          value: change.v,
          ...(change.t === undefined ? {} : { contentType: change.t }),
        });
      }
      state.emitted = top;
      if (state.doubt === undefined) break;
    }
    if (state.seen.size === 0) this.#waiting.delete(key);
    else this.#waiting.set(key, state.emitted);
    const caughtUp = state.replicas.every((id) => (state.held.get(id) ?? "") >= state.emitted!);
    if (state.seen.size === 0 && state.emitted !== null && caughtUp) this.#settled.add(key);
    return events;
  }
}

/**
 * The `need`-th highest version the key's replicas hold ("" when fewer hold one): the newest
 * a majority holds; with `doubted` replicas, also one that `needTrusted` hold counting a doubted
 * one as holding what it was read holding in order. Counted in place, without a sorted copy: it
 * runs for every change seen.
 */
export function majorityTop(
  state: { replicas: readonly string[]; held: ReadonlyMap<string, string> },
  need: number,
  needTrusted = 0,
  doubted?: ReadonlyMap<string, { read: string }>,
): string {
  let top = "";
  for (const id of state.replicas) {
    const v = state.held.get(id) ?? "";
    if (v <= top) continue;
    let atLeast = 0;
    let trusted = 0;
    for (const other of state.replicas) {
      const held = state.held.get(other) ?? "";
      if (held < v) continue;
      atLeast++;
      if ((doubted?.get(other)?.read ?? held) >= v) trusted++;
    }
    if (atLeast >= need && trusted >= needTrusted) top = v;
  }
  return top;
}
