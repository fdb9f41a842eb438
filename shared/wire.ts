/**
 * Types of the internal node API (proxy <-> node) and of the cluster map.
 * docs/internal-api.md describes the routes that carry them.
 *
 * @module
 */
import type { Version } from "./version.ts";

/** Header carrying the sender's cluster-map epoch; nodes refuse older epochs with 409. */
export const EPOCH_HEADER = "x-ringkv-epoch";
/** Header asking a node to make the new version newer than this one (keeps clocks monotonic across proxies). */
export const MIN_VERSION_HEADER = "x-ringkv-min-version";
/** Header carrying a tombstone's version on the node's 404 (answers with an ETag carry it there). */
export const VERSION_HEADER = "x-ringkv-version";
/** Set on the 503 of a server's starting gate (shared/starting_gate.ts): it is loading its data. */
export const STARTING_HEADER = "x-ringkv-starting";

/**
 * Header with the data-directory incarnation the cluster map records for the node a
 * replication call goes to; a node whose directory is another one refuses to vote
 * (503 `node_recovering`) until the map records its new incarnation (docs/replication.md).
 */
export const INCARNATION_HEADER = "x-ringkv-incarnation";
/** Content type of newline-delimited JSON streams (scan and ingest). */
export const NDJSON = "application/x-ndjson";
/** Content type a value gets when the client sends none. */
export const DEFAULT_CONTENT_TYPE = "application/octet-stream";

/** The node's fixed routes (docs/internal-api.md); `/kv/{key}` is the only pattern. */
const NODE_ROUTES: ReadonlySet<string> = new Set([
  "/health",
  "/metrics",
  "/export",
  "/import",
  "/internal/batch",
  "/internal/ingest",
  "/internal/scan",
  "/internal/drop",
  "/internal/keys",
  "/internal/expired",
  "/internal/changes",
  "/internal/changes/at",
  "/internal/cluster",
  "/internal/read",
  "/internal/prepare",
  "/internal/accept",
  "/internal/digest",
]);

/** The metrics label of a node route: its pattern, so keys never become label values. */
export function nodeRouteLabel(path: string): string {
  if (path.startsWith("/kv/")) return "/kv/{key}";
  return NODE_ROUTES.has(path) ? path : "other";
}

/**
 * One stored entry on the wire: key, value as base64 (`null` for a tombstone),
 * content type, version and the key's ring position (first 32 bits of SHA-1).
 */
export interface WireEntry {
  k: string;
  v: string | null;
  t?: string;
  ver: Version;
  h: number;
}

/** One operation of an internal batch call. */
export interface BatchOp {
  op: "get" | "put" | "delete";
  key: string;
  /** base64 of the value, for `put`. */
  value?: string;
  contentType?: string;
  /** Version the current entry must have (`If-Match`). */
  ifMatch?: Version;
  /** `"*"`: the key must be absent (`If-None-Match: *`). */
  ifNoneMatch?: "*";
  /** The new version must be newer than this. */
  minVersion?: Version;
  /** On a delete: only when the key has expired and still has version `ifMatch` (TTL reaper). */
  expire?: true;
}

/** The answer to one {@link BatchOp}, in the same position. */
export interface BatchResult {
  /** HTTP status the same single-key call would get (200, 201, 204, 404, 412, 4xx). */
  status: number;
  version?: Version;
  /** base64 of the value (200). */
  value?: string;
  /** The value as UTF-8 text, instead of `value`, when the batch asked with `textValues`. */
  text?: string;
  contentType?: string;
  error?: { code: string; message: string };
}

/** A data node as the cluster map knows it. */
export interface NodeInfo {
  id: string;
  url: string;
  weight: number;
  /**
   * The incarnation of the node's data directory when it joined or last caught up;
   * absent in maps from before incarnations (then nothing is checked).
   */
  incarnation?: string;
}

/** A rebalancing in progress: the members of the next ring and how far it has got. */
export interface Rebalancing {
  kind: "add" | "remove";
  /** The node being added or removed. */
  nodeId: string;
  /** `copying`: writes go to old and new owners; `cleanup`: new ring serves, old owners drop. */
  phase: "copying" | "cleanup";
  next: NodeInfo[];
  startedAt: number;
  movedKeys: number;
  totalKeys: number;
}

/** The cluster map: stored atomically by proxies and copied to every node. */
export interface ClusterMap {
  epoch: number;
  replicas: number;
  vnodes: number;
  nodes: NodeInfo[];
  rebalancing: Rebalancing | null;
}

/** Whether two maps are the same (maps go through JSON, so their keys come in one order). */
export function sameMap(a: ClusterMap, b: ClusterMap): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

/** A map a node accepted for an epoch, under a proposer's ballot (docs/internal-api.md). */
export interface AcceptedMap {
  ballot: string;
  map: ClusterMap;
}

/** A node's vote on the map of `epoch`: its promise, and the map it accepted if any. */
export interface MapVote {
  epoch: number;
  /** The highest ballot promised ("" for none). */
  promised: string;
  accepted: AcceptedMap | null;
}
