/**
 * Per-node batching, the proxy's performance lever: a request for an idle node goes out at
 * the end of the event loop's current turn (`setImmediate`: after the turn's other I/O
 * callbacks, no timer delay), together with every request for that node that arrived in the
 * same turn; while a call to that node is in flight, requests queue, and when it returns
 * everything queued goes out, again at the end of that turn, as one `POST /internal/batch`.
 * So a batch is whatever arrived during one round trip, and a node is woken once per turn,
 * not once per request (`tasks/bench/cpu_rig.ts get`: 8.9 → 10.4 ops per call). With a
 * `timeoutMs`, a request's timeout counts from when it began waiting for its node, not from
 * when its call went out (proxy/nodes/wait_deadlines.ts): one clock read per request.
 * Each call carries a value budget: the node answers reads until their values reach it and
 * leaves the rest unread, and those go first in the next call (docs/internal-api.md), so one
 * answer stays about that size however many large values arrive together.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { Dispatcher } from "./dispatcher.ts";
 * const calls: number[] = [];
 * const d = new Dispatcher((_node, _epoch, ops) => {
 *   calls.push(ops.length);
 *   return Promise.resolve(ops.map(() => ({ status: 404 })));
 * });
 * const node = { id: "n1", url: "http://n1" };
 * await Promise.all([1, 2, 3].map((i) => d.submit(node, 1, [{ op: "get", key: `k${i}` }])));
 * assert(calls.join() === "3"); // all three arrived in the same turn
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import { answerValueBytes, DEFAULT_LIMITS } from "../../shared/limits.ts";
import type { BatchOp, BatchResult } from "../../shared/wire.ts";
import { type NodeRef, waitedOut } from "../nodes/node_client.ts";
import { Sweep, WaitDeadlines } from "../nodes/wait_deadlines.ts";

/**
 * Sends one batch to a node; results in the order of `ops`, `null` for a read the node left
 * unread because the values before it took `valueBudget` bytes (never the call's first read).
 */
export type SendBatch = (
  node: NodeRef,
  epoch: number,
  ops: BatchOp[],
  valueBudget: number,
) => Promise<(BatchResult | null)[]>;

/** Tuning of a {@link Dispatcher}. */
export interface DispatcherOptions {
  /** Batch calls in flight per node at a time. */
  maxInFlight: number;
  /** Operations waiting per node before new ones are refused with 503. */
  maxQueue: number;
  /** Most operations in one call (the node's limit). */
  maxBatchOps: number;
  /** Largest call body, in bytes (the node's limit). */
  maxBatchBytes: number;
  /**
   * Each request's timeout, counted from when it began waiting for its node (the node
   * client's call timeout); without it a request waits for whatever calls are ahead of it.
   */
  timeoutMs?: number;
  /** Bytes of values one answer carries before the node leaves further reads for the next call. */
  valueBudget: number;
}

/** The defaults: one call in flight per node, 10,000 waiting operations. */
export const DEFAULT_DISPATCHER_OPTIONS: Readonly<DispatcherOptions> = Object.freeze({
  maxInFlight: 1,
  maxQueue: 10_000,
  maxBatchOps: DEFAULT_LIMITS.maxBatchOps,
  maxBatchBytes: DEFAULT_LIMITS.maxBatchBytes,
  valueBudget: answerValueBytes(DEFAULT_LIMITS),
});

interface Pending {
  op: BatchOp;
  epoch: number;
  bytes: number;
  /** When it began waiting (0 without a timeout). */
  at: number;
  resolve: (result: BatchResult) => void;
  reject: (err: unknown) => void;
}

interface NodeQueue {
  /** Its key in the dispatcher's map. */
  key: string;
  node: NodeRef;
  items: Pending[];
  head: number;
  inFlight: number;
  /** Late batches in flight (proxy/nodes/wait_deadlines.ts) and how many of each were answered. */
  late: { items: Pending[]; cut: number }[] | undefined;
  sweep: Sweep | undefined;
  /** When the node last answered a call of this queue (deadlines count from it when later). */
  answered: number;
}

