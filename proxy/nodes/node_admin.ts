/**
 * The proxy's cluster-management calls to nodes (docs/internal-api.md): health, the
 * stored cluster map, range scans, versioned ingest and drops. Every call has a
 * timeout and carries the cluster secret when there is one, but those to `/health`.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { NodeAdmin } from "./node_admin.ts";
 * const fetch = (_url: string, _init: RequestInit) =>
 *   Promise.resolve(Response.json({ status: "ok", id: "n1", epoch: 0, keys: 0 }));
 * const admin = new NodeAdmin({ fetch, timeoutMs: 1000 });
 * assert((await admin.health("http://n1")).id === "n1");
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import { mapShapeProblem } from "../../shared/map_shape.ts";
import { healthChallenge, provesSecret } from "../../shared/node_proof.ts";
import { failureReason, type NodeFetch } from "./node_client.ts";
import type { Range } from "../../shared/ring.ts";
import {
  type AcceptedMap,
  type ClusterMap,
  EPOCH_HEADER,
  INCARNATION_HEADER,
  NDJSON,
  STARTING_HEADER,
  type WireEntry,
} from "../../shared/wire.ts";

/** What {@link NodeAdmin} needs: a fetch, a timeout per call and the cluster secret. */
export interface NodeAdminOptions {
  fetch: NodeFetch;
  timeoutMs: number;
  clusterSecret?: string;
}

/** A node's `GET /health` answer. */
export interface NodeHealth {
  id: string;
  epoch: number;
  keys: number;
  /** Deletions it remembers (0 from nodes before they said). */
  tombstones: number;
  /** Its data directory's incarnation (absent from nodes before incarnations). */
  incarnation?: string;
  /** Present when the node refuses writes (a disk failure, node/engine/write_guard.ts). */
  writes?: NodeWrites;
  /** The longest key and largest value it takes (absent from nodes before they said). */
  limits?: NodeLimits;
}

/** One bucket's digest: its entry count and hash (node/http/digest_routes.ts). */
export interface BucketDigest {
  count: number;
  hash: string;
}

/** A `/health` body as it came, every field unchecked. */
type HealthBody = Partial<NodeHealth> & { proof?: unknown };

/**
 * What a node's answer to a challenge says of its cluster secret, against this proxy's:
 * `same` (or neither has one), `other` (it holds another), `none` (it has none and this proxy
 * has one), `unanswered` (no proof: a node from before challenges, or no node), `unwanted`
 * (it has one and this proxy none).
 */
export type SecretCheck = "same" | "other" | "none" | "unanswered" | "unwanted";

/** {@link SecretCheck} of `proof`, a node's answer to `challenge`, against `secret` (ours). */
export async function checkProof(
  secret: string | undefined,
  challenge: string,
  proof: unknown,
): Promise<SecretCheck> {
  if (secret === undefined) return typeof proof === "string" ? "unwanted" : "same";
  if (proof === null) return "none";
  if (typeof proof !== "string") return "unanswered";
  return await provesSecret(secret, challenge, proof) ? "same" : "other";
}

/**
 * Why the node `who` ("Node n1 at URL") refuses this proxy's calls, by {@link SecretCheck}
 * `check` of its proof, or undefined when it takes them (or did not say).
 */
export function secretRefusal(who: string, check: SecretCheck): string | undefined {
  if (check !== "other" && check !== "unwanted") return undefined;
  const why = check === "other" ? "it proves another one" : "this proxy has none";
  return `${who} refuses this proxy's cluster secret: ${why}`;
}

/** The key and value limits a node's `/health` reports. */
export interface NodeLimits {
  maxKeyBytes: number;
  maxValueBytes: number;
}

function limitsOf(value: unknown): NodeLimits | undefined {
  const { maxKeyBytes, maxValueBytes } = (value ?? {}) as Partial<NodeLimits>;
  if (!Number.isSafeInteger(maxKeyBytes) || !Number.isSafeInteger(maxValueBytes)) return undefined;
  return { maxKeyBytes: maxKeyBytes!, maxValueBytes: maxValueBytes! };
}

/**
 * Why a node refuses writes, as its `/health` says (503, status `read-only` or `failed`), or
 * why its writes wait (`stalled`: a log fsync slow to finish; it is sent no writes it can skip).
 */
export interface NodeWrites {
  state: "read-only" | "failed" | "stalled";
  reason?: string;
  since?: number;
  /** Repairs tried since the node turned read-only (node/engine/write_guard.ts). */
  retries?: number;
  /** Why the last repair failed, when one did. */
  repairError?: string;
}

