/**
 * The proxy's view of node health, as a pure state machine: events (a call or probe
 * answered, a call or probe failed) go in through {@link FailureDetector.step}, time
 * through {@link FailureDetector.tick}, which says which nodes to probe now. A node
 * that failed once is `down` until it answers again, so requests stop waiting on it:
 * quorum calls go to the `up` replicas first (proxy/replication/caspaxos.ts), and a dead node
 * costs a timeout at most once per probe interval, when it is probed. A node whose
 * probe says it refuses writes (its disk failed) is `read-only`: it still counts for
 * reads, and goes after the `up` nodes. A node that refuses this proxy's cluster secret (a 401,
 * or a probe's proof of another secret) is `unauthorized`: it answers, but takes no call, so it
 * counts as `down` until a probe or a call says it takes the secret.
 *
 * Its times are on a monotonic clock (`performance.now()`), never the wall clock: a wall clock
 * stepped back an hour would hold every probe (and a down node's return) for that hour.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { FailureDetector } from "./failure_detector.ts";
 * const fd = new FailureDetector({ probeMs: 500 });
 * fd.step({ kind: "failed", node: "n1", at: 0 });
 * assert(!fd.isUp("n1") && fd.tick(600).includes("n1"));
 * ```
 */

import type { Version } from "../../shared/version.ts";

/** Something the detector learns about one node. */
export type HealthEvent =
  | {
    kind: "answered";
    node: string;
    at: number;
    /**
     * From a probe: why writes should go to other replicas first (the node refuses them, or
     * they stall on its disk), or false when nothing is wrong with them (absent: unknown).
     */
    avoidWrites?: { stalled: boolean; why: string } | false;
    /** From a probe: the node's wall clock minus this proxy's at the call's midpoint (ms). */
    clockOffsetMs?: number;
    /**
     * From a probe: the node's acceptor floor since its last start (`promiseFloor` of its
     * `/health`), or null when it gave none (a node from before it was reported).
     */
    promiseFloor?: Version | null;
  }
  | { kind: "failed"; node: string; at: number; error?: string }
  /** The node answered, but refuses this proxy's cluster secret. */
  | { kind: "refused"; node: string; at: number; error: string }
  | { kind: "forget"; node: string };

/** One node's health as the proxy sees it. */
export interface ObservedHealth {
  state: "up" | "down" | "read-only" | "stalled" | "unauthorized";
  /** When its state last changed (ms, on the detector's monotonic clock). */
  since: number;
  lastError?: string;
  /** Consecutive failures. */
  failures: number;
  /** Why writes go to other replicas first (refused or stalled), when its last probe said so. */
  writesAvoided?: string;
  /** Its wall clock minus this proxy's (ms), as its last probe that said it measured. */
  clockOffsetMs?: number;
}

interface Tracked extends ObservedHealth {
  /** Its writes are avoided because they stall (it still takes them), not refused. */
  stalled?: boolean;
  /** Its acceptor floor as its last probe said; see {@link FailureDetector.promiseFloor}. */
  floor?: Version;
  /** It failed since its last probe said its floor: it may have restarted with a higher one. */
  floorUnsure?: boolean;
  nextProbeAt: number;
  probing: boolean;
}

/** Where a node of each state goes in {@link FailureDetector.order}. */
const RANK = { up: 0, "read-only": 1, stalled: 1, down: 2, unauthorized: 2 } as const;

/** Health of the nodes the proxy talks to; unknown nodes count as up. */
export class FailureDetector {
  readonly #nodes = new Map<string, Tracked>();

  /** `probeMs`: how often each node is probed. */
  constructor(private readonly options: { probeMs: number }) {}