/** Bytes an op adds to a batch body, over-estimated (JSON escaping, field names). */
function opBytes(op: BatchOp): number {
  return 96 + op.key.length * 6 + (op.value?.length ?? 0) + (op.contentType?.length ?? 0) * 6 +
    (op.ifMatch?.length ?? 0) + (op.minVersion?.length ?? 0);
}

/** Queues operations per node and sends them in batches. */
export class Dispatcher {
  readonly #queues = new Map<string, NodeQueue>();
  readonly #options: DispatcherOptions;
  readonly #waits: WaitDeadlines | undefined;

  /** Creates a dispatcher over `send` (usually `NodeClient.batch`). */
  constructor(private readonly send: SendBatch, options: Partial<DispatcherOptions> = {}) {
    this.#options = { ...DEFAULT_DISPATCHER_OPTIONS, ...options };
    const { timeoutMs } = this.#options;
    this.#waits = timeoutMs === undefined ? undefined : new WaitDeadlines(timeoutMs);
  }

  /** Runs `ops` on `node` (in a batch with whatever else is waiting); one result per op. */
  submit(node: NodeRef, epoch: number, ops: readonly BatchOp[]): Promise<BatchResult[]> {
    const queue = this.#queueOf(node);
    const refused = this.#refusal(queue, ops.length);
    if (refused) return Promise.reject(refused);
    const promises = ops.map((op) => this.#enqueue(queue, op, epoch));
    return Promise.all(promises);
  }

  /** {@link submit} of one op (the proxy's hot path: no array of promises to join). */
  submitOne(node: NodeRef, epoch: number, op: BatchOp): Promise<BatchResult> {
    const queue = this.#queueOf(node);
    const refused = this.#refusal(queue, 1);
    return refused ? Promise.reject(refused) : this.#enqueue(queue, op, epoch);
  }

  #queueOf(node: NodeRef): NodeQueue {
    // By id; a node that moved to another URL gets a queue of its own (the old one drains),
    // found under that URL until the old one is gone.
    const byId = this.#queues.get(node.id);
    if (byId !== undefined && byId.node.url === node.url) return byId;
    const moved = `${node.id} ${node.url}`;
    let queue = this.#queues.get(moved);
    if (queue === undefined) {
      const key = byId === undefined ? node.id : moved;
      queue = {
        key,
        node,
        items: [],
        head: 0,
        inFlight: 0,
        late: undefined,
        sweep: undefined,
        answered: 0,
      };
      this.#queues.set(key, queue);
    }
    return queue;
  }

  #refusal(queue: NodeQueue, adding: number): RingkvError | undefined {
    const waiting = queue.items.length - queue.head;
    if (waiting + adding <= this.#options.maxQueue) return undefined;
    const { id, url } = queue.node;
    return new RingkvError(
      "unavailable",
      `Cannot send to node ${id} at ${url}: ${waiting} operations are already ` +
        `waiting for it (limit ${this.#options.maxQueue})`,
      { node: id, url },
    );
  }

