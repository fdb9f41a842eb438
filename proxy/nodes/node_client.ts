/**
 * proxy/nodes/ (this folder's main module): the fetch clients of the node API, each call with a
 * timeout. May import shared/ only (and the failure detector's event type).
 *
 * The proxy's data calls to nodes (docs/internal-api.md): batch, ingest and key listing.
 * Every call carries the cluster secret and the epoch and has a timeout; a node that
 * cannot be reached becomes a 503 `node_unavailable` naming it, a node that holds a newer
 * cluster map becomes a {@link StaleEpochError}.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import { tlsHint, type TlsHints } from "../../shared/tls_files.ts";
import { REQUEST_ID_HEADER } from "../../shared/log.ts";
import { EPOCH_HEADER, INCARNATION_HEADER, NDJSON } from "../../shared/wire.ts";
import { resultProblem } from "./node_results.ts";
import { CallDeadlines, timeoutError } from "./call_deadlines.ts";
import type { BatchOp, BatchResult, WireEntry } from "../../shared/wire.ts";

/** A node as the data path addresses it. */
export interface NodeRef {
  id: string;
  url: string;
  /** The data-directory incarnation the map records; replication calls send it. */
  incarnation?: string;
}

/** One call to a node. */
export interface NodeCall {
  method: string;
  /** The absolute URL (`http://host:port/path?query`). */
  url: string;
  headers: Record<string, string>;
  body?: string | undefined;
  timeoutMs: number;
  /** The client's shared deadlines; without them, or with another timeout: a timer of its own. */
  deadlines?: CallDeadlines;
}

/** Its answer, body read whole. */
export interface NodeAnswer {
  status: number;
  text: string;
}

/**
 * `fetch` as the proxy calls nodes: a URL and an init, so that the one `Request` is the one
 * `fetch` builds (given a `Request`, it builds a second one with a dependent signal: a few µs
 * of CPU per call, tasks/bench/call_floor.ts). Tests pass in-process node apps.
 */
export type NodeFetch = (url: string, init: RequestInit) => Promise<Response>;

/** How the proxy reaches nodes: an injected {@link NodeFetch}. */
export interface NodeTransport {
  fetch: NodeFetch;
}

/**
 * Sends one call with `fetch`; the timeout covers the answer's body too. The body is always
 * read whole (or the call aborted), so fetch's connection goes back to its pool.
 */
export async function sendToNode(transport: NodeTransport, call: NodeCall): Promise<NodeAnswer> {
  const deadline = callDeadline(call);
  try {
    const { method, headers, body } = call;
    const res = await transport.fetch(call.url, { method, headers, body, signal: deadline.signal });
    return { status: res.status, text: await res.text() };
  } finally {
    deadline.end();
  }
}

/**
 * The signal that ends `call` at its timeout: its client's shared slot, or a timer of its own
 * (no shared deadlines, or another timeout: a watch's wait). `end` frees it once the call is out.
 */
function callDeadline(call: NodeCall): { signal: AbortSignal; end: () => void } {
  const { deadlines } = call;
  if (deadlines?.timeoutMs === call.timeoutMs) {
    const slot = deadlines.enter();
    return { signal: slot.signal, end: () => deadlines.leave(slot) };
  }
  // One timer per call, cleared when the call ends (AbortSignal.timeout stays pending).
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(timeoutError()), call.timeoutMs);
  return { signal: abort.signal, end: () => clearTimeout(timer) };
}

/** What a {@link NodeClient} needs. */
export interface NodeClientDeps extends NodeTransport {
  clusterSecret?: string;
  timeoutMs: number;
}

/** One page of `GET /internal/keys`. */
export interface KeysPage {
  entries: WireEntry[];
  more: boolean;
}

/** A node refused a call because it holds a newer cluster map (409 `stale_epoch`). */
export class StaleEpochError extends RingkvError {
  /** Creates the error for the node that refused. */
  constructor(readonly node: NodeRef, readonly nodeEpoch: number | undefined) {
    super(
      "stale_epoch",
      `Node ${node.id} at ${node.url} refused the call: it holds cluster map epoch ${nodeEpoch}`,
      { node: node.id, url: node.url },
    );
    this.name = "StaleEpochError";
  }
}

/**
 * A node answered 401 to a call with this proxy's cluster secret: a misconfiguration (the proxy
 * or the node started with another secret), answered 502 `bad_gateway`, not an outage.
 */
export class SecretRefusedError extends RingkvError {
  /** Creates the error for the node that refused, with the route and the node's own message. */
  constructor(readonly node: NodeRef, path: string, nodeMessage: string | undefined) {
    super(
      "bad_gateway",
      `Node ${node.id} at ${node.url} refused this proxy's cluster secret (401 to ` +
        `${path.split("?")[0]}): ${nodeMessage ?? "unauthorized"}`,
      { node: node.id, url: node.url },
    );
    this.name = "SecretRefusedError";
  }
}

/**
 * Why a call to a node failed, for its error message: fetch's own "fetch failed" says why
 * (a refused connection, an untrusted certificate) only in its `cause`.
 */
