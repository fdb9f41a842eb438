/**
 * The etcd reference of the bench: a 3-member etcd cluster on 127.0.0.1, each member in
 * its own data directory, fsync on (etcd's default), driven through its JSON gateway.
 * Pure: command lines, request bodies and answers; tasks/bench/etcd_cluster.ts starts it.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { etcdArgs, etcdMembers } from "./etcd.ts";
 * const members = etcdMembers("/tmp/run/etcd", [2379, 2380, 2479, 2480, 2579, 2580]);
 * const args = etcdArgs(members[0]!, members, "token");
 * assert(args.includes("--initial-cluster-state") && !args.includes("--unsafe-no-fsync"));
 * ```
 */

/** One member of the etcd cluster. */
export interface EtcdMember {
  name: string;
  /** Its data directory (its log file is `<dir>.log`). */
  dir: string;
  clientPort: number;
  peerPort: number;
}

/** etcd's default `--max-txn-ops`: the most puts one load transaction may carry. */
export const ETCD_MAX_TXN_OPS = 128;

/** Members e1, e2, ... with data directories under `dir`; two ports each (client, peer). */
export function etcdMembers(dir: string, ports: readonly number[]): EtcdMember[] {
  if (ports.length < 2 || ports.length % 2 !== 0) {
    throw new RangeError(`etcdMembers() needs two ports per member, got ${ports.length}`);
  }
  return Array.from({ length: ports.length / 2 }, (_, i) => ({
    name: `e${i + 1}`,
    dir: `${dir}/e${i + 1}`,
    clientPort: ports[2 * i]!,
    peerPort: ports[2 * i + 1]!,
  }));
}

/** The URL clients use for `member`. */
export function clientUrl(member: EtcdMember): string {
  return `http://127.0.0.1:${member.clientPort}`;
}

/**
 * The command line of one member of `members` (a new cluster named by `token`). Nothing
 * is tuned: fsync, snapshots and timeouts are etcd's defaults, as its users run it.
 */
export function etcdArgs(member: EtcdMember, members: readonly EtcdMember[], token: string) {
  const peer = (m: EtcdMember) => `http://127.0.0.1:${m.peerPort}`;
  const cluster = members.map((m) => `${m.name}=${peer(m)}`).join(",");
  return [
    ...["--name", member.name, "--data-dir", member.dir],
    ...["--listen-client-urls", clientUrl(member), "--advertise-client-urls", clientUrl(member)],
    ...["--listen-peer-urls", peer(member), "--initial-advertise-peer-urls", peer(member)],
    ...["--initial-cluster", cluster, "--initial-cluster-state", "new"],
    ...["--initial-cluster-token", token],
    ...["--logger", "zap", "--log-level", "warn", "--log-outputs", `${member.dir}.log`],
  ];
}

function base64(text: string): string {
  return new TextEncoder().encode(text).toBase64();
}

/** The body of a `POST /v3/kv/txn` that puts every pair, in one revision. */
export function etcdPutTxn(pairs: readonly (readonly [string, string])[]): string {
  if (pairs.length > ETCD_MAX_TXN_OPS) {
    throw new RangeError(`Cannot put ${pairs.length} keys in one txn: etcd takes at most 128`);
  }
  const success = pairs.map(([key, value]) => ({
    requestPut: { key: base64(key), value: base64(value) },
  }));
  return JSON.stringify({ success });
}

/** The body of a `POST /v3/kv/range` that counts the keys starting with `prefix`. */
export function etcdPrefixCount(prefix: string): string {
  const bytes = new TextEncoder().encode(prefix);
  const last = bytes.at(-1);
  if (last === undefined || last === 0xff) {
    throw new RangeError(`Cannot count keys under "${prefix}": it must end below byte 0xff`);
  }
  const end = bytes.slice();
  end[end.length - 1] = last + 1;
  return JSON.stringify({ key: bytes.toBase64(), range_end: end.toBase64(), count_only: true });
}

/** The count of an `etcdPrefixCount` answer (the gateway omits it when it is 0). */
export function countOf(answer: { count?: string }): number {
  return Number(answer.count ?? "0");
}

/** What the bench reads of a member's `POST /v3/maintenance/status` answer. */
export interface EtcdStatus {
  header?: { member_id?: string };
  leader?: string;
}

/** The index of the member whose status says it leads; -1 for none. */
export function leaderIndex(statuses: readonly (EtcdStatus | undefined)[]): number {
  return statuses.findIndex((s) =>
    s?.leader !== undefined && s.leader !== "0" && s.header?.member_id === s.leader
  );
}