  #enqueue(queue: NodeQueue, op: BatchOp, epoch: number): Promise<BatchResult> {
    const promise = new Promise<BatchResult>((resolve, reject) => {
      const at = this.#waits?.now() ?? 0;
      queue.items.push({ op, epoch, bytes: opBytes(op), at, resolve, reject });
    });
    this.#later(queue);
    return promise;
  }

  /** Operations waiting and calls in flight, over all nodes (for metrics). */
  stats(): { waiting: number; inFlight: number } {
    let waiting = 0;
    let inFlight = 0;
    for (const q of this.#queues.values()) {
      waiting += q.items.length - q.head;
      inFlight += q.inFlight;
    }
    return { waiting, inFlight };
  }

  /** Queues with ops to send once this turn's requests are in (see the module doc). */
  readonly #due = new Set<NodeQueue>();

  #later(queue: NodeQueue): void {
    if (this.#due.size === 0) setImmediate(() => this.#flush());
    this.#due.add(queue);
  }

  #flush(): void {
    const due = [...this.#due];
    this.#due.clear();
    for (const queue of due) this.#pump(queue);
  }

  #pump(queue: NodeQueue): void {
    const waits = this.#waits;
    while (queue.inFlight < this.#options.maxInFlight && queue.head < queue.items.length) {
      if (waits !== undefined && !this.#expireQueued(queue, waits)) break;
      const batch = this.#take(queue);
      const late = waits !== undefined && waits.isLate(batch[0]!, queue.answered)
        ? this.#watchLate(queue, batch, waits)
        : undefined;
      queue.inFlight++;
      this.#sendBatch(queue, batch).finally(() => {
        queue.inFlight--;
        if (late !== undefined) this.#unwatchLate(queue, late);
        this.#later(queue);
      });
    }
    const idle = queue.inFlight === 0 && queue.head >= queue.items.length;
    if (idle && this.#queues.get(queue.key) === queue) this.#queues.delete(queue.key);
  }

  /** Answers the queued ops whose deadline has passed; whether any are left to send. */
  #expireQueued(queue: NodeQueue, waits: WaitDeadlines): boolean {
    queue.head = waits.expire(
      queue.items,
      queue.head,
      () => waitedOut(queue.node, waits.timeoutMs),
      queue.answered,
    );
    if (queue.head < queue.items.length) return true;
    queue.items = [];
    queue.head = 0;
    return false;
  }

  /** Answers each op of a late batch, and each queued op, at its deadline while it flies. */
  #watchLate(
    queue: NodeQueue,
    items: Pending[],
    waits: WaitDeadlines,
  ): { items: Pending[]; cut: number } {
    const late = { items, cut: 0 };
    (queue.late ??= []).push(late);
    queue.sweep ??= new Sweep(() => this.#sweep(queue, waits), waits.now);
    queue.sweep.by(waits.dueOf(items[0], queue.answered));
    return late;
  }

  #unwatchLate(queue: NodeQueue, late: { items: Pending[]; cut: number }): void {
    const all = queue.late!;
    all.splice(all.indexOf(late), 1);
    if (all.length === 0) queue.sweep!.stop();
  }

  /** The sweep of a queue with late batches in flight; returns when it is next due. */
  #sweep(queue: NodeQueue, waits: WaitDeadlines): number {
    const error = () => waitedOut(queue.node, waits.timeoutMs);
    let next = Infinity;
    for (const late of queue.late ?? []) {
      late.cut = waits.expire(late.items, late.cut, error, queue.answered);
      next = Math.min(next, waits.dueOf(late.items[late.cut], queue.answered));
    }
    if (this.#expireQueued(queue, waits)) {
      next = Math.min(next, waits.dueOf(queue.items[queue.head], queue.answered));
    }
    return next;
  }

  /** The next batch: consecutive ops of one epoch, within the node's limits. */
  #take(queue: NodeQueue): Pending[] {
    const { maxBatchOps, maxBatchBytes } = this.#options;
    const first = queue.items[queue.head]!;
    let end = queue.head + 1;
    let bytes = first.bytes;
    while (end < queue.items.length && end - queue.head < maxBatchOps) {
      const next = queue.items[end]!;
      if (next.epoch !== first.epoch || bytes + next.bytes > maxBatchBytes) break;
      bytes += next.bytes;
      end++;
    }
    const batch = queue.items.slice(queue.head, end);
    queue.head = end;
    if (queue.head === queue.items.length) {
      queue.items = [];
      queue.head = 0;
    } else if (queue.head > 1024 && queue.head * 2 > queue.items.length) {
      queue.items = queue.items.slice(queue.head);
      queue.head = 0;
    }
    return batch;
  }

  async #sendBatch(queue: NodeQueue, batch: Pending[]): Promise<void> {
    const { valueBudget } = this.#options;
    try {
      const results = await this.send(
        queue.node,
        batch[0]!.epoch,
        batch.map((p) => p.op),
        valueBudget,
      );
      if (this.#waits !== undefined) {
        // Those whose deadline passed before this answer are past it: the answer is no excuse.
        this.#expireQueued(queue, this.#waits);
        queue.answered = this.#waits.now();
      }
      const unread: Pending[] = [];
      batch.forEach((p, i) => {
        const result = results[i];
        if (result === null) unread.push(p);
        else p.resolve(result!);
      });
      // First in the next call: they were sent before anything waiting now.
      queue.items.splice(queue.head, 0, ...unread);
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}
