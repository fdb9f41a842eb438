/**
 * Nodes' change logs in memory, served as a watch stream's feed (`page`, `versionsAt`): a test
 * appends changes per node and can hold a node's reads back to force an order of arrival.
 *
 * @module
 */
import type { WireChange } from "../../node/http/change_routes.ts";
import type { ChangePage } from "../../proxy/watch/change_feed.ts";
import type { NodeRef } from "../../proxy/nodes/node_client.ts";

type Query = { boot?: string; after?: number; prefix: string; waitMs: number; limit: number };

/** One page read a stream asked for (recorded when asked): which node, under which epoch, how. */
export interface ReadCall {
  node: string;
  epoch: number;
  after?: number;
  waitMs: number;
  /** Versions the answer carried (none until it is answered). */
  versions: string[];
}

/** Change logs of fake nodes (boot "b-<id>"), one per node id. */
export class FakeChangeLogs {
  readonly #logs = new Map<string, WireChange[]>();
  readonly #held = new Map<string, { until: Promise<void>; release: () => void }>();
  readonly #timers = new Set<{ id: ReturnType<typeof setTimeout>; done: () => void }>();
  /** Every page read after a position, in the order asked. */
  readonly reads: ReadCall[] = [];

  /** Node `id` logs version `ver` of `key` (a put of the value `ver`). */
  log(id: string, key: string, ver: string): void {
    const log = this.#logs.get(id) ?? [];
    const prev = log.findLast((c) => c.k === key)?.ver ?? null;
    log.push({ s: log.length + 1, k: key, ver, prev, v: btoa(ver), t: "text/plain" });
    this.#logs.set(id, log);
  }

  /** Reads of node `id`'s log after a position wait until {@link release}. */
  hold(id: string): void {
    let release = () => {};
    const until = new Promise<void>((r) => release = r);
    this.#held.set(id, { until, release });
  }

  /** Lets node `id`'s reads through again. */
  release(id: string): void {
    this.#held.get(id)?.release();
    this.#held.delete(id);
  }

  /** As ChangeFeed.page. */
  async page(node: NodeRef, epoch: number, q: Query): Promise<ChangePage> {
    const log = this.#logs.get(node.id) ?? [];
    const head = { boot: `b-${node.id}`, first: 1, last: log.length };
    if (q.after === undefined) return head;
    if (q.boot !== head.boot) return { ...head, gone: true };
    const call: ReadCall = { node: node.id, epoch, after: q.after, waitMs: q.waitMs, versions: [] };
    this.reads.push(call);
    await this.#held.get(node.id)?.until;
    if (log.length <= q.after && q.waitMs > 0) await this.#sleep(Math.min(q.waitMs, 20));
    const changes = log.slice(q.after).filter((c) => c.k.startsWith(q.prefix)).slice(0, q.limit);
    const last = changes.length === q.limit ? changes.at(-1)!.s : log.length;
    call.versions = changes.map((c) => c.ver);
    return { boot: head.boot, first: 1, last, changes };
  }

  /** As ChangeFeed.versionsAt. */
  versionsAt(
    node: NodeRef,
    _epoch: number,
    _boot: string,
    at: number,
    keys: string[],
  ): Promise<Record<string, string | null>> {
    const log = this.#logs.get(node.id) ?? [];
    const out: Record<string, string | null> = {};
    for (const k of keys) {
      const later = log.slice(at).find((c) => c.k === k);
      out[k] = later !== undefined ? later.prev : log.findLast((c) => c.k === k)?.ver ?? null;
    }
    return Promise.resolve(out);
  }

  /** Ends every wait and hold (call in `finally`). */
  close(): void {
    for (const id of [...this.#held.keys()]) this.release(id);
    for (const t of this.#timers) {
      clearTimeout(t.id);
      t.done();
    }
    this.#timers.clear();
  }

  #sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = {
        id: setTimeout(() => {
          this.#timers.delete(t);
          resolve();
        }, ms),
        done: resolve,
      };
      this.#timers.add(t);
    });
  }
}
