/**
 * proxy/replication/ (this folder's main module): CASPaxos writes, quorum reads, hints, the
 * failure detector, anti-entropy and rejoin. May import proxy/cluster, proxy/nodes and shared/.
 *
 * The proxy's replication parts, built together: the quorum data path
 * (proxy/replication/caspaxos.ts), the failure detector fed by every call and by health probes,
 * and hinted handoff replayed when a node answers again. {@link Replication.start} runs
 * the probe loop and the anti-entropy sweeps (proxy/main.ts starts them; in-process tests may drive
 * {@link Replication.probeOnce} instead).
 *
 * @module
 */
import { callValueBytes, DEFAULT_LIMITS, type Limits } from "../../shared/limits.ts";
import { offsetClock } from "../../shared/test_clock.ts";
import { RingkvError } from "../../shared/errors.ts";
import { HybridClock, randomProxyId } from "../../shared/version.ts";
import type { NodeInfo } from "../../shared/wire.ts";
import { FailureDetector, type ObservedHealth } from "./failure_detector.ts";
import { Hints } from "./hints.ts";
import { AntiEntropy, syncPauseMs } from "./anti_entropy.ts";
import { NodeAdmin } from "../nodes/node_admin.ts";
import { NodeClient, type NodeFetch, type NodeRef } from "../nodes/node_client.ts";
import { PaxosBatcher } from "./paxos_batcher.ts";
import { PaxosClient } from "../nodes/paxos_client.ts";
import { FAST_EXPIRY_MARGIN_MS, Replicated } from "./caspaxos.ts";
import { MIN_TOMBSTONE_GRACE_MS } from "../../shared/tombstone_grace.ts";
import { type MapWriter, Rejoin } from "./rejoin.ts";
import type { Topology, TopologySource } from "../cluster/topology.ts";
import { replayHints } from "./hint_replay.ts";
import { ReplayBackoff } from "./replay_backoff.ts";
import { replicasFor } from "../routing/router.ts";

/** What {@link createReplication} needs. */
export interface ReplicationOptions {
  fetch: NodeFetch;
  clusterSecret?: string;
  timeoutMs: number;
  /** Probe interval of each node, in ms (default 1000). */
  probeMs?: number;
  /** The writer id of this proxy's ballots (default: random). */
  proxyId?: string;
  /** Interval of anti-entropy sweeps, in ms (0: none; the default). */
  antiEntropyMs?: number;
  /** Test-only offset of the ballots' wall clock (shared/test_clock.ts). */
  clockOffsetMs?: number;
  /** One-round-trip writes (default true). */
  fastWrites?: boolean;
  /**
   * The cluster map (a ClusterState): when given, a node found on another data-directory
   * incarnation than the map records is caught up and recorded (proxy/replication/rejoin.ts).
   */
  maps?: MapWriter;
  /** The nodes' limits: a batched call's size and a read answer's values (default: defaults). */
  limits?: Pick<Limits, "maxBatchBytes">;
  log?: (obj: Record<string, unknown>) => void;
}

/** A node's clock offset past which the proxy warns (etcd: "clock difference against peer"). */
export const CLOCK_WARN_MS = 1000;

/** The replication parts of one proxy. */
export class Replication {
  readonly detector: FailureDetector;
  readonly hints = new Hints();
  readonly client: PaxosClient;
  readonly replicated: Replicated;
  /** Compares and syncs replicas range by range (proxy/replication/anti_entropy.ts). */
  readonly antiEntropy: AntiEntropy;
  /** Catches up nodes back on a new data directory (only with `maps`). */
  readonly rejoin: Rejoin | undefined;
  /** Each node's data-directory incarnation, as its last probe answered. */
  readonly #seen = new Map<string, Seen>();
  /** Nodes whose hints are being offered: one replay per node at a time (diff review). */
  readonly #replaying = new Set<string>();
  /**
   * Each node's last state change as first shown on the wall clock: worked out again at every
   * call, a later step of the wall clock moved it.
   */
  readonly #sinceWall = new Map<string, { monotonic: number; wall: number }>();
  /** When each node's next replay may start, after replays that made no progress. */
  readonly #backoff: ReplayBackoff;
  /** The URL each node had at the last probe round: its health is of that address. */
  readonly #probedUrls = new Map<string, string>();
  /** Nodes whose clock offset is past {@link CLOCK_WARN_MS} (warned once, until back within). */
  readonly #clockWarned = new Set<string>();
  /** Nodes that refuse this proxy's cluster secret (warned once, until they take it). */
  readonly #secretWarned = new Set<string>();
  #topology: TopologySource | undefined;
  readonly #ingest: NodeClient;
  #timer: ReturnType<typeof setInterval> | undefined;
  #sweeper: ReturnType<typeof setInterval> | undefined;

