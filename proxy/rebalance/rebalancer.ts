/**
 * proxy/rebalance/ (this folder's main module): moving ranges when nodes join or leave. May
 * import proxy/cluster, proxy/replication, proxy/nodes and shared/.
 *
 * Adds and removes nodes online. A state machine driven by calls: {@link Rebalancer.step}
 * looks at the current map and takes the next step (copy ranges and switch to cleanup,
 * or drop moved ranges and finish); {@link Rebalancer.run} steps until the map is
 * stable. Every step is idempotent and its map is stored and pushed to every node
 * first, so a proxy that restarts mid-way (or a second proxy) can redo it.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { Rebalancer } from "./rebalancer.ts";
 * assert(typeof Rebalancer === "function");
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import { RING_SIZE } from "../../shared/ring.ts";
import type { ClusterMap, NodeInfo } from "../../shared/wire.ts";
import type { ClusterState } from "../cluster/map_view.ts";
import type { Topology } from "../cluster/topology.ts";
import type { NodeAdmin, NodeHealth, NodeLimits } from "../nodes/node_admin.ts";
import { estimateKeys } from "../cluster/key_counts.ts";
import {
  allNodes,
  cancelAdd,
  nodeInfo,
  type Plan,
  planAdd,
  planRemove,
  toCleanup,
  toStable,
} from "../cluster/map_transitions.ts";
import { recoveringOf, throwIfRecovering } from "../replication/rejoin.ts";
import { copyMoves, dropCopied, dropMoves, type MoveOptions } from "./range_copy.ts";
import { refuseDownTakers, refuseUnsafeForce } from "./removal_checks.ts";
import { type MidChangeStep, planMidChangeRemoval } from "./mid_change_removal.ts";
import { refuseUnjoinable } from "./join_check.ts";
import { refuseUnproven } from "./proof_check.ts";
import { clusterLimits, refuseSmallerLimits } from "./limits_check.ts";
import { toleratedOf } from "../replication/quorum.ts";
import { finishedNote } from "../cluster/unpushed_map.ts";

/** What a {@link Rebalancer} needs. */
export interface RebalancerDeps {
  state: ClusterState;
  admin: NodeAdmin;
  now?: () => number;
  log?: (obj: Record<string, unknown>) => void;
  /** Entries per ingest call (default 1000). */
  chunkLines?: number;
  /** Bytes per ingest call, about (default 1 MiB). */
  chunkBytes?: number;
  /** Run in the background as soon as a rebalancing starts (default true; tests step). */
  autoRun?: boolean;
  /** `/internal/accept`, for syncing the survivors of a node removed with force. */
  accept?: MoveOptions["accept"];
  /** This proxy's key and value limits: a node added with smaller ones is refused. */
  limits?: NodeLimits;
}

/** 409: the add of node `id` is past the switch, so removing it cannot cancel it. */
function pastSwitch(id: string, phase: string | undefined): RingkvError {
  return new RingkvError(
    "conflict",
    `Cannot remove node ${id}: its add is past the switch to the new ring (phase ` +
      `${phase}), so it owns ranges now; wait until GET /cluster shows no ` +
      `rebalancing, then remove it (with ?force=true if it does not answer)`,
  );
}

/** What one {@link Rebalancer.step} did. */
export type StepResult = "idle" | "copied" | "cleaned" | "superseded";

/** Drives rebalancings: started by the admin API, resumed from any stored map. */
export class Rebalancer {
  #running: Promise<void> | null = null;
  #progress: { epoch: number; movedKeys: number; movedCopies: number } | null = null;
  #driven: string | null = null;
  /** Why the last run stopped early, or null. */
  lastError: string | null = null;

  /**
   * Creates the rebalancer; nothing happens until a call, or (with `autoRun`) until the state
   * finishes another proxy's map with a rebalancing: its proxy may be gone, so this one drives
   * it at once rather than after the poller's takeover wait.
   */
  constructor(private readonly deps: RebalancerDeps) {
    if (deps.autoRun === false) return;
    deps.state.onFinished((map) => {
      if (map.rebalancing !== null) void this.run();
    });
  }

