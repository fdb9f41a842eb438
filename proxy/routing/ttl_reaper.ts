/**
 * The TTL reaper: turns keys whose TTL ran out into tombstones through the normal write
 * path (the router: CASPaxos with replicas, the owner's batch without), so every replica,
 * a rebalancing and a restart agree that the key is gone and its value's memory and disk
 * are reclaimed. Reads hide an expired key before this runs (proxy/http/expiry_view.ts);
 * the reaper makes it final. A node lists a key only once it expired on this proxy's clock and
 * on the node's own, so one clock ahead cannot make keys gone early (docs/api.md, "Expiring
 * keys"). Each delete is conditional (`expire` + `ifMatch`): a key written again meanwhile is
 * left alone.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import type { BatchOp } from "../../shared/wire.ts";
import type { Topology, TopologySource } from "../cluster/topology.ts";
import type { NodeClient } from "../nodes/node_client.ts";
import type { Router } from "./router.ts";
import type { Counter } from "../../shared/prom.ts";
import { SweepTimer } from "../../shared/sweep_timer.ts";

/** How often a proxy sweeps for expired keys, in ms (docs/api.md bounds expiry with it). */
export const TTL_SWEEP_MS = 1000;

/** What a {@link TtlReaper} needs. */
export interface TtlReaperDeps {
  topology: TopologySource;
  client: Pick<NodeClient, "expired">;
  router: Pick<Router, "run">;
  /** This proxy's wall clock (ms). */
  now?: () => number;
  /** Keys asked of each node per sweep (default 1,000). */
  perNode?: number;
  /** Counts each delete's outcome (`ringkv_proxy_ttl_reaper_deletes_total`). */
  counted?: Counter;
  log?: (obj: Record<string, unknown>) => void;
}

/** Sweeps the nodes for expired keys and deletes them. */
export class TtlReaper {
  readonly #timer = new SweepTimer();

  /** Creates a reaper; {@link start} runs it on a timer, {@link sweep} once. */
  constructor(private readonly deps: TtlReaperDeps) {}

  /** One sweep: every node's expired keys, each deleted if still expired; returns how many. */
  async sweep(): Promise<number> {
    const topo = this.deps.topology.current();
    const now = (this.deps.now ?? Date.now)();
    const found = await Promise.all(nodesOf(topo).map((node) => this.#ask(topo, node, now)));
    const newest = new Map<string, string>();
    for (const { k, ver } of found.flat()) {
      const seen = newest.get(k);
      if (seen === undefined || ver > seen) newest.set(k, ver);
    }
    const ops: BatchOp[] = [...newest].map(([key, ver]) => ({
      op: "delete",
      key,
      ifMatch: ver,
      expire: true,
    }));
    if (ops.length === 0) return 0;
    const outcomes = await this.deps.router.run(ops);
    const expired = outcomes.filter((o) => !(o instanceof RingkvError) && o.status === 204).length;
    const failed = outcomes.filter((o) => o instanceof RingkvError).length;
    this.deps.counted?.inc({ outcome: "expired" }, expired);
    this.deps.counted?.inc({ outcome: "kept" }, outcomes.length - expired - failed);
    this.deps.counted?.inc({ outcome: "failed" }, failed);
    return expired;
  }

  /** Sweeps every `everyMs` until {@link stop}; a sweep never overlaps the previous one. */
  start(everyMs: number): void {
    this.#timer.start(everyMs, () => this.sweep(), (err) => {
      this.deps.log?.({ msg: "ttl sweep failed", error: err.message });
    });
  }

  /** Stops the timer. */
  stop(): void {
    this.#timer.stop();
  }

  async #ask(topo: Topology, node: { id: string; url: string }, now: number) {
    try {
      return await this.deps.client.expired(node, topo.map.epoch, now, this.deps.perNode ?? 1000);
    } catch (err) {
      // A node that is down is swept once it is back; the others go on.
      if (!(err instanceof RingkvError)) throw err;
      return [];
    }
  }
}

function nodesOf(topo: Topology): { id: string; url: string }[] {
  const all = [...topo.map.nodes, ...(topo.map.rebalancing?.next ?? [])];
  const byId = new Map(all.map((n) => [n.id, { id: n.id, url: n.url }]));
  return [...byId.values()];
}