const WRITE_STATES = new Set(["read-only", "failed", "stalled"]);

/** The `writes` of a `/health` body when it says the node refuses writes, or they stall. */
export function writeTrouble(body: unknown): NodeWrites | undefined {
  const writes = (body as { writes?: Partial<NodeWrites> } | null)?.writes;
  if (writes === undefined || !WRITE_STATES.has(writes.state as string)) return undefined;
  return {
    state: writes.state as NodeWrites["state"],
    ...(typeof writes.reason === "string" ? { reason: writes.reason } : {}),
    ...(typeof writes.since === "number" ? { since: writes.since } : {}),
    ...(typeof writes.retries === "number" ? { retries: writes.retries } : {}),
    ...(typeof writes.repairError === "string" ? { repairError: writes.repairError } : {}),
  };
}

/**
 * A node's vote on the next map: yes (with the map it accepted before, for a prepare), the
 * epoch is decided already (its chosen map), or refused (another proposer's higher ballot).
 */
export type MapVoteAnswer =
  | { kind: "yes"; accepted: AcceptedMap | null; id?: string; incarnation?: string }
  | { kind: "decided"; map: ClusterMap }
  | { kind: "refused"; message: string; promised?: string };

/** The answer to a map push: stored, or refused with the node's newer map. */
export type PutMapResult = { stored: true } | { stored: false; map: ClusterMap };

/** Formats ranges for `GET /internal/scan?ranges=`. */
export function rangesParam(ranges: readonly Range[]): string {
  return ranges.map((r) => `${r.start}-${r.end}`).join(",");
}

/** A failure to reach a node or to read its answer, as the 503 every caller expects. */
function unreachable(url: string, path: string, err: unknown): RingkvError {
  if (err instanceof RingkvError) return err;
  return new RingkvError(
    "node_unavailable",
    `Cannot reach node ${url} (${path.split("?")[0]}): ${failureReason(err)}`,
    { node: url },
  );
}

/**
 * `res` with a body whose read failures are {@link unreachable} errors: a body cut off by
 * the timeout (a lossy link, issue 16) otherwise rejected with a bare TimeoutError that
 * callers expecting RingkvErrors let through, and the proxy died of it.
 */
function guardBody(res: Response, url: string, path: string): Response {
  if (res.body === null) return res;
  const reader = res.body.getReader();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { done, value } = await reader.read();
        if (done) controller.close();
        else controller.enqueue(value);
      } catch (err) {
        controller.error(unreachable(url, path, err));
      }
    },
    cancel: (reason) => reader.cancel(reason),
  });
  const { status, statusText, headers } = res;
  return new Response(body, { status, statusText, headers });
}

/** Calls to nodes for cluster management. */
export class NodeAdmin {
  /** Creates the client. */
  constructor(private readonly options: NodeAdminOptions) {}

  /** Each call's timeout, ms. */
  get timeoutMs(): number {
    return this.options.timeoutMs;
  }

  private async call(url: string, path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    const secret = this.options.clusterSecret;
    // /health needs none, and is the first call to a URL not yet known to be a node's.
    const open = path.split("?")[0] === "/health";
    if (secret !== undefined && !open) headers.set("authorization", `Bearer ${secret}`);
    const signal = init.signal ?? AbortSignal.timeout(this.options.timeoutMs);
    try {
      const res = await this.options.fetch(url + path, { ...init, headers, signal });
      return guardBody(res, url, path);
    } catch (err) {
      if (err instanceof RingkvError) throw err;
      throw unavailable(url, path, "reach", err);
    }
  }

  /**
   * Reads an answer's body: a connection cut mid-body or a timeout (a paused node) is the
   * node's unavailability, a body that is not JSON a bad answer, both naming the node.
   */
  private async read<T>(url: string, path: string, reading: Promise<T>): Promise<T> {
    try {
      return await reading;
    } catch (err) {
      if (err instanceof SyntaxError) {
        const message = `Cannot use node ${url}'s answer to ${path.split("?")[0]}: not JSON`;
        throw new RingkvError("bad_gateway", message, { node: url });
      }
      throw unavailable(url, path, "read the answer of", err);
    }
  }