  /** Builds the parts; nothing runs until {@link start}. */
  constructor(private readonly options: ReplicationOptions) {
    this.detector = new FailureDetector({ probeMs: options.probeMs ?? 1000 });
    this.#backoff = new ReplayBackoff(options.probeMs ?? 1000);
    this.client = new PaxosClient({ ...options, report: (e) => this.detector.step(e) });
    const ingestClient = this.#ingest = new NodeClient(options);
    this.replicated = new Replicated({
      // Concurrent requests' rounds go to each node together (proxy/replication/paxos_batcher.ts).
      client: new PaxosBatcher(this.client, options.limits?.maxBatchBytes, options.timeoutMs),
      ingest: (node, epoch, entries) => ingestClient.ingest(node, epoch, entries),
      clock: new HybridClock(
        options.proxyId ?? randomProxyId(),
        offsetClock(options.clockOffsetMs ?? 0),
      ),
      detector: this.detector,
      hints: this.hints,
      fastWrites: options.fastWrites,
      // A recovery takes up to ~20 call timeouts (the fast accept, a read, 8 rounds of two).
      fastExpiryMarginMs: Math.max(FAST_EXPIRY_MARGIN_MS, 30 * options.timeoutMs),
      // Half the shortest grace any proxy may run with, whatever this proxy's own (even 0: another
      // proxy of the cluster may purge).
      fastTombstoneAgeMs: MIN_TOMBSTONE_GRACE_MS / 2,
      keyWaitMs: options.timeoutMs,
      log: options.log,
    });
    this.antiEntropy = new AntiEntropy({
      admin: new NodeAdmin(options),
      accept: (node, epoch, entries) => this.client.accept(node, epoch, entries),
      // Any other round on a key ends its one-round-trip writes until this proxy's next round.
      forget: (key) => this.replicated.forget(key),
      settle: (replicas, e, epoch) =>
        this.replicated.settle({ owners: [...replicas], joining: [], key: e.k, point: e.h, epoch }),
      // A node catching up on a new data directory is no replica to compare with yet.
      isUp: (id) => this.detector.isUp(id) && !this.healthOf(id).recovering,
      log: options.log,
      pauseMs: syncPauseMs(options.antiEntropyMs ?? 0),
    });
    this.rejoin = options.maps === undefined
      ? undefined
      : new Rejoin({ admin: new NodeAdmin(options), maps: options.maps, log: options.log });
  }

