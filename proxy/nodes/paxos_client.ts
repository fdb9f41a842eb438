/**
 * The proxy's calls to the nodes' replication routes (node/http/paxos_routes.ts): read,
 * prepare and accept, each with the cluster secret, the epoch and a timeout. Every
 * answer or failure is reported to the failure detector.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import { isVersion, type Version } from "../../shared/version.ts";
import { EPOCH_HEADER, INCARNATION_HEADER, type WireEntry } from "../../shared/wire.ts";
import type { HealthEvent } from "../replication/failure_detector.ts";
import {
  type NodeAnswer,
  type NodeRef,
  type NodeTransport,
  SecretRefusedError,
  sendToNode,
  StaleEpochError,
  unreachable,
} from "./node_client.ts";
import { checkProof, secretRefusal, writeTrouble } from "./node_admin.ts";
import { healthChallenge } from "../../shared/node_proof.ts";
import { CallDeadlines } from "./call_deadlines.ts";
import { entryProblem } from "./node_results.ts";

/** What a {@link PaxosClient} needs. */
export interface PaxosClientDeps extends NodeTransport {
  clusterSecret?: string;
  timeoutMs: number;
  /** Told about every call's outcome. */
  report?: (event: HealthEvent) => void;
  /** The monotonic clock (ms) of the events reported (default `performance.now`). */
  now?: () => number;
  /** This proxy's wall clock (ms), against which a probe measures a node's (default `Date.now`). */
  wall?: () => number;
}

/** A node's vote in phase 1 or 2. */
export interface WireVote {
  ok: boolean;
  promised?: Version;
}

/** Calls `/internal/read`, `/internal/prepare` and `/internal/accept`. */
export class PaxosClient {
  readonly #deadlines: CallDeadlines;
  /** The monotonic clock of the events reported, resolved once (every node call reads it). */
  readonly #now: () => number;

  /** Creates a client over the injected fetch. */
  constructor(private readonly deps: PaxosClientDeps) {
    this.#deadlines = new CallDeadlines(deps.timeoutMs);
    this.#now = deps.now ?? (() => performance.now());
  }

  /**
   * The entries (tombstones included) of `keys`; null where the node has none. With
   * `valueBudget`, those of the first keys only when their values took it (at least one).
   */
  async read(
    node: NodeRef,
    epoch: number,
    keys: string[],
    valueBudget?: number,
  ): Promise<(WireEntry | null)[]> {
    const payload = valueBudget === undefined ? { keys } : { keys, valueBudget };
    const body = await this.#call(node, epoch, "/internal/read", payload);
    const list = (body as { entries?: unknown }).entries;
    // A node before budgets answers every key; one that answers none would never move on.
    const short = valueBudget !== undefined && Array.isArray(list) && list.length > 0 &&
      list.length < keys.length;
    const entries = expectList<unknown>(node, "read", list, short ? list.length : keys.length);
    for (let i = 0; i < entries.length; i++) checkEntry(node, "read", entries[i], i);
    return entries as (WireEntry | null)[];
  }

  /** Phase 1 for each `{key, ballot}`. */
  async prepare(
    node: NodeRef,
    epoch: number,
    ops: { key: string; ballot: Version }[],
  ): Promise<(WireVote & { entry: WireEntry | null })[]> {
    const body = await this.#call(node, epoch, "/internal/prepare", { ops });
    const results = expectList<WireVote & { entry?: unknown }>(
      node,
      "prepare",
      (body as { results?: unknown }).results,
      ops.length,
    );
    for (let i = 0; i < results.length; i++) {
      checkEntry(node, "prepare", results[i]?.entry ?? null, i);
    }
    return results as (WireVote & { entry: WireEntry | null })[];
  }

  /** Phase 2 for each entry (its version is its ballot). */
  async accept(node: NodeRef, epoch: number, entries: WireEntry[]): Promise<WireVote[]> {
    const body = await this.#call(node, epoch, "/internal/accept", { entries });
    return expectList(node, "accept", (body as { results?: unknown }).results, entries.length);
  }