  private async fail(url: string, path: string, res: Response): Promise<never> {
    const text = await this.read(url, path, res.text());
    let body: { error?: { code?: string; message?: string; epoch?: number }; epoch?: number } = {};
    try {
      body = JSON.parse(text);
    } catch {
      // A body that is not JSON: quoted as it is below.
    }
    const what = body.error?.message ?? text.slice(0, 200);
    const message = `Node ${url} refused ${path.split("?")[0]}: ${res.status} ${what}`;
    if (body.error?.code === "stale_epoch") {
      throw new RingkvError("stale_epoch", message, {
        node: url,
        epoch: body.error?.epoch ?? body.epoch,
      });
    }
    if (body.error?.code === "node_recovering") {
      throw new RingkvError("node_recovering", message, { node: url });
    }
    throw new RingkvError("bad_gateway", message, { node: url });
  }

  private async json<T>(url: string, path: string, init: RequestInit = {}): Promise<T> {
    const res = await this.call(url, path, init);
    if (!res.ok) return this.fail(url, path, res);
    return await this.read(url, path, res.json()) as T;
  }

  /** Whether the node answers `/health` with the 503 of its starting gate (loading its data). */
  async starting(url: string): Promise<boolean> {
    const res = await this.call(url, "/health").catch((err) => {
      if (!(err instanceof RingkvError)) throw err;
      return null;
    });
    await res?.body?.cancel();
    return res?.status === 503 && res.headers.has(STARTING_HEADER);
  }

  /** `GET /health`: the node's id, epoch and number of keys. */
  async health(url: string): Promise<NodeHealth> {
    return (await this.healthAnswer(url, "/health")).health;
  }

  /**
   * `GET /health?challenge=` with a fresh challenge, like every `/health` call without the
   * secret and without following a redirect (a URL that redirects is not a node): the node's
   * health and what its proof says of its cluster secret, against this proxy's.
   */
  async challengedHealth(url: string): Promise<{ health: NodeHealth; secret: SecretCheck }> {
    const { challenge, path } = healthChallenge();
    const { health, proof } = await this.healthAnswer(url, path, { redirect: "manual" });
    return { health, secret: await checkProof(this.options.clusterSecret, challenge, proof) };
  }

  private async healthAnswer(
    url: string,
    path: string,
    init: RequestInit = {},
  ): Promise<{ health: NodeHealth; proof: unknown }> {
    const res = await this.call(url, path, init);
    // A node that refuses writes answers 503 but is alive: its id and keys still count.
    const body = res.status === 503
      ? await res.clone().json().catch(() => null) as Partial<NodeHealth> | null
      : null;
    const writes = writeTrouble(body);
    if (!res.ok && writes === undefined) return this.fail(url, "/health", res);
    if (writes !== undefined) await res.body?.cancel();
    const known = writes === undefined
      ? (await this.read(url, "/health", res.json()) as HealthBody | null) ?? {}
      : body as HealthBody;
    if (typeof known.id !== "string" || known.id === "") {
      throw new RingkvError("bad_gateway", `Cannot use node ${url}: its /health has no id`);
    }
    const { incarnation } = known;
    const limits = limitsOf(known.limits);
    const health = {
      id: known.id,
      epoch: known.epoch ?? 0,
      keys: known.keys ?? 0,
      tombstones: known.tombstones ?? 0,
      ...(typeof incarnation === "string" ? { incarnation } : {}),
      ...(writes === undefined ? {} : { writes }),
      ...(limits === undefined ? {} : { limits }),
    };
    return { health, proof: known.proof };
  }

  /** `GET /internal/cluster`: the node's stored map, null when it has none. */
  async getMap(url: string): Promise<ClusterMap | null> {
    const res = await this.call(url, "/internal/cluster");
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    if (!res.ok) return this.fail(url, "/internal/cluster", res);
    return checkedMap(
      url,
      "/internal/cluster",
      await this.read(url, "/internal/cluster", res.json()),
    );
  }

  /** Whether the node takes this proxy's cluster secret (it answers 401 or 403 if not). */
  async acceptsSecret(url: string): Promise<boolean> {
    const res = await this.call(url, "/internal/cluster");
    await res.body?.cancel();
    return res.status !== 401 && res.status !== 403;
  }

  /** `PUT /internal/cluster`: stores the map, or returns the node's newer one. */
  async putMap(url: string, map: ClusterMap): Promise<PutMapResult> {
    const res = await this.call(url, "/internal/cluster", {
      method: "PUT",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(map),
    });
    if (res.ok) {
      await res.body?.cancel();
      return { stored: true };
    }
    if (res.status === 409) {
      // Read once (a clone's unread twin would hold fetch's connection).
      const text = await this.read(url, "/internal/cluster", res.text());
      const map = heldMap(parseOr(text));
      if (map !== undefined) return { stored: false, map };
      return this.fail(url, "/internal/cluster", new Response(text, { status: res.status }));
    }
    return this.fail(url, "/internal/cluster", res);
  }

