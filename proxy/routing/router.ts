/**
 * proxy/routing/ (this folder's main module): key, ring point, owners, and the batched node
 * calls a request becomes. May import proxy/replication, proxy/cluster, proxy/nodes and shared/.
 *
 * Routing of single-key operations (proxy/cluster/topology.ts has the rules): each key goes to
 * the owners of its ring point; the first owner decides the write (version, conditions)
 * and every other target (further replicas, new owners while a range moves) gets the
 * decided entry by versioned ingest before the answer. A node holding a newer cluster
 * map refuses with `stale_epoch`: the map is reloaded and the operation retried.
 * With more than one replica (`map.replicas > 1`) each operation runs by quorum instead
 * (proxy/replication/caspaxos.ts, docs/replication.md).
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import type { Point } from "../../shared/ring.ts";
import type { BatchOp, BatchResult, WireEntry } from "../../shared/wire.ts";
import { DEFAULT_CONTENT_TYPE } from "../../shared/wire.ts";
import type { Dispatcher } from "./dispatcher.ts";
import { type NodeClient, type NodeRef, StaleEpochError } from "../nodes/node_client.ts";
import type { Replicas, Replicated } from "../replication/caspaxos.ts";
import type { Topology, TopologySource } from "../cluster/topology.ts";

/** Where keys' ring points come from (shared/key_points.ts's KeyPoints). */
export interface PointSource {
  pointOf(key: string): Point | Promise<Point>;
}

/** What a {@link Router} needs. */
export interface RouterDeps {
  topology: TopologySource;
  points: PointSource;
  dispatcher: Dispatcher;
  client: NodeClient;
  /** Tries per operation when nodes keep answering `stale_epoch` (default 3). */
  maxAttempts?: number;
  log?: (obj: Record<string, unknown>) => void;
  /** The quorum data path, used when the map has more than one replica. */
  replicated?: Replicated;
}

/** An operation's answer from its owner, or why there is none. */
export type Outcome = BatchResult | RingkvError;

interface Plan {
  primary: NodeRef;
  /** Nodes that get the decided entry by ingest: other replicas and next-ring owners. */
  followers: NodeRef[];
}

/** One routing attempt's leftovers: ops to retry and the nodes that said our map is old. */
interface Attempt {
  retry: Set<number>;
  staleUrls: Set<string>;
}

/** Routes operations to their owners. */
export class Router {
  readonly #refreshing = new Map<string, Promise<void>>();
  readonly #maxAttempts: number;

  /** Creates a router. */
  constructor(private readonly deps: RouterDeps) {
    this.#maxAttempts = deps.maxAttempts ?? 3;
  }

  /** Runs each op on its key's owner (writes also on followers); outcomes in op order. */
  async run(ops: readonly BatchOp[]): Promise<Outcome[]> {
    const points = await Promise.all(ops.map((op) => this.deps.points.pointOf(op.key)));
    const outcomes: Outcome[] = new Array(ops.length);
    const earlier = new Map<number, BatchResult>();
    let pending = ops.map((_, i) => i);
    for (let attempt = 1; pending.length > 0; attempt++) {
      const state: Attempt = { retry: new Set(), staleUrls: new Set() };
      const topo = this.deps.topology.current();
      await this.#attempt(topo, ops, points, pending, outcomes, state);
      for (const i of state.retry) {
        if (outcomes[i] !== undefined && !earlier.has(i)) {
          earlier.set(i, outcomes[i] as BatchResult);
        }
      }
      pending = [...state.retry];
      if (pending.length === 0) break;
      const failed = attempt >= this.#maxAttempts
        ? mapKeptChanging(attempt)
        : await this.#refreshAll(state.staleUrls);
      if (failed) {
        for (const i of pending) outcomes[i] = failed;
        break;
      }
    }
    for (const [i, first] of earlier) outcomes[i] = keepFirstAnswer(first, outcomes[i]!);
    return outcomes;
  }

