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
import { callValueBytes, DEFAULT_LIMITS } from "../../shared/limits.ts";
import type { BatchOp, BatchResult } from "../../shared/wire.ts";
import { type NodeRef, waitedOut } from "../nodes/node_client.ts";
import { QueueDeadlines, WaitDeadlines } from "../nodes/wait_deadlines.ts";

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
  /** The batch limit, in bytes (the node's); a call carries at most a quarter of it (callValueBytes). */
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
  valueBudget: callValueBytes(DEFAULT_LIMITS),
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
  /** Its ops' deadlines (proxy/nodes/wait_deadlines.ts); none without a timeout. */
  deadlines: QueueDeadlines<Pending> | undefined;
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
      queue = this.#newQueue(key, node);
      this.#queues.set(key, queue);
    }
    return queue;
  }

  #newQueue(key: string, node: NodeRef): NodeQueue {
    const queue: NodeQueue = { key, node, items: [], head: 0, inFlight: 0, deadlines: undefined };
    const waits = this.#waits;
    if (waits === undefined) return queue;
    queue.deadlines = new QueueDeadlines(
      waits,
      () => waitedOut(node, waits.timeoutMs),
      (deadlines) => this.#expireQueued(queue, deadlines),
    );
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
    const { deadlines } = queue;
    while (queue.inFlight < this.#options.maxInFlight && queue.head < queue.items.length) {
      if (deadlines !== undefined && this.#expireQueued(queue, deadlines) === undefined) break;
      const batch = this.#take(queue);
      const late = deadlines?.watchIfLate(batch);
      queue.inFlight++;
      this.#sendBatch(queue, batch).finally(() => {
        queue.inFlight--;
        deadlines?.landed(late);
        this.#later(queue);
      });
    }
    const idle = queue.inFlight === 0 && queue.head >= queue.items.length;
    if (idle && this.#queues.get(queue.key) === queue) this.#queues.delete(queue.key);
  }

  /** Answers the queued ops whose deadline has passed; returns the first left to send. */
  #expireQueued(queue: NodeQueue, deadlines: QueueDeadlines<Pending>): Pending | undefined {
    queue.head = deadlines.expire(queue.items, queue.head);
    if (queue.head < queue.items.length) return queue.items[queue.head];
    queue.items = [];
    queue.head = 0;
    return undefined;
  }

  /** The next batch: consecutive ops of one epoch, within the node's limits. */
  #take(queue: NodeQueue): Pending[] {
    const { maxBatchOps } = this.#options;
    const maxBatchBytes = callValueBytes(this.#options);
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
      queue.deadlines?.answered();
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