  /**
   * `POST /internal/cluster/prepare` or `/accept`: this node's vote on the map of `epoch`
   * (node/paxos/map_acceptor.ts), with the id and data directory it answers on.
   */
  async voteOnMap(
    url: string,
    step: "prepare" | "accept",
    body: { epoch: number; ballot: string; base: ClusterMap | null; map?: ClusterMap },
  ): Promise<MapVoteAnswer> {
    const path = `/internal/cluster/${step}`;
    const res = await this.call(url, path, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    if (res.ok) {
      const answer = await this.read(url, path, res.json()) as {
        accepted?: AcceptedMap | null;
        id?: unknown;
        incarnation?: unknown;
      } | null;
      const { id, incarnation } = answer ?? {};
      const accepted = answer?.accepted ?? null;
      if (accepted !== null) checkedMap(url, path, accepted.map);
      return {
        kind: "yes",
        accepted,
        ...(typeof id === "string" ? { id } : {}),
        ...(typeof incarnation === "string" ? { incarnation } : {}),
      };
    }
    if (res.status !== 409) return this.fail(url, path, res);
    const text = await this.read(url, path, res.text());
    const answer = parseOr(text);
    const { error } = answer as { error?: { code?: string; message?: string; promised?: string } };
    const map = heldMap(answer);
    if (error?.code === "stale_epoch" && map !== undefined) return { kind: "decided", map };
    const message = `Node ${url} refused ${path}: ${error?.message ?? text.slice(0, 200)}`;
    return { kind: "refused", message, ...(error?.promised ? { promised: error.promised } : {}) };
  }

  /**
   * `GET /internal/cluster/vote`: the map this node accepted for the map epoch it votes on,
   * read only (nothing promised), and the id it answers as. Null for none, and from a node
   * before the route (404).
   */
  async acceptedMap(
    url: string,
  ): Promise<{ epoch: number; accepted: AcceptedMap; id?: string } | null> {
    const path = "/internal/cluster/vote";
    const res = await this.call(url, path);
    if (res.status === 404) {
      await res.body?.cancel();
      return null;
    }
    if (!res.ok) return this.fail(url, path, res);
    const answer = await this.read(url, path, res.json()) as {
      vote?: { epoch?: unknown; accepted?: { ballot?: unknown; map?: unknown } | null } | null;
      id?: unknown;
    } | null;
    const vote = answer?.vote;
    const accepted = vote?.accepted;
    if (!accepted || !Number.isSafeInteger(vote.epoch) || typeof accepted.ballot !== "string") {
      return null;
    }
    const map = checkedMap(url, path, accepted.map);
    const id = typeof answer?.id === "string" ? { id: answer.id } : {};
    return { epoch: vote.epoch as number, accepted: { ballot: accepted.ballot, map }, ...id };
  }

  /**
   * `GET /internal/scan`: the entries in `ranges` as NDJSON lines. The timeout applies
   * to each wait for data, not to the whole stream. With `incarnation` (the map's record)
   * a node on another data directory refuses with `node_recovering`: it is no replica.
   */
  async *scan(
    url: string,
    ranges: readonly Range[],
    epoch: number,
    incarnation?: string,
  ): AsyncGenerator<string> {
    const idle = new AbortController();
    let timer = setTimeout(() => idle.abort(), this.options.timeoutMs);
    const path = `/internal/scan?ranges=${rangesParam(ranges)}`;
    let finished = false;
    try {
      const res = await this.call(url, path, {
        headers: { [EPOCH_HEADER]: String(epoch), ...incarnationHeader(incarnation) },
        signal: idle.signal,
      });
      if (!res.ok) await this.fail(url, path, res);
      let rest = "";
      const text = res.body!.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { done, value } = await this.read(url, path, text.read());
        if (done) break;
        clearTimeout(timer);
        const lines = (rest + value).split("\n");
        rest = lines.pop()!;
        for (const line of lines) if (line.trim() !== "") yield line;
        timer = setTimeout(() => idle.abort(), this.options.timeoutMs);
      }
      finished = true;
      if (rest.trim() !== "") yield rest;
    } finally {
      clearTimeout(timer);
      // A consumer that stops early, or a failed read, lets go of the node's connection.
      if (!finished) idle.abort();
    }
  }