  /** Keys copied to a new owner so far by the running copy, else the map's count. */
  movedKeys(): number {
    const map = this.deps.state.current().map;
    if (this.#progress?.epoch === map.epoch) return this.#progress.movedKeys;
    return map.rebalancing?.movedKeys ?? 0;
  }

  /**
   * Copies streamed so far by the running copy: each moving key is read from n - q + 1 of
   * its old replicas, so with replicas this exceeds {@link movedKeys}. Null when this proxy
   * is not running the copy.
   */
  movedCopies(): number | null {
    const map = this.deps.state.current().map;
    return this.#progress?.epoch === map.epoch ? this.#progress.movedCopies : null;
  }

  /**
   * The copies in the current ring, a node that does not answer counted at its share of
   * the hash space (so a dead node's removal does not start from too few).
   */
  #totalCopies({ map, ring }: Topology, healths: MemberHealth): number {
    const counts = new Map(map.nodes.map((n) => [n.id, healths.get(n.id)?.keys ?? null]));
    const keys = estimateKeys(ring, map.replicas, counts);
    return keys === null ? 0 : keys * Math.min(map.replicas, map.nodes.length);
  }

  /** Each member's /health (null: it did not answer), one round for every check of a change. */
  async #memberHealth(map: ClusterMap): Promise<MemberHealth> {
    return new Map(
      await Promise.all(map.nodes.map(async (n) => {
        const health = await this.deps.admin.health(n.url).catch((err) => {
          if (!(err instanceof RingkvError)) throw err; // a fault here, not a node's answer
          return null;
        });
        return [n.id, health] as const;
      })),
    );
  }

  async #begin(next: ClusterMap): Promise<ClusterMap> {
    const choice = await this.deps.state.choose(next, "admin");
    if (choice !== "ours") {
      const now = this.deps.state.current().map;
      if (choice === "finished") {
        throw new RingkvError("conflict", `Cannot change the cluster: ${finishedNote(now)}; retry`);
      }
      const rb = now.rebalancing;
      const what = rb === null
        ? ""
        : `, node ${rb.nodeId} being ${rb.kind === "add" ? "added" : "removed"}`;
      throw new RingkvError(
        "conflict",
        `Cannot change the cluster: its map changed meanwhile (now epoch ${now.epoch}${what}: ` +
          `another change, maybe through another proxy, was made first; GET /cluster shows it); retry`,
      );
    }
    const report = await this.deps.state.push(next);
    if (report.failed.length > 0) {
      this.deps.log?.({ msg: "map push incomplete", epoch: next.epoch, failed: report.failed });
    }
    if (this.deps.autoRun !== false) void this.run();
    return next;
  }

  /**
   * Starts adding the node at `url` (its id from /health); the map it installed. The URL comes
   * from an API call: nothing carries the cluster secret to it before it proved it holds it.
   */
  async startAdd(url: string, weight: number): Promise<ClusterMap> {
    const { admin } = this.deps;
    const { health, secret } = await admin.challengedHealth(url).catch(addFailure(url, NO_NODE));
    refuseUnproven(url, secret);
    if (!(await admin.acceptsSecret(url))) {
      // Accepted, every copy to it would be refused: a rebalancing that never ends. Proven above
      // when this proxy has a secret; without one, only here can a node too old to answer a
      // challenge show it has one.
      throw new RingkvError(
        "conflict",
        `Cannot add node ${url}: it refuses this cluster's secret; start it with the ` +
          "cluster secret of the other nodes (RINGKV_CLUSTER_SECRET)",
      );
    }
    await this.deps.state.poll();
    const topology = this.deps.state.current();
    const map = topology.map;
    const node = nodeInfo(health, url, weight);
    const healths = await this.#memberHealth(map);
    throwIfRecovering(recoveringOf(map, healths), `add node ${url}`);
    const total = this.#totalCopies(topology, healths);
    // A duplicate is 409 before this.
    const next = this.#saysFinished(() => planAdd(map, node, this.#now(), total));
    const held = await this.deps.admin.getMap(url).catch(addFailure(url));
    const leftover = refuseUnjoinable(url, health, held, map);
    if (this.deps.limits) {
      const members = map.nodes.map((n) => healths.get(n.id)?.limits);
      refuseSmallerLimits(url, health.limits, clusterLimits(this.deps.limits, members));
    }
    if (leftover) await this.#empty(node, map).catch(addFailure(url));
    return await this.#begin(next);
  }

  /**
   * Starts removing node `id`: its keys move to their new owners, then it leaves. A node
   * that does not answer is refused (503) unless `force`: then it is removed for good and
   * its ranges are copied from the surviving replicas, if enough of them are up. `force`
   * also insists on a removal that leaves fewer nodes than replicas (else 409).
   */
  async startRemove(id: string, force = false): Promise<ClusterMap> {
    await this.deps.state.poll();
    const topology = this.deps.state.current();
    const map = topology.map;
    const rb = map.rebalancing;
    const adding = rb?.kind === "add" && rb.nodeId === id;
    if (adding && rb.phase === "copying") return await this.#cancelAdd(map, id);
    if (rb !== null && force) return await this.#removeMidChange(map, id);
    if (adding) throw pastSwitch(id, rb.phase);
    // Refuses unknown ids before any call to nodes.
    this.#saysFinished(() => planRemove(map, id, 0, 0, false, true));
    const healths = await this.#memberHealth(map);
    const up = upOf(map, healths);
    if (!force && !up.has(id)) {
      throw new RingkvError(
        "node_unavailable",
        `Cannot remove node ${id}: it does not answer, so its keys cannot be read from it. If it is gone for good, remove it with DELETE /cluster/nodes/${id}?force=true (kv remove ${id} --force; its keys are then copied again from the surviving replicas)`,
      );
    }
    const recovering = recoveringOf(map, healths);
    throwIfRecovering(recovering, `remove node ${id}`, force ? id : undefined);
    const total = this.#totalCopies(topology, healths);
    // A live node is drained even when forced: reading from it is the safer copy. Not one on a
    // new data directory: it lacks what it acknowledged before, so its ranges are copied again
    // from the surviving replicas, as for a dead node.
    const dead = force && (!up.has(id) || recovering.has(id));
    const next = planRemove(map, id, this.#now(), total, dead, force);
    if (dead) await refuseUnsafeForce(next, id, up);
    else await refuseDownTakers(next, id, up);
    return await this.#begin(next);
  }

  /**
   * The removal for good of node `id` while a rebalancing runs (mid_change_removal.ts): the
   * drain of `id` becomes its removal for good, or the running change ends and `id` is removed
   * for good from the stable ring. A change never waits on a node that is gone.
   */
  async #removeMidChange(map: ClusterMap, id: string): Promise<ClusterMap> {
    if (!allNodes(map).some((n) => n.id === id)) planRemove(map, id, 0, 0, false, true); // 404
    const healths = await this.#memberHealth(map);
    const up = upOf(map, healths);
    const recovering = recoveringOf(map, healths);
    throwIfRecovering(recovering, `remove node ${id}`, id);
    const step = await planMidChangeRemoval(map, id, up, !up.has(id) || recovering.has(id));
    if (step.kind === "force") return await this.#begin(step.next);
    if (step.kind === "unchanged") {
      if (this.deps.autoRun !== false) void this.run();
      return map;
    }
    await this.#endChange(map, step, id);
    const rb = map.rebalancing!;
    this.deps.log?.({
      level: "warn",
      msg: step.how === "cancel" ? `${rb.kind} cancelled` : `${rb.kind} finished early`,
      node: rb.nodeId,
      why: `node ${id} is removed for good`,
      epoch: step.end.epoch,
    });
    return await this.startRemove(id, true).catch((err) => {
      if (!(err instanceof RingkvError)) throw err;
      const what = `${rb.kind === "add" ? "add" : "removal"} of node ${rb.nodeId}`;
      throw new RingkvError(
        err.code,
        `The ${what} was ${step.how === "cancel" ? "cancelled" : "finished"}, but: ${err.message}`,
      );
    });
  }

  /** Ends the running change as `step` says: cancelled while it copies, finished in cleanup. */
  async #endChange(
    map: ClusterMap,
    step: Extract<MidChangeStep, { kind: "end-first" }>,
    dead: string,
  ): Promise<void> {
    const rb = map.rebalancing!;
    if (rb.kind === "add" && step.how === "cancel") {
      await this.#cancelAdd(map, rb.nodeId).catch((err) => {
        // The add's own next step came first (review): its 409 would name the node being
        // added, which answers, as if that were the one to remove.
        if (!(err instanceof RingkvError) || err.code !== "conflict") throw err;
        const now = this.deps.state.current().map;
        throw new RingkvError(
          "conflict",
          `Cannot remove node ${dead} yet: the running change moved on meanwhile (now epoch ` +
            `${now.epoch}, ${now.rebalancing?.phase ?? "no rebalancing"}); retry the removal of ` +
            `node ${dead}`,
        );
      });
      return;
    }
    if (step.how === "finish") {
      // The cleanup's own step, without waiting on the dead node: the next ring serves already.
      if (!(await this.#pushOrThrow(map, dead))) throw mapChanged(this.deps.state);
      await dropMoves(map, { ...this.deps, epoch: map.epoch });
    }
    await this.#begin(step.end);
    // The copies the takers of a cancelled drain got are of ranges they do not own now.
    if (step.how === "cancel") await dropCopied(map, { ...this.deps, epoch: step.end.epoch });
  }

  /**
   * The removal of a node being added: its add is cancelled while its ranges are copied (a
   * node that died mid-add would otherwise hold the rebalancing up for good), and a node that
   * answers is told and emptied, so it may be added again.
   */
  async #cancelAdd(map: ClusterMap, id: string): Promise<ClusterMap> {
    if (map.rebalancing?.phase !== "copying") throw pastSwitch(id, map.rebalancing?.phase);
    const joining = allNodes(map).find((n) => n.id === id)!;
    const next = cancelAdd(map);
    const started = await this.#begin(next).catch((err) => {
      // The add's own next step was chosen first (its copy ended meanwhile): say so rather
      // than that another change was made.
      const now = this.deps.state.current().map;
      const rb = now.rebalancing;
      if (err instanceof RingkvError && err.code === "conflict" && now.epoch === map.epoch + 1) {
        if (rb?.kind === "add" && rb.nodeId === id) throw pastSwitch(id, rb.phase);
      }
      throw err;
    });
    try {
      await this.#empty(joining, next);
    } catch (err) {
      if (!(err instanceof RingkvError)) throw err;
      this.deps.log?.({
        level: "warn",
        msg: "cancelled add: node not emptied",
        node: id,
        error: err.message,
      });
    }
    this.deps.log?.({ msg: "add cancelled", node: id, epoch: next.epoch });
    return started;
  }

  /**
   * Empties node `node` (a joining node whose add was cancelled): tells it `map`, which fences
   * off the add's copies, then drops every entry it holds, until it holds none. Only the node
   * recorded (its id and data directory answer at its URL): a member started at that URL since
   * must keep its keys (found by review).
   */
  async #empty(node: NodeInfo, map: ClusterMap): Promise<void> {
    const { admin } = this.deps;
    for (let attempt = 1;; attempt++) {
      const health = await admin.health(node.url);
      const other = health.id !== node.id ||
        (node.incarnation !== undefined && health.incarnation !== node.incarnation);
      if (other) {
        throw new RingkvError(
          "conflict",
          `Cannot empty node ${node.id}: ${node.url} answers as node ${health.id} on data ` +
            `directory ${health.incarnation ?? "(none)"}, not the node whose add was cancelled`,
        );
      }
      if (health.keys === 0 && attempt > 1) return;
      const told = await admin.putMap(node.url, map);
      if (!told.stored) {
        throw new RingkvError(
          "conflict",
          `Cannot empty node ${node.id}: it holds a newer cluster map (epoch ${told.map.epoch})`,
        );
      }
      // The incarnation makes another node at that URL refuse the drop.
      await admin.drop(node.url, [{ start: 0, end: RING_SIZE }], map.epoch, health.incarnation);
      // An ingest of the add admitted before the map arrived may land after the drop: again.
      if (attempt >= 3) return;
    }
  }

  /**
   * Runs `plan`; its 409 over a rebalancing that this proxy just finished for another proxy
   * (found accepted, never pushed: the operator may not know of it) says so.
   */
  #saysFinished<T>(plan: () => T): T {
    try {
      return plan();
    } catch (err) {
      const finished = this.deps.state.lastFinished;
      const map = this.deps.state.current().map;
      const ours = finished !== null && finished.epoch === map.epoch && map.rebalancing !== null;
      if (!(err instanceof RingkvError) || err.code !== "conflict" || !ours) throw err;
      throw new RingkvError("conflict", `${err.message}; ${finishedNote(map)}`);
    }
  }

  #now(): number {
    return (this.deps.now ?? Date.now)();
  }

  /** Pushes `map` to every node it mentions but `excused` (one being removed for good). */
  async #pushOrThrow(map: ClusterMap, excused?: string): Promise<boolean> {
    const report = await this.deps.state.push(map);
    if (report.superseded) return false;
    // A leaving node past the switch serves nothing: it may be gone for good.
    const rb = map.rebalancing;
    const leaving = rb?.kind === "remove" && (rb.phase === "cleanup" || (rb as Plan).force);
    const gone = [...(leaving ? urlsOf(map, rb!.nodeId) : []), ...urlsOf(map, excused)];
    const failed = report.failed.filter((f) => !gone.includes(f.url));
    // With replicas, a minority of a key's replicas may be down: it gets the map when it
    // is back (the poller pushes the current map to nodes holding an older one).
    if (failed.length > toleratedOf(map.replicas)) {
      const which = failed.map((f) => f.message).join("; ");
      const ids = allNodes(map).filter((n) => failed.some((f) => f.url === n.url)).map((n) => n.id);
      throw new RingkvError(
        "node_unavailable",
        `Cannot continue the rebalancing at epoch ${map.epoch}: not every node has the map ` +
          `(${which}); bring ${ids.join(", ")} back, or remove ${
            ids.length === 1 ? "it" : "a node that will not come back"
          } for good with DELETE /cluster/nodes/${
            ids[0]
          }?force=true (409 when that could lose writes)`,
      );
    }
    return true;
  }

  /** Takes the next step of the rebalancing in the current map, if any. */
  async step(): Promise<StepResult> {
    const map = this.deps.state.current().map;
    const rb = map.rebalancing;
    if (rb === null) return "idle";
    // Every node must hold this map before we act on it: stale proxies get 409 from then on.
    if (!(await this.#pushOrThrow(map))) return "superseded";
    const options = { ...this.deps, epoch: map.epoch };
    let next: ClusterMap;
    if (rb.phase === "copying") {
      this.#progress = { epoch: map.epoch, movedKeys: 0, movedCopies: 0 };
      const progress = this.#progress;
      await copyMoves(map, {
        ...options,
        onCopied: (n) => (progress.movedCopies += n),
        onPlaced: (n) => (progress.movedKeys += n),
      });
      next = toCleanup(map, progress.movedKeys);
      this.lastError = null; // every range copied: why an earlier run stopped no longer holds
    } else {
      await dropMoves(map, options);
      next = toStable(map);
    }
    if (!(await this.deps.state.propose(next, "rebalancer"))) return "superseded";
    const report = await this.deps.state.push(next);
    if (report.failed.length > 0) {
      this.deps.log?.({ msg: "map push incomplete", epoch: next.epoch, failed: report.failed });
    }
    return rb.phase === "copying" ? "copied" : "cleaned";
  }

  /** Whether this rebalancer has driven the map's rebalancing (started or resumed it). */
  owns(map: ClusterMap): boolean {
    return map.rebalancing !== null && this.#driven === keyOf(map);
  }

  /** Steps until the map is stable; one run at a time (a second call joins the first). */
  run(): Promise<void> {
    this.#driven = keyOf(this.deps.state.current().map);
    this.#running ??= this.#loop().finally(() => (this.#running = null));
    return this.#running;
  }

  async #loop(): Promise<void> {
    for (let steps = 0; steps < 100; steps++) {
      try {
        if ((await this.step()) === "idle") {
          this.lastError = null;
          return;
        }
      } catch (err) {
        // A background task: every failure is reported and retried by the next run().
        if (err instanceof RingkvError && err.code === "stale_epoch") {
          // Data-path errors name the node by id and give its url; admin calls name the url.
          const url = err.extra.url ?? err.extra.node;
          if (typeof url === "string") await this.deps.state.refreshFrom(url).catch(() => {});
          continue;
        }
        this.lastError = err instanceof Error ? err.message : String(err);
        this.deps.log?.({ msg: "rebalancing paused", error: this.lastError });
        return;
      }
    }
  }
}