  /** Applies one event. */
  step(event: HealthEvent): void {
    if (event.kind === "forget") {
      this.#nodes.delete(event.node);
      return;
    }
    const node = this.#track(event.node, event.at);
    node.probing = false;
    if (event.kind === "answered") {
      const avoid = event.avoidWrites;
      if (avoid === false) delete node.writesAvoided;
      else if (avoid !== undefined) node.writesAvoided = avoid.why;
      if (avoid !== undefined) node.stalled = avoid !== false && avoid.stalled;
      if (event.clockOffsetMs !== undefined) node.clockOffsetMs = event.clockOffsetMs;
      if (event.promiseFloor !== undefined) {
        if (event.promiseFloor === null) delete node.floor;
        else node.floor = event.promiseFloor;
        delete node.floorUnsure;
      }
      const state = node.writesAvoided === undefined
        ? "up"
        : node.stalled
        ? "stalled"
        : "read-only";
      if (node.state !== state) node.since = event.at;
      node.state = state;
      node.failures = 0;
      delete node.lastError;
    } else if (event.kind === "refused") {
      if (node.state !== "unauthorized") node.since = event.at;
      node.state = "unauthorized";
      node.failures = 0;
      node.lastError = event.error;
    } else {
      if (node.state !== "down") node.since = event.at;
      node.state = "down";
      node.floorUnsure = true;
      node.failures++;
      if (event.error !== undefined) node.lastError = event.error;
      node.nextProbeAt = event.at + this.options.probeMs;
    }
  }

  /** Starts tracking `ids` (e.g. every node of the map); the nodes due a probe at `now`. */
  tick(now: number, ids: readonly string[] = []): string[] {
    for (const id of ids) this.#track(id, now);
    const due: string[] = [];
    for (const [id, node] of this.#nodes) {
      if (node.probing || node.nextProbeAt > now) continue;
      node.probing = true;
      node.nextProbeAt = now + this.options.probeMs;
      due.push(id);
    }
    return due;
  }

  /** Whether requests should count on the node (unknown nodes: yes). */
  isUp(id: string): boolean {
    return RANK[this.#nodes.get(id)?.state ?? "up"] < 2;
  }

  /** Whether writes should go to the node first (up: neither down, read-only nor stalled). */
  writesFirst(id: string): boolean {
    const state = this.#nodes.get(id)?.state;
    return state === undefined || state === "up";
  }

  /**
   * The ballot below which the node refuses every accept on a key whose entry is older: its
   * acceptor's floor since its last start, as its last probe said (undefined: none known);
   * "unsure" when a call to it failed since that probe, as a restart would make it fail (the
   * next probe says). One-round-trip writes are not sent below it (proxy/replication/caspaxos.ts).
   */
  promiseFloor(id: string): Version | "unsure" | undefined {
    const node = this.#nodes.get(id);
    return node?.floorUnsure ? "unsure" : node?.floor;
  }

  /** The node's health, or undefined when never seen. */
  health(id: string): ObservedHealth | undefined {
    const node = this.#nodes.get(id);
    if (node === undefined) return undefined;
    const { state, since, failures, lastError, writesAvoided, clockOffsetMs } = node;
    return {
      state,
      since,
      failures,
      ...(lastError === undefined ? {} : { lastError }),
      ...(writesAvoided === undefined ? {} : { writesAvoided }),
      ...(clockOffsetMs === undefined ? {} : { clockOffsetMs }),
    };
  }

  /**
   * `nodes` with the up ones first, then the read-only and stalled ones, then the down and
   * unauthorized ones.
   */
  order<T extends { id: string }>(nodes: readonly T[]): T[] {
    // One pass, no object per node: every quorum call of every request orders its replicas.
    const ranked: [T[], T[], T[]] = [[], [], []];
    for (const n of nodes) ranked[RANK[this.#nodes.get(n.id)?.state ?? "up"]].push(n);
    const [up, readOnly, down] = ranked;
    return readOnly.length + down.length === 0 ? up : [...up, ...readOnly, ...down];
  }

  #track(id: string, now: number): Tracked {
    let node = this.#nodes.get(id);
    if (node === undefined) {
      node = { state: "up", since: now, failures: 0, nextProbeAt: now, probing: false };
      this.#nodes.set(id, node);
    }
    return node;
  }
}