  /**
   * One op, as `run([op])` answers it, without its bookkeeping in the common cases (one
   * replica and no followers, or a quorum run; a key not remembered is hashed first); every
   * other case, and a one-replica `stale_epoch` refusal (nothing was applied), goes through `run`.
   */
  async runOne(op: BatchOp): Promise<Outcome> {
    const known = this.deps.points.pointOf(op.key);
    const point = typeof known === "number" ? known : await known;
    const topo = this.deps.topology.current();
    if (topo.map.replicas > 1) {
      return this.deps.replicated ? this.#runReplicated(op, point) : (await this.run([op]))[0]!;
    }
    let plan: Plan;
    try {
      plan = planFor(topo, point, op.op !== "get");
    } catch (err) {
      if (!(err instanceof RingkvError)) throw err;
      return err;
    }
    if (plan.followers.length > 0) return (await this.run([op]))[0]!;
    try {
      return await this.deps.dispatcher.submitOne(plan.primary, topo.map.epoch, op);
    } catch (err) {
      if (!(err instanceof RingkvError)) throw err;
      if (err instanceof StaleEpochError) return (await this.run([op]))[0]!;
      return writeUnknown(this.#logged(err), op);
    }
  }

  /**
   * One op by quorum, as `run([op])` answers it without the batch's bookkeeping: a
   * `stale_epoch` (nothing applied) reloads the map and runs it again, as `run` does.
   */
  async #runReplicated(op: BatchOp, point: Point): Promise<Outcome> {
    const replicated = this.deps.replicated!;
    try {
      return await this.withTopology(async (topo) => {
        try {
          return await replicated.run(replicasFor(topo, op.key, point), op);
        } catch (err) {
          if (!(err instanceof RingkvError) || err instanceof StaleEpochError) throw err;
          return this.#logged(err);
        }
      });
    } catch (err) {
      if (!(err instanceof RingkvError)) throw err;
      return err;
    }
  }

  /** Runs `fn` with the current topology; reloads the map and runs it again on `stale_epoch`. */
  async withTopology<T>(fn: (topo: Topology) => Promise<T>): Promise<T> {
    for (let attempt = 1;; attempt++) {
      try {
        return await fn(this.deps.topology.current());
      } catch (err) {
        if (!(err instanceof StaleEpochError)) throw err;
        if (attempt >= this.#maxAttempts) throw mapKeptChanging(attempt);
        const failed = await this.#refreshAll(new Set([err.node.url]));
        if (failed) throw failed;
      }
    }
  }

  async #attempt(
    topo: Topology,
    ops: readonly BatchOp[],
    points: readonly Point[],
    pending: readonly number[],
    outcomes: Outcome[],
    state: Attempt,
  ): Promise<void> {
    if (topo.map.replicas > 1 && this.deps.replicated) {
      return this.#attemptReplicated(topo, ops, points, pending, outcomes, state);
    }
    const plans = new Map<number, Plan>();
    const groups = new Map<string, { node: NodeRef; idx: number[] }>();
    for (const i of pending) {
      try {
        const plan = planFor(topo, points[i]!, ops[i]!.op !== "get");
        plans.set(i, plan);
        const group = groups.get(plan.primary.id) ?? { node: plan.primary, idx: [] };
        group.idx.push(i);
        groups.set(plan.primary.id, group);
      } catch (err) {
        if (!(err instanceof RingkvError)) throw err;
        outcomes[i] = err;
      }
    }
    await Promise.all([...groups.values()].map(async ({ node, idx }) => {
      try {
        const results = await this.deps.dispatcher.submit(
          node,
          topo.map.epoch,
          idx.map((i) => ops[i]!),
        );
        idx.forEach((i, j) => (outcomes[i] = results[j]!));
      } catch (err) {
        if (!(err instanceof RingkvError)) throw err;
        this.#failed(err, idx, outcomes, state, idx.every((i) => ops[i]!.expire === true));
        for (const i of idx) if (outcomes[i] === err) outcomes[i] = writeUnknown(err, ops[i]!);
      }
    }));
    await this.#copyToFollowers(topo, ops, points, plans, outcomes, state);
  }

