/**
 * Coalesces the single-key replication calls of concurrent requests into batch calls,
 * the way proxy/routing/dispatcher.ts does for unreplicated ones: per node and kind (read,
 * prepare, accept) one call is in flight; calls made meanwhile wait for it and then go
 * together as one. Nothing waits on a timer: an idle node gets a call at once. A batch
 * never holds the same key twice (a later call for a key waits for the next batch), so
 * each key's calls reach a node in the order they were made, as they did one by one. With a
 * `timeoutMs`, a call's timeout counts from when it began waiting for its node, not from when
 * its batch went out (proxy/nodes/wait_deadlines.ts), so a call queued behind one to a node
 * that stopped answering fails in time for the quorum to go on without it.
 *
 * @module
 */
import { callValueBytes, DEFAULT_LIMITS } from "../../shared/limits.ts";
import type { Version } from "../../shared/version.ts";
import type { WireEntry } from "../../shared/wire.ts";
import { type NodeRef, waitedOut } from "../nodes/node_client.ts";
import { QueueDeadlines, WaitDeadlines } from "../nodes/wait_deadlines.ts";
import type { PaxosClient, WireVote } from "../nodes/paxos_client.ts";

/** The calls {@link Replicated} makes (a {@link PaxosClient}, or this batcher over one). */
export type PaxosCalls = Pick<PaxosClient, "read" | "prepare" | "accept">;

/** Most items in one batched call (the nodes accept up to 1000). */
const MAX_ITEMS = 256;

/** Bytes a call's JSON body may take, over-estimated (values are base64, keys escaped). */
function estimateBytes(keys: readonly string[], valueChars = 0): number {
  let bytes = 64 + valueChars;
  for (const key of keys) bytes += 96 + key.length * 6;
  return bytes;
}

/** The keys of an accept call and its {@link estimateBytes}, in one pass (one per PUT and node). */
function acceptKeys(entries: readonly WireEntry[]): { keys: string[]; bytes: number } {
  const keys: string[] = [];
  let valueChars = 0;
  for (const e of entries) {
    keys.push(e.k);
    valueChars += (e.v?.length ?? 0) + (e.t?.length ?? 0) * 6;
  }
  return { keys, bytes: estimateBytes(keys, valueChars) };
}

interface Waiting<I, R> {
  items: I[];
  keys: string[];
  bytes: number;
  /** When it began waiting (0 without a timeout). */
  at: number;
  /** Results of its first items, when a read's answer stopped at its value budget. */
  done: R[];
  resolve: (results: R[]) => void;
  reject: (err: unknown) => void;
}

/** One node's queue of one kind of call. */
class Lane<I, R> {
  #busy = false;
  /** In arrival order (so by `at`): {@link #take} keeps the order of those it leaves. */
  #waiting: Waiting<I, R>[] = [];
  /** The calls' deadlines (proxy/nodes/wait_deadlines.ts); none without a timeout. */
  readonly #deadlines: QueueDeadlines<Waiting<I, R>> | undefined;

  constructor(
    private readonly send: (items: I[]) => Promise<R[]>,
    private readonly onIdle: () => void,
    /** Most bytes of one call (a quarter of the batch limit, callValueBytes), one item excepted. */
    private readonly maxBytes: number,
    node: NodeRef,
    private readonly waits: WaitDeadlines | undefined,
  ) {
    this.#deadlines = waits && new QueueDeadlines(
      waits,
      () => waitedOut(node, waits.timeoutMs),
      (deadlines) => this.#expireWaiting(deadlines),
    );
  }

  /** Resolves with this call's own results, in the order of `items`. */
  call(items: I[], keys: string[], bytes: number): Promise<R[]> {
    const { promise, resolve, reject } = Promise.withResolvers<R[]>();
    const at = this.waits?.now() ?? 0;
    this.#waiting.push({ items, keys, bytes, at, done: [], resolve, reject });
    if (!this.#busy) void this.#flush();
    return promise;
  }

  async #flush(): Promise<void> {
    this.#busy = true;
    const deadlines = this.#deadlines;
    while (this.#waiting.length > 0) {
      if (deadlines !== undefined && this.#expireWaiting(deadlines) === undefined) break;
      const batch = this.#take();
      const late = deadlines?.watchIfLate(batch);
      try {
        const results = await this.send(batch.flatMap((w) => w.items));
        deadlines?.answered();
        this.#settle(batch, results);
      } catch (err) {
        for (const w of batch) w.reject(err);
      } finally {
        deadlines?.landed(late);
      }
    }
    this.#busy = false;
    this.onIdle();
  }

  /** Answers the waiting calls whose deadline has passed; returns the first one left. */
  #expireWaiting(deadlines: QueueDeadlines<Waiting<I, R>>): Waiting<I, R> | undefined {
    const from = deadlines.expire(this.#waiting, 0);
    if (from > 0) this.#waiting = this.#waiting.slice(from);
    return this.#waiting[0];
  }

  /**
   * Resolves each call of `batch` from `results`; a read's answer that stopped at its value
   * budget leaves the calls it did not reach waiting first, each with what it got.
   */
  #settle(batch: Waiting<I, R>[], results: R[]): void {
    const again: Waiting<I, R>[] = [];
    let at = 0;
    for (const w of batch) {
      const got = results.slice(at, at + w.items.length);
      at += w.items.length;
      if (got.length === w.items.length) {
        w.resolve(w.done.length === 0 ? got : [...w.done, ...got]);
        continue;
      }
      w.done.push(...got);
      w.items = w.items.slice(got.length);
      w.keys = w.keys.slice(got.length);
      again.push(w);
    }
    if (again.length > 0) this.#waiting = [...again, ...this.#waiting];
  }

  /** The calls of the next batch: in order, skipping one whose key is already in it. */
  #take(): Waiting<I, R>[] {
    const batch: Waiting<I, R>[] = [];
    const rest: Waiting<I, R>[] = [];
    const keys = new Set<string>();
    const held = new Set<string>(); // keys of calls left waiting
    let items = 0;
    let bytes = 0;
    for (const w of this.#waiting) {
      // The node refuses a body past its limit (413): a batch must stay under it.
      const fits = batch.length === 0 ||
        (items + w.items.length <= MAX_ITEMS && bytes + w.bytes <= this.maxBytes &&
          !w.keys.some((k) => keys.has(k)));
      // Once one call waits, later calls for its keys must wait too (order per key).
      if (fits && !w.keys.some((k) => held.has(k))) {
        batch.push(w);
        items += w.items.length;
        bytes += w.bytes;
        for (const k of w.keys) keys.add(k);
      } else {
        rest.push(w);
        for (const k of w.keys) held.add(k);
      }
    }
    this.#waiting = rest;
    return batch;
  }
}

