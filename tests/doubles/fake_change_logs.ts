/**
 * Nodes' change logs in memory, served as a watch stream's feed (`page`, `versionsAt`): a test
 * appends changes per node, can hold a node's reads back to force an order of arrival, restart a
 * node (a new boot with an empty log; the node keeps its data) and give a node a newer cluster map
 * (reads routed by an older epoch are refused as a node does: 409 `stale_epoch`).
 *
 * @module
 */
import type { WireChange } from "../../node/http/change_routes.ts";
import type { ChangePage } from "../../proxy/watch/change_feed.ts";
import { type NodeRef, StaleEpochError } from "../../proxy/nodes/node_client.ts";

type Query = { boot?: string; after?: number; prefix: string; waitMs: number; limit: number };

/** One page read a stream asked for (recorded when asked): which node, under which epoch, how. */
export interface ReadCall {
  node: string;
  epoch: number;
  boot?: string;
  after?: number;
  waitMs: number;
  /** Versions the answer carried (none until it is answered). */
  versions: string[];
}

/** Change logs of fake nodes (boot "b-<id>", then "b-<id>-<restarts>"), one per node id. */
export class FakeChangeLogs {
  readonly #logs = new Map<string, WireChange[]>();
  /** The newest version of each key per node (what a node keeps across a restart). */
  readonly #data = new Map<string, Map<string, string>>();
  readonly #restarts = new Map<string, number>();
  /** Per node, the first position its log still holds (1 unless {@link compact}ed). */
  readonly #firsts = new Map<string, number>();
  readonly #epochs = new Map<string, number>();
  readonly #held = new Map<string, { until: Promise<void>; release: () => void }>();
  readonly #timers = new Set<{ id: ReturnType<typeof setTimeout>; done: () => void }>();
  /** Every page read after a position, in the order asked. */
  readonly reads: ReadCall[] = [];

  /** Node `id` logs version `ver` of `key` (a put of the value `ver`, or of base64 `value`). */
  log(id: string, key: string, ver: string, value = btoa(ver)): void {
    const log = this.#logs.get(id) ?? [];
    const data = this.#data.get(id) ?? new Map<string, string>();
    // What the node held before, as a node logs it: across a restart too.
    const prev = data.get(key) ?? null;
    log.push({ s: log.length + 1, k: key, ver, prev, v: value, t: "text/plain" });
    this.#logs.set(id, log);
    data.set(key, ver);
    this.#data.set(id, data);
  }

  /** Node `id` restarts: a new boot whose log is empty; its data stays. */
  restart(id: string): void {
    this.#restarts.set(id, (this.#restarts.get(id) ?? 0) + 1);
    this.#logs.set(id, []);
  }

  /** Node `id` drops its log's changes up to position `upTo` (as a node's bound does). */
  compact(id: string, upTo: number): void {
    this.#firsts.set(id, upTo + 1);
  }

  /** The boot of node `id`'s log now. */
  boot(id: string): string {
    const restarts = this.#restarts.get(id) ?? 0;
    return restarts === 0 ? `b-${id}` : `b-${id}-${restarts}`;
  }

  /** Node `id` holds cluster map `epoch`: calls routed by an older one are refused. */
  setEpoch(id: string, epoch: number): void {
    this.#epochs.set(id, epoch);
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
    this.#checkEpoch(node, epoch);
    const first = this.#firsts.get(node.id) ?? 1;
    if (q.after === undefined) {
      return { boot: this.boot(node.id), first, last: this.#logs.get(node.id)?.length ?? 0 };
    }
    const call: ReadCall = {
      node: node.id,
      epoch,
      boot: q.boot,
      after: q.after,
      waitMs: q.waitMs,
      versions: [],
    };
    this.reads.push(call);
    await this.#held.get(node.id)?.until;
    // Read after the hold: a node that restarted meanwhile answers with its new log.
    const log = this.#logs.get(node.id) ?? [];
    const head = { boot: this.boot(node.id), first, last: log.length };
    // As a node: a position its log never reached is gone too (node/engine/change_log.ts).
    if (q.boot !== head.boot || q.after < first - 1 || q.after > head.last) {
      return { ...head, gone: true };
    }
    if (log.length <= q.after && q.waitMs > 0) await this.#sleep(Math.min(q.waitMs, 20));
    const changes = log.slice(q.after).filter((c) => c.k.startsWith(q.prefix)).slice(0, q.limit);
    const last = changes.length === q.limit ? changes.at(-1)!.s : log.length;
    call.versions = changes.map((c) => c.ver);
    return { boot: head.boot, first, last, changes };
  }

  /** As ChangeFeed.versionsAt. */
  versionsAt(
    node: NodeRef,
    epoch: number,
    boot: string,
    at: number,
    keys: string[],
  ): Promise<Record<string, string | null> | undefined> {
    return Promise.resolve().then(() => this.#versionsAt(node, epoch, boot, at, keys));
  }

  #versionsAt(node: NodeRef, epoch: number, boot: string, at: number, keys: string[]) {
    this.#checkEpoch(node, epoch);
    if (boot !== this.boot(node.id)) return undefined;
    const log = this.#logs.get(node.id) ?? [];
    const out: Record<string, string | null> = {};
    for (const k of keys) {
      const later = log.slice(at).find((c) => c.k === k);
      out[k] = later !== undefined ? later.prev : this.#data.get(node.id)?.get(k) ?? null;
    }
    return out;
  }

  #checkEpoch(node: NodeRef, epoch: number): void {
    const held = this.#epochs.get(node.id) ?? 0;
    if (epoch < held) throw new StaleEpochError(node, held);
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