  /** Each op by quorum on its key's replicas (proxy/replication/caspaxos.ts). */
  async #attemptReplicated(
    topo: Topology,
    ops: readonly BatchOp[],
    points: readonly Point[],
    pending: readonly number[],
    outcomes: Outcome[],
    state: Attempt,
  ): Promise<void> {
    await Promise.all(pending.map(async (i) => {
      try {
        const r = replicasFor(topo, ops[i]!.key, points[i]!);
        outcomes[i] = await this.deps.replicated!.run(r, ops[i]!);
      } catch (err) {
        if (!(err instanceof RingkvError)) throw err;
        this.#failed(err, [i], outcomes, state, ops[i]!.expire === true);
      }
    }));
  }

  /** `reaping`: only the TTL reaper's deletes, whose races with other proxies' are expected. */
  #failed(
    err: RingkvError,
    idx: readonly number[],
    outcomes: Outcome[],
    state: Attempt,
    reaping = false,
  ): void {
    if (err instanceof StaleEpochError) {
      state.staleUrls.add(err.node.url);
      for (const i of idx) state.retry.add(i);
      return;
    }
    this.#logged(err, reaping);
    for (const i of idx) outcomes[i] = err;
  }

  /**
   * `err`, logged as a failed node call (its op's outcome); at debug for the TTL reaper's
   * deletes (soak: ~460 warnings in 38 min from 3 proxies sweeping the same expired keys).
   */
  #logged(err: RingkvError, reaping = false): RingkvError {
    this.deps.log?.({
      ...(reaping ? { level: "debug" } : {}),
      msg: "node call failed",
      code: err.code,
      error: err.message,
    });
    return err;
  }

  /** Ingests each decided write into its followers (new owners while a range moves). */
  async #copyToFollowers(
    topo: Topology,
    ops: readonly BatchOp[],
    points: readonly Point[],
    plans: ReadonlyMap<number, Plan>,
    outcomes: Outcome[],
    state: Attempt,
  ): Promise<void> {
    const byNode = new Map<string, { node: NodeRef; idx: number[]; entries: WireEntry[] }>();
    for (const [i, plan] of plans) {
      const entry = decidedEntry(ops[i]!, points[i]!, outcomes[i]);
      if (entry === undefined) continue;
      for (const f of plan.followers) {
        const copy = byNode.get(f.id) ?? { node: f, idx: [], entries: [] };
        copy.idx.push(i);
        copy.entries.push(entry);
        byNode.set(f.id, copy);
      }
    }
    await Promise.all([...byNode.values()].map(async ({ node, idx, entries }) => {
      try {
        await this.deps.client.ingest(node, topo.map.epoch, entries);
      } catch (err) {
        if (!(err instanceof RingkvError)) throw err;
        this.#copyFailed(err, node, ops, plans, idx, outcomes, state);
      }
    }));
  }

  #copyFailed(
    err: RingkvError,
    node: NodeRef,
    ops: readonly BatchOp[],
    plans: ReadonlyMap<number, Plan>,
    idx: readonly number[],
    outcomes: Outcome[],
    state: Attempt,
  ): void {
    if (err instanceof StaleEpochError) state.staleUrls.add(err.node.url);
    for (const i of idx) {
      const op = ops[i]!;
      // Doing an unconditional write again has the same effect; a conditional one may not.
      if (err instanceof StaleEpochError && !op.ifMatch && !op.ifNoneMatch) {
        state.retry.add(i);
        continue;
      }
      const decided = outcomes[i] as BatchResult;
      const primary = plans.get(i)!.primary;
      outcomes[i] = new RingkvError(
        "node_unavailable",
        `Cannot confirm the ${op.op} of key "${op.key}": node ${primary.id} applied it ` +
          `(version ${decided.version}) but copying it to node ${node.id} at ${node.url}, ` +
          `which takes the key over in the rebalancing under way, failed: ${err.message}. ` +
          `The write may have taken effect; retry it.`,
        { node: node.id, url: node.url },
      );
    }
    this.deps.log?.({ msg: "follower copy failed", node: node.id, error: err.message });
  }

  /** Reloads the map from each node that refused; the error to give if that fails. */
  async #refreshAll(urls: ReadonlySet<string>): Promise<RingkvError | undefined> {
    const settled = await Promise.allSettled([...urls].map((url) => this.#refresh(url)));
    const failure = settled.find((s) => s.status === "rejected");
    if (failure === undefined) return undefined;
    const reason = (failure as PromiseRejectedResult).reason;
    return new RingkvError(
      "unavailable",
      `Cannot load the newer cluster map a node announced: ${
        reason instanceof Error ? reason.message : reason
      }`,
    );
  }

  #refresh(url: string): Promise<void> {
    let pending = this.#refreshing.get(url);
    if (pending === undefined) {
      pending = this.deps.topology.refreshFrom(url).finally(() => this.#refreshing.delete(url));
      this.#refreshing.set(url, pending);
    }
    return pending;
  }
}

