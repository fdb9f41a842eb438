/**
 * Which kind of ringkv process a data directory belongs to, told by the files in it, so that a
 * node is never started on a proxy's directory (or the reverse) and writes its files beside
 * the other's. Pure: the caller lists the directory (shared/data_dir_lock.ts does, before it
 * creates or writes anything there).
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { dataDirKind } from "./data_dir_kind.ts";
 * assertEquals(dataDirKind(["ringkv.lock", "cluster.json"]), "proxy");
 * assertEquals(dataDirKind(["node.json", "cluster.json", "wal.jsonl"]), "node");
 * assertEquals(dataDirKind(["notes.txt"]), null);
 * ```
 */

/** The processes that own a data directory. */
export type DataDirKind = "node" | "proxy" | "cluster";

/**
 * The files only a node writes (node/storage/recovery.ts, node/paxos/acceptor_floor.ts). A node
 * keeps a copy of the cluster map too, so `cluster.json` alone says proxy only without these.
 */
const NODE_FILES = ["node.json", "wal.jsonl", "snapshot.json", "acceptor.json"];
/** The proxy's map (proxy/cluster/map_store.ts). */
const PROXY_FILES = ["cluster.json"];
/** `deno task cluster`'s tokens, beside its processes' own directories (tasks/cluster.ts). */
const CLUSTER_FILES = ["admin-token", "cluster-secret"];

const WHOSE: Record<DataDirKind, string> = {
  node: "a data node's (deno task node)",
  proxy: "a proxy's (deno task proxy)",
  cluster: "deno task cluster's (each of its processes has a directory inside it)",
};

/** The kind whose files `names` (a directory's entries) hold, or null when none's. */
export function dataDirKind(names: readonly string[]): DataDirKind | null {
  if (NODE_FILES.some((n) => names.includes(n))) return "node";
  if (CLUSTER_FILES.some((n) => names.includes(n))) return "cluster";
  if (PROXY_FILES.some((n) => names.includes(n))) return "proxy";
  return null;
}

/** A data directory that another kind of process owns; nothing was written to it. */
export class DataDirKindError extends Error {
  /** `files`: the entries of `dir` that told `found`. */
  constructor(
    readonly dir: string,
    readonly want: DataDirKind,
    readonly found: DataDirKind,
    files: readonly string[],
  ) {
    const self = want === "cluster" ? "deno task cluster" : `this ${want}`;
    const owner = found === "cluster" ? "deno task cluster" : `a ${found}`;
    super(
      `Cannot use data directory ${dir}: it is ${WHOSE[found]}, it holds ${files.join(", ")}. ` +
        `Give ${self} its own --data, or start ${owner} on this one.`,
    );
    this.name = "DataDirKindError";
  }
}

/**
 * The refusal for a `want` process on `dir` whose entries are `names`, or null when the
 * directory is empty, missing, its own or no ringkv process's.
 */
export function otherKindError(
  dir: string,
  want: DataDirKind,
  names: readonly string[],
): DataDirKindError | null {
  const found = dataDirKind(names);
  if (found === null || found === want) return null;
  const files = [...NODE_FILES, ...CLUSTER_FILES, ...PROXY_FILES].filter((n) => names.includes(n));
  return new DataDirKindError(dir, want, found, files);
}
