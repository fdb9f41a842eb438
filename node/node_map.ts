/**
 * The cluster map a node keeps: loaded from the engine once, then held in memory so the
 * epoch check of every request is a comparison, and replaced only by a newer-or-equal map.
 *
 * @module
 */
import { RingkvError } from "../shared/errors.ts";
import { type ClusterMap, sameMap } from "../shared/wire.ts";
import type { NodeEngine } from "./engine/engine.ts";
import { mapShapeProblem } from "../shared/map_shape.ts";

/**
 * How long a node whose ranges are being copied holds a request routed by a newer map it has
 * not got yet, by default: the push of the map that ends the copy comes to it last.
 */
export const AHEAD_WAIT_MS = 1000;

/** The node's copy of the cluster map with the epoch rules of the internal API. */
export class NodeMap {
  #loaded: Promise<ClusterMap | null> | undefined;
  #current: ClusterMap | null = null;
  #ready = false;
  /** PUTs run one at a time, so two racing maps cannot store the older one last. */
  #queue: Promise<unknown> = Promise.resolve();
  /** Requests waiting for this node to store the map of an epoch (see {@link checkEpoch}). */
  readonly #waiting = new Set<{ epoch: number; arrived: () => void }>();

  /** `engine` stores the map durably; `aheadWaitMs` (default {@link AHEAD_WAIT_MS}). */
  constructor(private readonly engine: NodeEngine, private readonly aheadWaitMs = AHEAD_WAIT_MS) {}

  /** The stored map, or null when the node has none. */
  async get(): Promise<ClusterMap | null> {
    this.#loaded ??= this.engine.loadClusterMap().then((map) => {
      this.#current = map;
      this.#ready = true;
      return map;
    }, (err) => {
      this.#loaded = undefined; // a read that failed (a failing disk) is tried again next time
      throw err;
    });
    await this.#loaded;
    return this.#current;
  }

  /** The stored map's epoch (0 without a map). */
  async epoch(): Promise<number> {
    return (await this.get())?.epoch ?? 0;
  }

  /** The stored map's epoch once it is loaded (a plain read for the hot path), else undefined. */
  epochIfLoaded(): number | undefined {
    return this.#ready ? (this.#current?.epoch ?? 0) : undefined;
  }

  /**
   * Throws 409 `stale_epoch` when the sender routes by an older epoch than the stored one. While
   * the stored map copies ranges, a request routed by a later map waits until this node holds
   * that map (503 after `aheadWaitMs`): the map that ends the copy serves the moved ranges from
   * their new owners, and it is pushed to them only once every old owner holds it (and refuses
   * the copying map's reads), so a write acknowledged by the new map cannot be followed by a read
   * of the old owner's copy (proxy/cluster/switch_order.ts).
   */
  async checkEpoch(sent: number): Promise<void> {
    const map = await this.get();
    this.fence(sent);
    if (map === null || sent <= map.epoch || map.rebalancing?.phase !== "copying") return;
    await this.#arrival(sent, map.epoch);
  }

  /** Resolves once a map of epoch `epoch` or later is stored; 503 after `aheadWaitMs`. */
  #arrival(epoch: number, held: number): Promise<void> {
    const { promise, resolve, reject } = Promise.withResolvers<void>();
    const waiter = { epoch, arrived: resolve };
    this.#waiting.add(waiter);
    const timer = setTimeout(() => {
      reject(
        new RingkvError(
          "unavailable",
          `Cannot serve a request routed by cluster map epoch ${epoch}: this node holds epoch ` +
            `${held}, whose ranges are being copied, and has not received the newer map yet ` +
            `(it comes to the new owners after the old ones); retry`,
        ),
      );
    }, this.aheadWaitMs);
    return promise.finally(() => {
      clearTimeout(timer);
      this.#waiting.delete(waiter);
    });
  }

  /**
   * {@link checkEpoch} without a wait, for a request admitted already (its check loaded the
   * map): run again right before the request changes anything, it refuses what a newer map
   * stored meanwhile fences off (a write whose body was still arriving when the map was pushed).
   */
  fence(sent: number): void {
    const epoch = this.#current?.epoch ?? 0;
    if (sent < epoch) {
      throw new RingkvError(
        "stale_epoch",
        `Cannot serve a request routed by epoch ${sent}: this node has the cluster map of epoch ${epoch}`,
        { epoch },
      );
    }
  }

  /**
   * Stores `map` when its epoch is higher than the stored one's, or equal with the same map (a
   * push again); else 409 with the stored map. Each epoch's map is chosen once, so another map
   * of the stored epoch is never taken: the proxy that sent it adopts this one.
   */
  put(map: ClusterMap): Promise<void> {
    const run = this.#queue.then(async () => {
      const stored = await this.get();
      const equal = stored !== null && map.epoch === stored.epoch;
      if (stored !== null && (map.epoch < stored.epoch || (equal && !sameMap(map, stored)))) {
        throw new RingkvError(
          "stale_epoch",
          equal
            ? `Cannot store the cluster map of epoch ${map.epoch}: this node has another map of that epoch`
            : `Cannot store the cluster map of epoch ${map.epoch}: this node has epoch ${stored.epoch}`,
          { epoch: stored.epoch, map: stored },
        );
      }
      if (equal) return;
      await this.engine.saveClusterMap(map);
      this.#current = map;
      for (const w of this.#waiting) if (w.epoch <= map.epoch) w.arrived();
    });
    this.#queue = run.catch(() => {});
    return run;
  }
}

/** Checks the shape of a cluster map sent by a proxy; throws 400 on anything else. */
export function parseClusterMap(value: unknown): ClusterMap {
  const problem = mapShapeProblem(value);
  if (problem !== null) {
    throw new RingkvError("bad_request", `Cannot store the cluster map: ${problem}`);
  }
  return value as ClusterMap;
}
