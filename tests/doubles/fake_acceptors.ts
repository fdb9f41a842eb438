/**
 * Fake CASPaxos acceptors for unit tests of the proposer (proxy/replication/caspaxos.ts): the
 * {@link PaxosCalls} of a few in-memory nodes that follow the acceptor's rules of
 * node/paxos/acceptor.ts (promise a ballot above every promise and version; store an accept at
 * least as high as the promise and above the version; the held entry again is ok), with faults
 * set per node and kind of call: down (no answer, nothing done), lost (done, the answer lost),
 * stale (a newer cluster map: nothing done). Each entry a node newly stores is logged as that
 * node's change log would log it (for tests of what a watcher sees).
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { FakeAcceptors } from "./fake_acceptors.ts";
 * const nodes = new FakeAcceptors(["n1"]);
 * const n1 = { id: "n1", url: "http://n1.test" };
 * assertEquals((await nodes.prepare(n1, 1, [{ key: "k", ballot: "b" }]))[0]!.ok, true);
 * assertEquals((await nodes.accept(n1, 1, [{ k: "k", v: "", ver: "a", h: 1 }]))[0]!.ok, false);
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import { HybridClock, type Version } from "../../shared/version.ts";
import type { WireEntry } from "../../shared/wire.ts";
import type { WireChange } from "../../node/http/change_routes.ts";
import { type NodeRef, StaleEpochError } from "../../proxy/nodes/node_client.ts";
import type { PaxosCalls } from "../../proxy/replication/paxos_batcher.ts";
import type { WireVote } from "../../proxy/nodes/paxos_client.ts";
import { Replicated, type ReplicatedDeps } from "../../proxy/replication/caspaxos.ts";
import { FailureDetector } from "../../proxy/replication/failure_detector.ts";
import { Hints } from "../../proxy/replication/hints.ts";

/** What goes wrong with a node's calls of one kind. */
export type Fault = "down" | "lost" | "stale";
/** The kinds of call. */
export type CallKind = "read" | "prepare" | "accept";

/** One key's state on one fake node. */
export interface FakeSlot {
  promised?: Version;
  entry?: WireEntry;
}

/** A call made, with its ballot or version. */
export interface FakeCall {
  node: string;
  kind: CallKind;
  key: string;
  ver?: Version;
}

/** In-memory acceptors reached as {@link PaxosCalls}. */
export class FakeAcceptors implements PaxosCalls {
  /** Per node, per key. */
  readonly slots = new Map<string, Map<string, FakeSlot>>();
  /** Faults by `${node}:${kind}`, with the calls left before each ends. */
  readonly faults = new Map<string, { fault: Fault; left: number }>();
  readonly calls: FakeCall[] = [];
  /** Random faults and delays on every call, when set. */
  chaos: Chaos | undefined;
  /** Every entry a node stored, in the order stored, as its change log holds it. */
  readonly changes: { node: string; change: WireChange }[] = [];
  /** Awaited before each prepare acts, when set (a test's point to let time pass). */
  beforePrepare: (() => Promise<void>) | undefined;

  /** Creates empty nodes with these ids. */
  constructor(ids: readonly string[]) {
    for (const id of ids) this.slots.set(id, new Map());
  }

  /** The state of `key` on `node` (created empty). */
  slot(node: string, key: string): FakeSlot {
    const m = this.slots.get(node)!;
    let s = m.get(key);
    if (s === undefined) m.set(key, s = {});
    return s;
  }

  /** Sets (or with undefined clears) a fault, for the next `times` calls. */
  fault(node: string, kind: CallKind, fault: Fault | undefined, times = Infinity): void {
    if (fault === undefined) this.faults.delete(`${node}:${kind}`);
    else this.faults.set(`${node}:${kind}`, { fault, left: times });
  }

  /** Calls of `kind` made so far. */
  count(kind: CallKind): number {
    return this.calls.filter((c) => c.kind === kind).length;
  }

  /** `/internal/read`. */
  read(node: NodeRef, _epoch: number, keys: string[]): Promise<(WireEntry | null)[]> {
    for (const key of keys) this.calls.push({ node: node.id, kind: "read", key });
    return this.#run(node, "read", () => keys.map((k) => this.slot(node.id, k).entry ?? null));
  }