function mapKeptChanging(attempts: number): RingkvError {
  return new RingkvError(
    "unavailable",
    `Cannot route the request: nodes refused ${attempts} times because the cluster map changed; retry it`,
  );
}

/** The nodes an op on `point` goes to under `topo`. */
export function planFor(topo: Topology, point: Point, write: boolean): Plan {
  const n = Math.max(1, topo.map.replicas);
  const owners = topo.ring.ownersOf(point, n);
  if (owners.length === 0) {
    throw new RingkvError(
      "unavailable",
      `Cannot route the key: cluster map epoch ${topo.map.epoch} has no nodes`,
    );
  }
  const ref = (id: string): NodeRef => {
    const url = topo.nodeUrl(id);
    const incarnation = topo.incarnationOf?.(id);
    if (url !== undefined) {
      return incarnation === undefined ? { id, url } : { id, url, incarnation };
    }
    throw new RingkvError(
      "unavailable",
      `Cannot route to node ${id}: it has no URL in cluster map epoch ${topo.map.epoch}`,
    );
  };
  if (!write) return { primary: ref(owners[0]!), followers: [] };
  const followers = owners.slice(1);
  for (const id of topo.nextRing?.ownersOf(point, n) ?? []) {
    if (!owners.includes(id) && !followers.includes(id)) followers.push(id);
  }
  return { primary: ref(owners[0]!), followers: followers.map(ref) };
}

/** The replicas of a key under `topo`: owners in the ring, joining owners of the next one. */
export function replicasFor(topo: Topology, key: string, point: Point): Replicas {
  const { primary, followers } = planFor(topo, point, true);
  const n = Math.max(1, topo.map.replicas);
  const ownerIds = new Set(topo.ring.ownersOf(point, n));
  const all = [primary, ...followers];
  return {
    owners: all.filter((f) => ownerIds.has(f.id)),
    joining: all.filter((f) => !ownerIds.has(f.id)),
    key,
    point,
    epoch: topo.map.epoch,
  };
}

/** The entry a write's owner decided, to copy to followers; undefined when nothing changed. */
function decidedEntry(
  op: BatchOp,
  point: Point,
  outcome: Outcome | undefined,
): WireEntry | undefined {
  if (op.op === "get" || outcome === undefined || outcome instanceof RingkvError) return undefined;
  if (outcome.version === undefined || ![200, 201, 204].includes(outcome.status)) return undefined;
  if (op.op === "delete") return { k: op.key, v: null, ver: outcome.version, h: point };
  return {
    k: op.key,
    v: op.value ?? "",
    t: op.contentType ?? DEFAULT_CONTENT_TYPE,
    ver: outcome.version,
    h: point,
  };
}

/**
 * A write retried after its first copy failed on `stale_epoch` reports the first answer's
 * status (the retry may see its own first attempt: 200 instead of 201, 404 after delete).
 */
function keepFirstAnswer(first: BatchResult, last: Outcome): Outcome {
  if (last instanceof RingkvError) return last;
  if (last.status === 404 && first.status === 204) return first;
  if (last.status === 200 || last.status === 201) return { ...last, status: first.status };
  return last;
}

/**
 * A write whose node call failed may have been applied before the failure (a node killed after
 * its fsync, a connection cut before the answer): its 503 says so, as the replicated path's do.
 * A "Connection refused" alone read as "never sent" (found by QA: 5 of 16 such writes landed).
 */
function writeUnknown(err: RingkvError, op: BatchOp): RingkvError {
  if (op.op === "get" || err.code !== "node_unavailable") return err;
  return new RingkvError(
    err.code,
    `${err.message}. The ${op.op} may have taken effect; read the key to know.`,
    err.extra,
  );
}