  /** {@link NodeAdmin.scan}'s lines as entries; a line that is none is a bad answer (502). */
  async *scanEntries(
    url: string,
    ranges: readonly Range[],
    epoch: number,
    incarnation?: string,
  ): AsyncGenerator<WireEntry> {
    for await (const line of this.scan(url, ranges, epoch, incarnation)) {
      yield scanEntry(url, line);
    }
  }

  /** `POST /internal/ingest`: applies the NDJSON entries that are newer than the node's. */
  ingest(
    url: string,
    lines: readonly string[],
    epoch: number,
  ): Promise<{ applied: number; skipped: number }> {
    return this.json(url, "/internal/ingest", {
      method: "POST",
      headers: { "content-type": NDJSON, [EPOCH_HEADER]: String(epoch) },
      body: lines.join("\n") + "\n",
    });
  }

  /**
   * `POST /internal/digest`: per bucket (a list of ranges), its entry count and hash; with
   * `incarnation`, refused as {@link NodeAdmin.scan} is. `timeoutMs`: the call's own timeout
   * (anti-entropy gives it a longer one than a client request's).
   */
  async digest(
    url: string,
    buckets: readonly (readonly Range[])[],
    epoch: number,
    incarnation?: string,
    timeoutMs = this.options.timeoutMs,
  ): Promise<BucketDigest[]> {
    const body = await this.json<{ digests: BucketDigest[] }>(
      url,
      "/internal/digest",
      {
        method: "POST",
        signal: AbortSignal.timeout(timeoutMs),
        headers: {
          "content-type": "application/json",
          [EPOCH_HEADER]: String(epoch),
          ...incarnationHeader(incarnation),
        },
        body: JSON.stringify({ buckets: buckets.map((b) => b.map((r) => [r.start, r.end])) }),
      },
    );
    if (!Array.isArray(body.digests) || body.digests.length !== buckets.length) {
      throw new RingkvError("bad_gateway", `Cannot use node ${url}'s digests: wrong count`);
    }
    return body.digests;
  }

  /**
   * `POST /internal/drop`: forgets every entry in `ranges`; the number dropped. With
   * `incarnation`, a node on another data directory refuses (503 `node_recovering`).
   */
  async drop(
    url: string,
    ranges: readonly Range[],
    epoch: number,
    incarnation?: string,
  ): Promise<number> {
    const body = await this.json<{ dropped: number }>(url, "/internal/drop", {
      method: "POST",
      headers: {
        "content-type": "application/json",
        [EPOCH_HEADER]: String(epoch),
        ...incarnationHeader(incarnation),
      },
      body: JSON.stringify({ ranges: ranges.map((r) => [r.start, r.end]) }),
    });
    return body.dropped;
  }
}

/** `node_unavailable` for a call to `url` that failed to `action` (reach, read the answer of). */
function unavailable(url: string, path: string, action: string, err: unknown): RingkvError {
  return new RingkvError(
    "node_unavailable",
    `Cannot ${action} node ${url} (${path.split("?")[0]}): ${failureReason(err)}`,
    { node: url },
  );
}

function scanEntry(url: string, line: string): WireEntry {
  const entry = parseOr(line) as Partial<WireEntry> | null;
  if (typeof entry?.k === "string" && typeof entry.ver === "string") return entry as WireEntry;
  throw new RingkvError(
    "bad_gateway",
    `Cannot use node ${url}'s scan: a line is no entry: ${line.slice(0, 100)}`,
    { node: url },
  );
}

/** The header that makes a node on another data directory refuse a replica read. */
function incarnationHeader(incarnation: string | undefined): Record<string, string> {
  return incarnation === undefined ? {} : { [INCARNATION_HEADER]: incarnation };
}

/**
 * The map of a node's 409 `stale_epoch` body: at the top, where nodes put it
 * (node/http/error_answer.ts), or in the error object.
 */
function heldMap(body: unknown): ClusterMap | undefined {
  const { map, error } = (body ?? {}) as { map?: unknown; error?: { map?: unknown } };
  const held = map ?? error?.map;
  return mapShapeProblem(held) === null ? held as ClusterMap : undefined;
}

/** `value` as a node's cluster map: 502 naming the node when it is not one. */
function checkedMap(url: string, path: string, value: unknown): ClusterMap {
  const problem = mapShapeProblem(value);
  if (problem === null) return value as ClusterMap;
  throw new RingkvError(
    "bad_gateway",
    `Cannot use node ${url}'s answer to ${path}: its cluster map is malformed (${problem})`,
    { node: url },
  );
}

/** `text` parsed as JSON, or an empty object when it is not JSON. */
function parseOr(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return {}; // not JSON: the caller finds no map in it
  }
}