  /** `/internal/prepare`. */
  prepare(
    node: NodeRef,
    _epoch: number,
    ops: { key: string; ballot: Version }[],
  ): Promise<(WireVote & { entry: WireEntry | null })[]> {
    for (const op of ops) this.calls.push({ node: node.id, kind: "prepare", ...keyVer(op) });
    const wait = this.beforePrepare?.() ?? Promise.resolve();
    return wait.then(() => this.#prepare(node, ops));
  }

  #prepare(
    node: NodeRef,
    ops: { key: string; ballot: Version }[],
  ): Promise<(WireVote & { entry: WireEntry | null })[]> {
    return this.#run(node, "prepare", () =>
      ops.map(({ key, ballot }) => {
        const s = this.slot(node.id, key);
        const bar = max(s.promised, s.entry?.ver);
        const entry = s.entry ?? null;
        if (bar !== undefined && ballot <= bar) return { ok: false, promised: bar, entry };
        s.promised = ballot;
        return { ok: true, entry };
      }));
  }

  /** `/internal/accept`. */
  accept(node: NodeRef, _epoch: number, entries: WireEntry[]): Promise<WireVote[]> {
    for (const e of entries) {
      this.calls.push({ node: node.id, kind: "accept", key: e.k, ver: e.ver });
    }
    return this.#run(node, "accept", () =>
      entries.map((e) => {
        const s = this.slot(node.id, e.k);
        if (s.entry?.ver === e.ver) return { ok: true };
        const bar = max(s.promised, s.entry?.ver);
        if (bar !== undefined && e.ver < bar) return { ok: false, promised: bar };
        this.#log(node.id, e, s.entry?.ver ?? null);
        s.entry = { ...e };
        return { ok: true };
      }));
  }

  #log(node: string, e: WireEntry, prev: Version | null): void {
    const change = { s: this.changes.filter((c) => c.node === node).length + 1, prev, k: e.k };
    this.changes.push({ node, change: { ...change, ver: e.ver, v: e.v, t: e.t } });
  }

  #run<T>(node: NodeRef, kind: CallKind, act: () => T): Promise<T> {
    const set = this.faults.get(`${node.id}:${kind}`);
    const fault = set?.fault;
    if (set !== undefined && --set.left <= 0) this.faults.delete(`${node.id}:${kind}`);
    if (this.chaos !== undefined) return this.#chaotic(node, act, fault);
    if (fault === "stale") return Promise.reject(new StaleEpochError(node, 99));
    if (fault === "down") return Promise.reject(unavailable(node));
    const result = act();
    return fault === "lost" ? Promise.reject(unavailable(node)) : Promise.resolve(result);
  }

  /** A call that waits, may fail before or after it acts, and waits again. */
  async #chaotic<T>(node: NodeRef, act: () => T, fault: Fault | undefined): Promise<T> {
    const chaos = this.chaos!; // kept: the test may turn chaos off while this call waits
    const { random, rate, stale = 0 } = chaos;
    const roll = random();
    fault ??= roll < stale
      ? "stale"
      : roll < stale + rate / 2
      ? "down"
      : roll < stale + rate
      ? "lost"
      : undefined;
    await chaos.delay();
    if (fault === "stale") throw new StaleEpochError(node, 99);
    if (fault === "down") throw unavailable(node);
    const result = act();
    await chaos.delay();
    if (fault === "lost") throw unavailable(node);
    return result;
  }
}

/** Random faults for every call: `rate` of them down or lost (half each), `stale` stale. */
export interface Chaos {
  random: () => number;
  rate: number;
  stale?: number;
  /** Waits before a call acts and before its answer arrives. */
  delay: () => Promise<void>;
}

function keyVer(op: { key: string; ballot: Version }): { key: string; ver: Version } {
  return { key: op.key, ver: op.ballot };
}

function unavailable(node: NodeRef): RingkvError {
  return new RingkvError("node_unavailable", `Cannot reach node ${node.id}: no answer (test)`);
}

function max(a: Version | undefined, b: Version | undefined): Version | undefined {
  if (a === undefined) return b;
  if (b === undefined) return a;
  return a > b ? a : b;
}

/** The clock of {@link proposerOver}'s default proposer. */
export const FAKE_NOW = 1_700_000_000_000;

/**
 * A proposer over `nodes` as the fast-write tests use it: a proxy id of the length wiring.ts
 * makes (13 characters), a clock stopped at {@link FAKE_NOW}, its own failure detector and
 * hints, 4 rounds; `deps` replaces any of them.
 */
export function proposerOver(
  nodes: FakeAcceptors,
  deps: Partial<ReplicatedDeps> = {},
): Replicated {
  return new Replicated({
    client: nodes,
    ingest: () => Promise.resolve(),
    clock: new HybridClock("p0a1b2c3d4e5f", () => FAKE_NOW),
    detector: new FailureDetector({ probeMs: 1000 }),
    hints: new Hints(),
    maxRounds: 4,
    ...deps,
  });
}
