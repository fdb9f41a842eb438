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

/** The node's copy of the cluster map with the epoch rules of the internal API. */
export class NodeMap {
  #loaded: Promise<ClusterMap | null> | undefined;
  #current: ClusterMap | null = null;
  #ready = false;
  /** PUTs run one at a time, so two racing maps cannot store the older one last. */
  #queue: Promise<unknown> = Promise.resolve();

  /** `engine` stores the map durably. */
  constructor(private readonly engine: NodeEngine) {}

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

  /** The stored map as loaded (null: none, or not loaded yet: call {@link get} first). */
  loaded(): ClusterMap | null {
    return this.#current;
  }

  /** Throws 409 `stale_epoch` when the sender routes by an older epoch than the stored one. */
  async checkEpoch(sent: number): Promise<void> {
    await this.get();
    this.fence(sent);
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