  /**
   * `GET /health?challenge=` with the timeout: reports whether the node answered, takes this
   * proxy's cluster secret (its proof, docs/internal-api.md) and takes writes, and returns the
   * incarnation of its data directory, if it said.
   */
  async probe(node: NodeRef): Promise<string | undefined> {
    const now = this.#now;
    const [sentWall, sent] = [(this.deps.wall ?? Date.now)(), now()];
    const { challenge, path } = healthChallenge();
    const { status, text } = await this.#send(node, "GET", path, {}, undefined, false);
    const midpoint = sentWall + (now() - sent) / 2;
    let body: unknown = null;
    try {
      body = JSON.parse(text);
    } catch (err) {
      if (!(err instanceof SyntaxError)) throw err; // not JSON: it answered, and says nothing more
    }
    const proof = (body as { proof?: unknown } | null)?.proof;
    const secret = await checkProof(this.deps.clusterSecret, challenge, proof);
    const error = secretRefusal(`Node ${node.id} at ${node.url}`, secret);
    if (error !== undefined) {
      this.deps.report?.({ kind: "refused", node: node.id, at: now(), error });
      return undefined;
    }
    const writes = status === 503 ? writeTrouble(body) : undefined;
    if (status !== 200 && writes === undefined) {
      this.deps.report?.({ kind: "answered", node: node.id, at: now() });
      return undefined;
    }
    const nodeNow = (body as { now?: unknown } | null)?.now;
    const floor = (body as { promiseFloor?: unknown } | null)?.promiseFloor;
    this.deps.report?.({
      kind: "answered",
      node: node.id,
      at: now(),
      ...(typeof nodeNow === "number" && Number.isFinite(nodeNow)
        ? { clockOffsetMs: Math.round(nodeNow - midpoint) }
        : {}),
      promiseFloor: typeof floor === "string" && isVersion(floor) ? floor : null,
      avoidWrites: writes
        ? {
          stalled: writes.state === "stalled",
          why: `${writes.state}: ${writes.reason ?? "no reason given"}`,
        }
        : false,
    });
    const incarnation = (body as { incarnation?: unknown } | null)?.incarnation;
    return typeof incarnation === "string" ? incarnation : undefined;
  }

  async #call(node: NodeRef, epoch: number, path: string, payload: unknown): Promise<unknown> {
    const headers: Record<string, string> = {
      [EPOCH_HEADER]: String(epoch),
      "content-type": "application/json",
    };
    if (this.deps.clusterSecret) headers.authorization = `Bearer ${this.deps.clusterSecret}`;
    // The node refuses to vote when its directory is not the one the map records.
    if (node.incarnation !== undefined) headers[INCARNATION_HEADER] = node.incarnation;
    const { status, text } = await this.#send(node, "POST", path, headers, JSON.stringify(payload));
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw badAnswer(node, path, `status ${status} with a body that is not JSON`);
    }
    if (status >= 200 && status < 300) return parsed;
    const b = parsed as { error?: { code?: string; message?: string }; epoch?: number };
    if (status === 409 && b.error?.code === "stale_epoch") {
      throw new StaleEpochError(node, b.epoch);
    }
    if (status === 401) {
      const error = new SecretRefusedError(node, path, b.error?.message);
      this.deps.report?.({ kind: "refused", node: node.id, at: this.#now(), error: error.message });
      throw error;
    }
    if (status === 503 && b.error?.code === "node_recovering") {
      throw new RingkvError(
        "node_recovering",
        `Cannot count node ${node.id} as a replica: ${b.error.message ?? "it is recovering"}`,
        { node: node.id, url: node.url },
      );
    }
    throw badAnswer(node, path, `status ${status}: ${b.error?.message ?? ""}`);
  }

  async #send(
    node: NodeRef,
    method: string,
    path: string,
    headers: Record<string, string>,
    body?: string,
    reportAnswer = true,
  ): Promise<NodeAnswer> {
    const now = this.#now;
    const { timeoutMs } = this.deps;
    const url = node.url + path;
    try {
      const deadlines = this.#deadlines;
      const answer = await sendToNode(this.deps, {
        method,
        url,
        headers,
        timeoutMs,
        body,
        deadlines,
      });
      // A 401 is reported by #call as a refusal; a probe reports what its answer says.
      if (reportAnswer && answer.status !== 401) {
        this.deps.report?.({ kind: "answered", node: node.id, at: now() });
      }
      return answer;
    } catch (err) {
      const error = unreachable(node, err);
      this.deps.report?.({ kind: "failed", node: node.id, at: now(), error: error.message });
      throw error;
    }
  }
}

function expectList<T>(node: NodeRef, what: string, list: unknown, length: number): T[] {
  if (!Array.isArray(list) || list.length !== length) {
    throw badAnswer(node, `/internal/${what}`, `expected ${length} results`);
  }
  return list as T[];
}

/** Throws a 502 naming `what` unless `e` is a read or prepare entry (node_results.ts). */
function checkEntry(node: NodeRef, what: string, e: unknown, i: number): void {
  const problem = entryProblem(e, i);
  if (problem !== undefined) throw badAnswer(node, `/internal/${what}`, problem);
}

function badAnswer(node: NodeRef, path: string, what: string): RingkvError {
  return new RingkvError(
    "bad_gateway",
    `Cannot use the answer of node ${node.id} at ${node.url} to ${path}: ${what}`,
    { node: node.id, url: node.url },
  );
}