/** The members that answered their health check. */
function upOf(map: ClusterMap, healths: MemberHealth): Set<string> {
  return new Set(map.nodes.filter((n) => healths.get(n.id) != null).map((n) => n.id));
}

function urlsOf(map: ClusterMap, id: string | undefined): string[] {
  return allNodes(map).filter((n) => n.id === id).map((n) => n.url);
}

/** 409: a push found a newer map (another change was made meanwhile). */
function mapChanged(state: ClusterState): RingkvError {
  return new RingkvError(
    "conflict",
    `Cannot change the cluster: its map changed meanwhile (now epoch ${state.current().map.epoch}); ` +
      `GET /cluster shows it; retry`,
  );
}

function keyOf(map: ClusterMap): string | null {
  const rb = map.rebalancing;
  return rb === null ? null : `${rb.kind} ${rb.nodeId} ${rb.startedAt}`;
}

/** Members' /health by node id; null for a member that did not answer. */
type MemberHealth = Map<string, NodeHealth | null>;

/**
 * The error of a call to a node being added, named as its add's: a node that answered with
 * nonsense is a 502, one that did not answer in time a 503.
 */
function addFailure(url: string, hint = ""): (err: unknown) => never {
  return (err) => {
    if (!(err instanceof RingkvError)) throw err;
    const code = err.code === "bad_gateway" ? "bad_gateway" : "node_unavailable";
    const more = code === "bad_gateway" ? hint : "";
    throw new RingkvError(code, `Cannot add node ${url}: ${err.message}${more}`);
  };
}

/** What a bad answer to the add's first call, `/health`, suggests. */
const NO_NODE = "; check that it is a ringkv node's URL (nothing was sent to it with the " +
  "cluster secret)";
