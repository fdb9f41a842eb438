/**
 * Starting the bench's etcd reference: 3 members on ports the OS says are free, each in its
 * own data directory under the run's, stopped together (SIGTERM, then SIGKILL). The command
 * lines and bodies are in tasks/bench/etcd.ts.
 *
 * @module
 */
import type { Child } from "../children.ts";
import {
  clientUrl,
  etcdArgs,
  type EtcdMember,
  etcdMembers,
  type EtcdStatus,
  leaderIndex,
} from "./etcd.ts";
import { freePort, spawnTool } from "./processes.ts";

const START_TIMEOUT_MS = 30_000;
const POLL_MS = 100;
const FETCH_TIMEOUT_MS = 2_000;

/** `count * 2` distinct free ports (a port the OS hands out twice is asked for again). */
function freePorts(count: number): number[] {
  const ports = new Set<number>();
  for (let tries = 0; ports.size < count && tries < count * 10; tries++) ports.add(freePort());
  if (ports.size < count) throw new Error(`Cannot find ${count} free ports on 127.0.0.1`);
  return [...ports];
}

/** The last lines of a member's log, for an error message. */
async function logTail(member: EtcdMember): Promise<string> {
  try {
    const lines = (await Deno.readTextFile(`${member.dir}.log`)).trimEnd().split("\n");
    return lines.slice(-5).join("\n");
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    return "(no log written)";
  }
}

/** The JSON answer of `url`, or undefined while the member cannot answer yet. */
async function ask(url: string, method = "GET", body?: string): Promise<unknown> {
  try {
    const res = await fetch(url, { method, body, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
    if (!res.ok) {
      await res.body?.cancel();
      return undefined;
    }
    return await res.json();
  } catch (err) {
    // Not listening yet, or no leader yet: the caller polls again.
    if (err instanceof TypeError || err instanceof DOMException) return undefined;
    throw err;
  }
}

/** Polls until every member is healthy and one leads; that member's index. */
async function awaitLeader(members: EtcdMember[], exited: Promise<number>[]): Promise<number> {
  let gone: number | undefined;
  exited.forEach((e, i) => e.then(() => (gone ??= i)));
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (Date.now() < deadline && gone === undefined) {
    const health = await Promise.all(members.map((m) => ask(`${clientUrl(m)}/health`)));
    if (health.every((h) => (h as { health?: string } | undefined)?.health === "true")) {
      const statuses = await Promise.all(
        members.map((m) => ask(`${clientUrl(m)}/v3/maintenance/status`, "POST", "{}")),
      );
      const leader = leaderIndex(statuses as (EtcdStatus | undefined)[]);
      if (leader !== -1) return leader;
    }
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  const member = members[gone ?? 0]!;
  const state = gone === undefined
    ? `no leader after ${START_TIMEOUT_MS} ms`
    : `member ${member.name} exited`;
  throw new Error(
    `Cannot start the etcd reference: ${state}; ${member.name}'s log:\n` +
      `${await logTail(member)}\n(started as: etcd ${etcdArgs(member, members, "…").join(" ")})`,
  );
}

/**
 * Starts a 3-member etcd cluster in `dir`, hands it to `keep` (one child that stops all
 * members at once, so a failed start is cleaned up too) and resolves with the leader's
 * client URL (the bench drives the leader, etcd's fastest member for linearizable reads) and
 * each member's process, whose CPU the bench reads.
 */
export async function startEtcd(
  dir: string,
  keep: (child: Child) => Child,
): Promise<{ url: string; members: { name: string; pid: number }[] }> {
  await Deno.mkdir(dir, { recursive: true });
  const members = etcdMembers(dir, freePorts(6));
  const token = `ringkv-bench-${crypto.getRandomValues(new Uint8Array(8)).toHex()}`;
  // Output dropped: the members log to files, and their gateways print gRPC reconnection
  // warnings on stderr while the cluster stops.
  const children = members.map((m) =>
    spawnTool(`etcd ${m.name}`, "etcd", etcdArgs(m, members, token), clientUrl(m), {
      output: "null",
    })
  );
  keep({
    name: "etcd",
    url: children[0]!.url,
    pid: children[0]!.pid,
    exited: Promise.all(children.map((c) => c.exited)).then((codes) => codes[0]!),
    stop: async () => {
      await Promise.all(children.map((c) => c.stop()));
    },
  });
  const leader = await awaitLeader(members, children.map((c) => c.exited));
  const pids = members.map((m, i) => ({ name: `etcd-${m.name}`, pid: children[i]!.pid }));
  return { url: clientUrl(members[leader]!), members: pids };
}