/** {@link PaxosCalls} over `client`, batched per node, kind and epoch. */
export class PaxosBatcher implements PaxosCalls {
  readonly #lanes = new Map<string, Lane<unknown, unknown>>();

  readonly #deadlines: WaitDeadlines | undefined;

  /**
   * Creates a batcher sending through `client`; a batched call stays under a quarter of
   * `maxBytes` ({@link callValueBytes}), one larger call excepted. With
   * `timeoutMs` (the client's), a call fails that long after it began waiting for its node. A
   * read's answer carries about `valueBudget` bytes of values (the rest is read again).
   */
  constructor(
    private readonly client: PaxosCalls,
    private readonly maxBytes: number = DEFAULT_LIMITS.maxBatchBytes,
    timeoutMs?: number,
    private readonly valueBudget: number = callValueBytes({ maxBatchBytes: maxBytes }),
  ) {
    this.#deadlines = timeoutMs === undefined ? undefined : new WaitDeadlines(timeoutMs);
  }

  /** {@link PaxosClient.read}, batched. */
  read(node: NodeRef, epoch: number, keys: string[]): Promise<(WireEntry | null)[]> {
    return this.#lane<string, WireEntry | null>(
      "read",
      node,
      epoch,
      (items) => this.client.read(node, epoch, items, this.valueBudget),
    ).call(keys, keys, estimateBytes(keys));
  }

  /** {@link PaxosClient.prepare}, batched. */
  prepare(
    node: NodeRef,
    epoch: number,
    ops: { key: string; ballot: Version }[],
  ): Promise<(WireVote & { entry: WireEntry | null })[]> {
    const keys = ops.map((o) => o.key);
    return this.#lane<{ key: string; ballot: Version }, WireVote & { entry: WireEntry | null }>(
      "prepare",
      node,
      epoch,
      (items) => this.client.prepare(node, epoch, items),
    ).call(ops, keys, estimateBytes(keys));
  }

  /** {@link PaxosClient.accept}, batched. */
  accept(node: NodeRef, epoch: number, entries: WireEntry[]): Promise<WireVote[]> {
    const { keys, bytes } = acceptKeys(entries);
    return this.#lane<WireEntry, WireVote>(
      "accept",
      node,
      epoch,
      (items) => this.client.accept(node, epoch, items),
    ).call(entries, keys, bytes);
  }

  #lane<I, R>(
    kind: string,
    node: NodeRef,
    epoch: number,
    send: (items: I[]) => Promise<R[]>,
  ): Lane<I, R> {
    // The URL is in the name: a node that moved gets a fresh lane to its new address.
    const name = `${kind} ${node.id} ${node.url} ${epoch}`;
    let lane = this.#lanes.get(name) as Lane<I, R> | undefined;
    if (lane === undefined) {
      const onIdle = () => this.#lanes.delete(name);
      lane = new Lane(
        send,
        onIdle,
        callValueBytes({ maxBatchBytes: this.maxBytes }),
        node,
        this.#deadlines,
      );
      this.#lanes.set(name, lane as Lane<unknown, unknown>);
    }
    return lane;
  }
}
