/**
 * The proxy's replication parts, built together: the quorum data path
 * (proxy/replicated.ts), the failure detector fed by every call and by health probes,
 * and hinted handoff replayed when a node answers again. {@link Replication.start} runs
 * the probe loop and the anti-entropy sweeps (proxy/main.ts starts them; in-process tests may drive
 * {@link Replication.probeOnce} instead).
 *
 * @module
 */
import { RingkvError } from "../shared/errors.ts";
import { HybridClock } from "../shared/version.ts";
import type { WireEntry } from "../shared/wire.ts";
import { FailureDetector, type NodeHealth } from "./failure_detector.ts";
import { Hints } from "./hints.ts";
import { AntiEntropy } from "./anti_entropy.ts";
import { NodeAdmin } from "./node_admin.ts";
import { NodeClient, type NodeRef } from "./node_client.ts";
import { PaxosBatcher } from "./paxos_batcher.ts";
import { PaxosClient } from "./paxos_client.ts";
import { Replicated } from "./replicated.ts";
import type { TopologySource } from "./topology.ts";

/** What {@link createReplication} needs. */
export interface ReplicationOptions {
  fetch: (req: Request) => Promise<Response>;
  clusterSecret?: string;
  timeoutMs: number;
  /** Probe interval of each node, in ms (default 1000). */
  probeMs?: number;
  /** The writer id of this proxy's ballots (default: random). */
  proxyId?: string;
  /** Interval of anti-entropy sweeps, in ms (0: none; the default). */
  antiEntropyMs?: number;
  log?: (obj: Record<string, unknown>) => void;
}

const REPLAY_CHUNK = 200;

/** The replication parts of one proxy. */
export class Replication {
  readonly detector: FailureDetector;
  readonly hints = new Hints();
  readonly client: PaxosClient;
  readonly replicated: Replicated;
  /** Compares and syncs replicas range by range (proxy/anti_entropy.ts). */
  readonly antiEntropy: AntiEntropy;
  #timer: ReturnType<typeof setInterval> | undefined;
  #sweeper: ReturnType<typeof setInterval> | undefined;

  /** Builds the parts; nothing runs until {@link start}. */
  constructor(private readonly options: ReplicationOptions) {
    this.detector = new FailureDetector({ probeMs: options.probeMs ?? 1000 });
    this.client = new PaxosClient({ ...options, report: (e) => this.detector.step(e) });
    const ingestClient = new NodeClient(options);
    this.replicated = new Replicated({
      // Concurrent requests' rounds go to each node together (proxy/paxos_batcher.ts).
      client: new PaxosBatcher(this.client),
      ingest: (node, epoch, entries) => ingestClient.ingest(node, epoch, entries),
      clock: new HybridClock(options.proxyId ?? randomProxyId()),
      detector: this.detector,
      hints: this.hints,
      log: options.log,
    });
    this.antiEntropy = new AntiEntropy({
      admin: new NodeAdmin(options),
      accept: (node, epoch, entries) => this.client.accept(node, epoch, entries),
      isUp: (id) => this.detector.isUp(id),
      log: options.log,
    });
  }

  /** Probes due nodes of `topology` every so often, until {@link stop}. */
  start(topology: TopologySource): void {
    const every = Math.max(10, Math.floor((this.options.probeMs ?? 1000) / 4));
    this.#timer = setInterval(() => void this.probeOnce(topology), every);
    const sweepMs = this.options.antiEntropyMs ?? 0;
    if (sweepMs > 0) {
      this.#sweeper = setInterval(() => {
        this.antiEntropy.sweep(topology.current()).catch((err) => {
          if (!(err instanceof RingkvError)) throw err;
          this.options.log?.({ msg: "anti-entropy sweep failed", error: err.message });
        });
      }, sweepMs);
    }
  }

  /** Stops the probe loop. */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#timer = this.#sweeper = undefined;
  }

  /** Probes the nodes that are due now, then replays hints to the nodes that are up. */
  async probeOnce(topology: TopologySource, now = Date.now()): Promise<void> {
    const topo = topology.current();
    const nodes = new Map<string, NodeRef>();
    for (const n of [...topo.map.nodes, ...(topo.map.rebalancing?.next ?? [])]) {
      nodes.set(n.id, { id: n.id, url: n.url });
    }
    const due = this.detector.tick(now, [...nodes.keys()]);
    await Promise.allSettled(due.map((id) => this.client.probe(nodes.get(id)!)));
    await Promise.allSettled(
      [...nodes.values()].filter((n) => this.detector.isUp(n.id) && this.hints.count(n.id) > 0)
        .map((n) => this.#replay(n, topo.map.epoch)),
    );
  }

  /** Each node's health as this proxy sees it, and hints waiting for it. */
  healthOf(id: string): (NodeHealth & { hints: number }) | { state: "unknown"; hints: number } {
    return {
      ...(this.detector.health(id) ?? { state: "unknown" as const }),
      hints: this.hints.count(id),
    };
  }

  /** Offers a node the writes it missed; refused ones are older than what it has promised. */
  async #replay(node: NodeRef, epoch: number): Promise<void> {
    for (;;) {
      const batch: WireEntry[] = this.hints.take(node.id, REPLAY_CHUNK);
      if (batch.length === 0) return;
      try {
        await this.client.accept(node, epoch, batch);
      } catch (err) {
        if (!(err instanceof RingkvError)) throw err;
        for (const e of batch) this.hints.add(node.id, e);
        return;
      }
    }
  }
}

/** Builds the replication parts. */
export function createReplication(options: ReplicationOptions): Replication {
  return new Replication(options);
}

function randomProxyId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(6));
  return "p" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