export function failureReason(cause: unknown): string {
  if (cause instanceof DOMException && cause.name === "TimeoutError") {
    return "no answer before the timeout";
  }
  if (!(cause instanceof Error)) return String(cause);
  const why = cause.message + (cause.cause instanceof Error ? ` (${cause.cause.message})` : "");
  return why + tlsHint(why, TLS_HINTS);
}

/** What the proxy's operator does about a TLS mistake of a node call. */
const TLS_HINTS: TlsHints = {
  "untrusted": "the proxy does not trust the node's certificate: a self-signed one or one " +
    "from a private CA is trusted with the proxy's --ca FILE, docs/security.md",
  "plain-http": "a node that serves https, started with --cert? give its URL as https://...",
};

/** The 503 for a node that did not answer. */
export function unreachable(node: NodeRef, cause: unknown): RingkvError {
  const why = failureReason(cause);
  return new RingkvError(
    "node_unavailable",
    `Cannot reach node ${node.id} at ${node.url}: ${why}`,
    {
      node: node.id,
      url: node.url,
    },
  );
}

/**
 * The 503 for a request that waited its whole timeout for `node` behind earlier calls to it
 * (proxy/nodes/wait_deadlines.ts): the same code and start as {@link unreachable}'s.
 */
export function waitedOut(node: NodeRef, timeoutMs: number): RingkvError {
  return new RingkvError(
    "node_unavailable",
    `Cannot reach node ${node.id} at ${node.url}: no answer before the timeout ` +
      `(${timeoutMs} ms since the request began waiting behind an earlier call to it)`,
    { node: node.id, url: node.url },
  );
}

/** Calls nodes' internal routes. */
export class NodeClient {
  readonly #deadlines: CallDeadlines;

  /** Creates a client over the injected fetch. */
  constructor(private readonly deps: NodeClientDeps) {
    this.#deadlines = new CallDeadlines(deps.timeoutMs);
  }

