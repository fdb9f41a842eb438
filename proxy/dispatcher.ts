/**
 * Per-node batching, the proxy's performance lever: a request for an idle node is sent at
 * once; while a call to that node is in flight, requests queue, and when it returns
 * everything queued goes out as one `POST /internal/batch`. No timers: the batch is
 * whatever arrived during one round trip.
 *
 * @module
 * @example
 * ```ts
 * import { Dispatcher } from "./dispatcher.ts";
 * const calls: number[] = [];
 * const d = new Dispatcher((_node, _epoch, ops) => {
 *   calls.push(ops.length);
 *   return Promise.resolve(ops.map(() => ({ status: 404 })));
 * });
 * const node = { id: "n1", url: "http://n1" };
 * await Promise.all([1, 2, 3].map((i) => d.submit(node, 1, [{ op: "get", key: `k${i}` }])));
 * console.assert(calls.join() === "1,2");
 * ```
 */
import { RingkvError } from "../shared/errors.ts";
import { DEFAULT_LIMITS } from "../shared/limits.ts";
import type { BatchOp, BatchResult } from "../shared/wire.ts";
import type { NodeRef } from "./node_client.ts";

/** Sends one batch to a node; results in the order of `ops`. */
export type SendBatch = (node: NodeRef, epoch: number, ops: BatchOp[]) => Promise<BatchResult[]>;

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
}

/** The defaults: one call in flight per node, 10,000 waiting operations. */
export const DEFAULT_DISPATCHER_OPTIONS: Readonly<DispatcherOptions> = Object.freeze({
  maxInFlight: 1,
  maxQueue: 10_000,
  maxBatchOps: DEFAULT_LIMITS.maxBatchOps,
  maxBatchBytes: DEFAULT_LIMITS.maxBatchBytes,
});

interface Pending {
  op: BatchOp;
  epoch: number;
  bytes: number;
  resolve: (result: BatchResult) => void;
  reject: (err: unknown) => void;
}

interface NodeQueue {
  node: NodeRef;
  items: Pending[];
  head: number;
  inFlight: number;
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

  /** Creates a dispatcher over `send` (usually `NodeClient.batch`). */
  constructor(private readonly send: SendBatch, options: Partial<DispatcherOptions> = {}) {
    this.#options = { ...DEFAULT_DISPATCHER_OPTIONS, ...options };
  }

  /** Runs `ops` on `node` (in a batch with whatever else is waiting); one result per op. */
  submit(node: NodeRef, epoch: number, ops: readonly BatchOp[]): Promise<BatchResult[]> {
    const key = `${node.id} ${node.url}`;
    let queue = this.#queues.get(key);
    if (queue === undefined) {
      queue = { node, items: [], head: 0, inFlight: 0 };
      this.#queues.set(key, queue);
    }
    const waiting = queue.items.length - queue.head;
    if (waiting + ops.length > this.#options.maxQueue) {
      return Promise.reject(
        new RingkvError(
          "unavailable",
          `Cannot send to node ${node.id} at ${node.url}: ${waiting} operations are already ` +
            `waiting for it (limit ${this.#options.maxQueue})`,
          { node: node.id, url: node.url },
        ),
      );
    }
    const promises = ops.map((op) =>
      new Promise<BatchResult>((resolve, reject) => {
        queue.items.push({ op, epoch, bytes: opBytes(op), resolve, reject });
      })
    );
    this.#pump(key, queue);
    return Promise.all(promises);
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

  #pump(key: string, queue: NodeQueue): void {
    while (queue.inFlight < this.#options.maxInFlight && queue.head < queue.items.length) {
      const batch = this.#take(queue);
      queue.inFlight++;
      this.#sendBatch(queue.node, batch).finally(() => {
        queue.inFlight--;
        this.#pump(key, queue);
      });
    }
    if (queue.inFlight === 0 && queue.head >= queue.items.length) this.#queues.delete(key);
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

  async #sendBatch(node: NodeRef, batch: Pending[]): Promise<void> {
    try {
      const results = await this.send(node, batch[0]!.epoch, batch.map((p) => p.op));
      batch.forEach((p, i) => p.resolve(results[i]!));
    } catch (err) {
      for (const p of batch) p.reject(err);
    }
  }
}