  /** Probes due nodes of `topology` every so often, until {@link stop}. */
  start(topology: TopologySource): void {
    this.#topology = topology;
    const every = Math.max(10, Math.floor((this.options.probeMs ?? 1000) / 4));
    this.#timer = setInterval(() => {
      this.probeOnce(topology).catch((err) => this.#logFailure("probe failed", err));
    }, every);
    const sweepMs = this.options.antiEntropyMs ?? 0;
    if (sweepMs > 0) {
      this.#sweeper = setInterval(() => {
        this.antiEntropy.sweep(topology.current())
          .catch((err) => this.#logFailure("anti-entropy sweep failed", err));
      }, sweepMs);
    }
  }

  /** The node's wall clock minus this proxy's (ms), as its last probe measured; for /metrics. */
  clockOffsetMs(id: string): number | undefined {
    return this.detector.health(id)?.clockOffsetMs;
  }

  /** Warns once when a node's clock is more than {@link CLOCK_WARN_MS} from this proxy's. */
  #watchClock(id: string): void {
    const offsetMs = this.clockOffsetMs(id);
    if (offsetMs === undefined) return;
    const far = Math.abs(offsetMs) > CLOCK_WARN_MS;
    if (far === this.#clockWarned.has(id)) return;
    if (far) this.#clockWarned.add(id);
    else this.#clockWarned.delete(id);
    this.options.log?.({
      level: far ? "warn" : "info",
      msg: far
        ? "clock difference against node is too high: TTLs expire by clocks (docs/api.md)"
        : "clock difference against node is back within bounds",
      node: id,
      offsetMs,
      boundMs: CLOCK_WARN_MS,
    });
  }

  /**
   * Warns once when a node refuses this proxy's cluster secret (every call to it would answer
   * 502), and says when it takes it again: a misconfiguration the operator must fix.
   */
  #watchSecret(id: string): void {
    const state = this.detector.health(id)?.state;
    const refused = state === "unauthorized";
    // A refusing node that goes down has not taken the secret: only an answer says so (review).
    if (state === "down" || refused === this.#secretWarned.has(id)) return;
    if (refused) this.#secretWarned.add(id);
    else this.#secretWarned.delete(id);
    this.options.log?.({
      level: refused ? "warn" : "info",
      msg: refused
        ? "node refuses this proxy's cluster secret: every call to it fails (502 bad_gateway) " +
          "until it and this proxy run with the same one: restart that node with the " +
          "cluster's secret, or this proxy if every node refuses it (--cluster-secret or " +
          "RINGKV_CLUSTER_SECRET; deno task cluster keeps it in <its --data>/cluster-secret, " +
          "data/cluster-secret by default)"
        : "node takes this proxy's cluster secret again",
      node: id,
      ...(refused ? { error: this.detector.health(id)?.lastError } : {}),
    });
  }

  /**
   * Logs the failure of a timer's run that nobody awaits: rethrown, it would end the
   * process (and its hints); the next run tries again.
   */
  #logFailure(msg: string, err: unknown): void {
    const error = err instanceof Error ? err.message : String(err);
    if (err instanceof RingkvError) return void this.options.log?.({ msg, error });
    const stack = err instanceof Error ? err.stack : undefined;
    this.options.log?.({ level: "error", msg, error, stack });
  }

  /** Stops the probe loop and the anti-entropy sweeps (a running one ends at its next pause). */
  stop(): void {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#timer = this.#sweeper = undefined;
    void this.antiEntropy.stop();
  }

  /**
   * Probes the nodes that are due at `now` (monotonic ms, as the detector's events), then
   * replays hints to the nodes that are up.
   */
  async probeOnce(topology: TopologySource, now = performance.now()): Promise<void> {
    const topo = topology.current();
    const nodes = new Map<string, NodeRef>();
    for (const n of [...topo.map.nodes, ...(topo.map.rebalancing?.next ?? [])]) {
      // Hints carry the map's incarnation: a node back on a new directory refuses them.
      nodes.set(n.id, { id: n.id, url: n.url, ...incarnationOf(n) });
    }
    this.#forgetMoved(nodes);
    const due = this.detector.tick(now, [...nodes.keys()]);
    // A node that left holds no replica: its hints would take room from the others' for good.
    this.hints.keepOnly(new Set(nodes.keys()));
    this.#backoff.keepOnly(new Set(nodes.keys()));
    this.#topology = topology;
    await Promise.allSettled(due.map(async (id) => {
      const incarnation = await this.client.probe(nodes.get(id)!);
      const recorded = nodes.get(id)!.incarnation;
      if (incarnation !== undefined) this.#seen.set(id, { incarnation, recorded });
    }));
    for (const id of due) this.#watchClock(id);
    for (const id of nodes.keys()) this.#watchSecret(id);
    // A node seen down starts afresh: once back, its hints go out at the next probe, not after
    // the wait its failed replays left (up to 30 s).
    for (const id of nodes.keys()) if (!this.detector.isUp(id)) this.#backoff.forget(id);
    this.#rejoinMoved(topology.current().map.nodes);
    await Promise.allSettled(
      // A read-only node would refuse them (its disk failed): they wait until it takes writes.
      [...nodes.values()].filter((n) =>
        this.detector.writesFirst(n.id) && this.hints.count(n.id) > 0
      )
        .map((n) => this.#replay(n, topo, nodes, now)),
    );
  }

  /**
   * Forgets the health of nodes that left the map or came back under another URL (QA: a node
   * re-added at a new address kept the old one's last error in `GET /cluster`).
   */
  #forgetMoved(nodes: ReadonlyMap<string, NodeRef>): void {
    for (const [id, url] of this.#probedUrls) {
      if (nodes.get(id)?.url === url) continue;
      this.detector.step({ kind: "forget", node: id });
      this.#seen.delete(id);
      this.#sinceWall.delete(id);
      this.#probedUrls.delete(id);
      this.#secretWarned.delete(id);
    }
    for (const [id, node] of nodes) this.#probedUrls.set(id, node.url);
  }

  /**
   * Each node's health as this proxy sees it, hints waiting for it, and its data-directory
   * incarnation: `recovering` while it differs from the map's (the node does not vote).
   */
  healthOf(id: string): (ObservedHealth | { state: "unknown" }) & NodeVoting {
    const recorded = this.#topology?.current().map.nodes.find((n) => n.id === id)?.incarnation;
    const seen = this.#current(id, recorded);
    const last = this.#seen.get(id)?.incarnation;
    const recovering = seen !== undefined && recorded !== undefined && seen !== recorded;
    const why = recovering ? this.rejoin?.lastError.get(id) : undefined;
    const lost = this.rejoin?.lostData.get(id);
    const health = this.detector.health(id);
    return {
      // `since` is shown: on the wall clock, as long ago as the detector's monotonic clock says.
      ...(health === undefined
        ? { state: "unknown" as const }
        : { ...health, since: this.#wallOf(id, health.since) }),
      hints: this.hints.count(id),
      ...(last === undefined ? {} : { incarnation: last }),
      recovering,
      ...(why === undefined ? {} : { rejoinError: why }),
      ...(lost === undefined ? {} : { lostData: lost }),
    };
  }

  /** `monotonic` (the detector's clock) on the wall clock, read once per state change. */
  #wallOf(id: string, monotonic: number): number {
    const known = this.#sinceWall.get(id);
    if (known?.monotonic === monotonic) return known.wall;
    const wall = Math.round(Date.now() - (performance.now() - monotonic));
    this.#sinceWall.set(id, { monotonic, wall });
    return wall;
  }

  /**
   * The node's incarnation as its last probe answered, unless the map's record changed
   * since that probe: then the answer may predate it (another proxy caught the node up).
   */
  #current(id: string, recorded: string | undefined): string | undefined {
    const seen = this.#seen.get(id);
    return seen !== undefined && seen.recorded === recorded ? seen.incarnation : undefined;
  }

  /** Starts the rejoin of each up node whose directory is not the one the map records. */
  #rejoinMoved(nodes: readonly NodeInfo[]): void {
    for (const n of nodes) {
      const seen = this.#current(n.id, n.incarnation);
      if (this.rejoin && seen !== undefined && seen !== n.incarnation && this.detector.isUp(n.id)) {
        void this.rejoin.start(n.id, seen);
      }
    }
  }

  /**
   * Offers a node the writes it missed (proxy/replication/hint_replay.ts), unless a replay to it
   * runs or waits out its backoff (proxy/replication/replay_backoff.ts). `now`: the probe's time.
   */
  async #replay(
    node: NodeRef,
    topo: Topology,
    nodes: ReadonlyMap<string, NodeRef>,
    now: number,
  ): Promise<void> {
    // Probes come every quarter probe interval; a replay of refused hints reads their owners,
    // so a second one started meanwhile would only send the same reads again.
    if (this.#replaying.has(node.id) || !this.#backoff.due(node.id, now)) return;
    this.#replaying.add(node.id);
    const started = performance.now();
    const report = await replayHints(node, topo.map.epoch, {
      hints: this.hints,
      valueBudget: callValueBytes(this.options.limits ?? DEFAULT_LIMITS),
      accept: (n, epoch, entries) => this.client.accept(n, epoch, entries),
      read: (n, epoch, keys) => this.client.read(n, epoch, keys),
      ingest: (n, epoch, entries) => this.#ingest.ingest(n, epoch, entries),
      // With the next ring's joining owners, as a write's round: a rebalancing may be copying
      // (diff review: a settle that skipped them decided a value the new owners never got).
      settle: (e, epoch) => this.replicated.settle({ ...replicasFor(topo, e.k, e.h), epoch }),
      ownersOf: (point) =>
        topo.ring.ownersOf(point, topo.map.replicas).flatMap((id) => nodes.get(id) ?? []),
      forget: (key) => this.replicated.forget(key),
    }).finally(() => this.#replaying.delete(node.id));
    // On the probe's clock (a test's may run ahead), at the replay's end.
    this.#backoff.record(node.id, report, now + performance.now() - started);
    if (report.ingested + report.retry > 0) {
      this.options.log?.({ msg: "hints refused, node brought level", node: node.id, ...report });
    }
  }
}

/** A probe's answer and the incarnation the map recorded when it was sent. */
interface Seen {
  incarnation: string;
  recorded: string | undefined;
}

/** Whether a node votes, as {@link Replication.healthOf} reports it. */
export interface NodeVoting {
  hints: number;
  /** Its data directory's incarnation, as its last probe answered. */
  incarnation?: string;
  /** It answers on another incarnation than the map records: not a voter until caught up. */
  recovering: boolean;
  /** Why its catch-up has not finished yet. */
  rejoinError?: string;
  /** With one replica: it came back empty and its keys are lost (kept until a restart). */
  lostData?: string;
}

/** Builds the replication parts. */
export function createReplication(options: ReplicationOptions): Replication {
  return new Replication(options);
}

function incarnationOf(n: NodeInfo): { incarnation?: string } {
  return n.incarnation === undefined ? {} : { incarnation: n.incarnation };
}