  /**
   * `POST /internal/batch`: results in the order of `ops`; `requestId` is sent as `x-request-id`.
   * With `valueBudget`, a read the node left unread (its values took the budget) is `null`: never
   * the call's first read, so each call moves on. A malformed result (node_results.ts), or a
   * `null` anywhere else, fails the whole call as a 502: that node is broken.
   */
  async batch(
    node: NodeRef,
    epoch: number,
    ops: readonly BatchOp[],
    requestId?: string,
    valueBudget?: number,
  ): Promise<(BatchResult | null)[]> {
    const text = JSON.stringify(
      valueBudget === undefined
        ? { ops, textValues: true }
        : { ops, textValues: true, valueBudget },
    );
    const body = await this.#call(node, epoch, "/internal/batch", "POST", {
      body: text,
      requestId,
    });
    const results = (body as { results?: unknown }).results;
    if (!Array.isArray(results) || results.length !== ops.length) {
      throw badAnswer(node, "/internal/batch", `expected ${ops.length} results`);
    }
    let read = false; // whether a read before this one was answered
    for (let i = 0; i < ops.length; i++) {
      const unread = results[i] === null && valueBudget !== undefined && ops[i]!.op === "get";
      const problem = !unread
        ? resultProblem(ops[i]!, results[i], i)
        : read
        ? undefined
        : `result ${i}, its first read, is unread`;
      if (problem !== undefined) throw badAnswer(node, "/internal/batch", problem);
      if (ops[i]!.op === "get" && results[i] !== null) read = true;
    }
    return results as (BatchResult | null)[];
  }

  /** `POST /internal/ingest`: applies entries that are newer than the node's. */
  async ingest(
    node: NodeRef,
    epoch: number,
    entries: readonly WireEntry[],
  ): Promise<{ applied: number; skipped: number }> {
    const text = entries.map((e) => JSON.stringify(e)).join("\n") + "\n";
    const body = await this.#call(node, epoch, "/internal/ingest", "POST", {
      body: text,
      contentType: NDJSON,
    });
    return body as { applied: number; skipped: number };
  }

  /** `GET /internal/keys`: entries (tombstones included, no values) after `after`. */
  async keys(
    node: NodeRef,
    epoch: number,
    query: { prefix: string; after?: string; limit: number },
    requestId?: string,
  ): Promise<KeysPage> {
    const params = new URLSearchParams({ prefix: query.prefix, limit: String(query.limit) });
    if (query.after !== undefined) params.set("after", query.after);
    const path = `/internal/keys?${params}`;
    // As a replica's read: a node back on a wiped directory refuses (it would list nothing).
    const { incarnation } = node;
    const body = await this.#call(node, epoch, path, "GET", { requestId, incarnation });
    const page = body as Partial<KeysPage>;
    if (!Array.isArray(page.entries) || typeof page.more !== "boolean") {
      throw badAnswer(node, "/internal/keys", "expected {entries, more}");
    }
    return page as KeysPage;
  }

  /** `GET /internal/expired`: live keys whose TTL ran out by `before` (wall ms), with versions. */
  async expired(
    node: NodeRef,
    epoch: number,
    before: number,
    limit: number,
  ): Promise<{ k: string; ver: string }[]> {
    const path = `/internal/expired?before=${before}&limit=${limit}`;
    const body = await this.#call(node, epoch, path, "GET");
    const keys = (body as { keys?: unknown }).keys;
    // Each one checked: the reaper's timer would end the process on a TypeError.
    const good = Array.isArray(keys) &&
      keys.every((e) => typeof e?.k === "string" && typeof e.ver === "string");
    if (!good) throw badAnswer(node, "/internal/expired", "expected {keys: [{k, ver}]}");
    return keys as { k: string; ver: string }[];
  }

  /**
   * `GET /internal/tombstones`: tombstones the node stored at least `graceMs` ago by its clock,
   * with their versions and ring points.
   */
  async oldTombstones(
    node: NodeRef,
    epoch: number,
    query: { graceMs: number; limit: number },
  ): Promise<{ k: string; ver: string; h: number }[]> {
    const path = `/internal/tombstones?graceMs=${query.graceMs}&limit=${query.limit}`;
    const body = await this.#call(node, epoch, path, "GET");
    const list = (body as { tombstones?: unknown }).tombstones;
    // Each one checked: the purge's timer would end the process on a TypeError.
    const good = Array.isArray(list) &&
      list.every((e) =>
        typeof e?.k === "string" && typeof e.ver === "string" && Number.isInteger(e.h)
      );
    if (!good) {
      throw badAnswer(node, "/internal/tombstones", "expected {tombstones: [{k, ver, h}]}");
    }
    return list as { k: string; ver: string; h: number }[];
  }

  /**
   * `POST /internal/purge`: the node forgets each of `entries` that is still a tombstone of that
   * version, stored at least `graceMs` ago by its clock; `kept` names the others. With `check`, it
   * only says which it would keep. Sent to the incarnation the map records.
   */
  async purge(
    node: NodeRef,
    epoch: number,
    graceMs: number,
    entries: readonly { k: string; ver: string }[],
    check = false,
  ): Promise<{ purged: number; kept: string[] }> {
    const body = await this.#call(node, epoch, "/internal/purge", "POST", {
      body: JSON.stringify(check ? { graceMs, entries, check } : { graceMs, entries }),
      incarnation: node.incarnation,
    });
    const { purged, kept } = body as { purged?: unknown; kept?: unknown };
    const good = Number.isInteger(purged) && Array.isArray(kept) &&
      kept.every((k) => typeof k === "string");
    if (!good) throw badAnswer(node, "/internal/purge", "expected {purged, kept}");
    return { purged: purged as number, kept: kept as string[] };
  }

  async #call(
    node: NodeRef,
    epoch: number,
    path: string,
    method: string,
    opts: { body?: string; contentType?: string; requestId?: string; incarnation?: string } = {},
  ): Promise<unknown> {
    const { body, requestId, incarnation } = opts;
    const headers: Record<string, string> = { [EPOCH_HEADER]: String(epoch) };
    if (requestId !== undefined) headers[REQUEST_ID_HEADER] = requestId;
    if (this.deps.clusterSecret) headers.authorization = `Bearer ${this.deps.clusterSecret}`;
    if (incarnation !== undefined) headers[INCARNATION_HEADER] = incarnation;
    if (body !== undefined) headers["content-type"] = opts.contentType ?? "application/json";
    let answer: NodeAnswer;
    try {
      const url = node.url + path;
      const timeoutMs = this.deps.timeoutMs;
      const deadlines = this.#deadlines;
      answer = await sendToNode(this.deps, { method, url, headers, timeoutMs, body, deadlines });
    } catch (err) {
      throw unreachable(node, err);
    }
    const { status, text } = answer;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      throw badAnswer(node, path, `status ${status} with a body that is not JSON`);
    }
    if (status < 200 || status > 299) throw nodeError(node, path, status, parsed);
    return parsed;
  }
}

function badAnswer(node: NodeRef, path: string, what: string): RingkvError {
  const route = path.split("?")[0];
  return new RingkvError(
    "bad_gateway",
    `Cannot use the answer of node ${node.id} at ${node.url} to ${route}: ${what}`,
    { node: node.id, url: node.url },
  );
}

function nodeError(node: NodeRef, path: string, status: number, body: unknown): RingkvError {
  const b = body as { error?: { code?: string; message?: string }; epoch?: number };
  const code = b.error?.code;
  if (status === 409 && code === "stale_epoch") return new StaleEpochError(node, b.epoch);
  const extra = { node: node.id, url: node.url };
  if (status === 503) {
    return new RingkvError(
      "node_unavailable",
      `Node ${node.id} at ${node.url} is unavailable: ${b.error?.message ?? "503"}`,
      extra,
    );
  }
  if (status === 401) return new SecretRefusedError(node, path, b.error?.message);
  return badAnswer(node, path, `status ${status} ${code ?? ""}: ${b.error?.message ?? ""}`);
}
