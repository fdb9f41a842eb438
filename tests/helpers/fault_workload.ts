/**
 * The replication fault workload, shared by tests/replication_fault_test.ts and
 * `deno task torture`: clients doing get/put/delete/compare-and-set with unique values
 * over a few keys through a proxy, recording a history for the linearizability checker,
 * while a nemesis kills and restarts, or pauses and resumes, one node at a time.
 *
 * @module
 */
import type { Call, Operation, Result } from "./linearizability.ts";
import type { ProcessCluster } from "./process_cluster.ts";

/** Counts of what the clients saw. */
export interface WorkloadStats {
  requests: number;
  /** Requests that got no definite answer (5xx, timeout, connection error). */
  failed: number;
}

/** Runs `clients` clients until `signal` aborts; returns the history and the counts. */
export async function runClients(
  proxyUrl: string,
  options: {
    clients: number;
    keys: number;
    signal: AbortSignal;
    timeoutMs?: number;
    /** Key prefix (default "fk"): a fresh one per round keeps each history short. */
    prefix?: string;
    /** Id of the first client (default 0): workloads sharing keys need distinct ids. */
    firstClient?: number;
  },
): Promise<{ history: Operation[]; stats: WorkloadStats }> {
  const history: Operation[] = [];
  const stats = { requests: 0, failed: 0 };
  const client = async (id: number) => {
    const seen = new Map<string, string>();
    for (let n = 0; !options.signal.aborted; n++) {
      const key = `${options.prefix ?? "fk"}${Math.floor(Math.random() * options.keys)}`;
      const call = pickCall(`c${id}-${n}`, seen.get(key));
      const op = await perform(proxyUrl, key, id, call, options.timeoutMs ?? 5000);
      stats.requests++;
      if (op.result.status === "unknown") stats.failed++;
      if (op.result.status !== "unknown" && op.result.version && op.call.op !== "delete") {
        seen.set(key, op.result.version);
      }
      history.push(op);
    }
  };
  const first = options.firstClient ?? 0;
  await Promise.all(Array.from({ length: options.clients }, (_, i) => client(first + i)));
  return { history, stats };
}

function pickCall(value: string, version: string | undefined): Call {
  const r = Math.random();
  if (r < 0.4) return { op: "get" };
  if (r < 0.6) return { op: "put", value };
  if (r < 0.75 && version) return { op: "put", value, ifMatch: version };
  if (r < 0.85) return { op: "put", value, ifNoneMatch: true };
  if (r < 0.93 && version) return { op: "delete", ifMatch: version };
  return { op: "delete" };
}

/** Sends one call and records it. */
export async function perform(
  proxyUrl: string,
  key: string,
  client: number,
  call: Call,
  timeoutMs: number,
): Promise<Operation> {
  const headers: Record<string, string> = {};
  if (call.op !== "get" && call.ifMatch) headers["if-match"] = `"${call.ifMatch}"`;
  if (call.op === "put" && call.ifNoneMatch) headers["if-none-match"] = "*";
  const method = call.op === "get" ? "GET" : call.op === "put" ? "PUT" : "DELETE";
  const start = performance.now();
  let result: Result;
  try {
    const res = await fetch(`${proxyUrl}/kv/${key}`, {
      method,
      headers,
      body: call.op === "put" ? call.value : undefined,
      signal: AbortSignal.timeout(timeoutMs),
    });
    const text = await res.text();
    const version = res.headers.get("etag")?.replaceAll('"', "") || undefined;
    const status = res.status;
    if (status === 200 || status === 201 || status === 204 || status === 404 || status === 412) {
      const value = call.op === "get" && status === 200 ? text : undefined;
      result = {
        status,
        ...(value === undefined ? {} : { value }),
        ...(version ? { version } : {}),
      };
      if (status === 412) result = { status, ...bodyVersion(text) };
    } else {
      result = { status: "unknown" };
    }
  } catch (err) {
    if (!(err instanceof Error)) throw err;
    result = { status: "unknown" };
  }
  return { key, client, call, result, start, end: performance.now() };
}

/** The current version a 412 body names, if any. */
function bodyVersion(text: string): { version?: string } {
  try {
    const v = JSON.parse(text)?.error?.version;
    return typeof v === "string" ? { version: v } : {};
  } catch {
    return {};
  }
}

/** Reads every key once, after the run, as the last operations of the history. */
export async function finalReads(
  proxyUrl: string,
  keys: number,
  prefix = "fk",
): Promise<Operation[]> {
  const out: Operation[] = [];
  for (let i = 0; i < keys; i++) {
    out.push(await perform(proxyUrl, `${prefix}${i}`, -1, { op: "get" }, 10_000));
  }
  return out;
}

/** One nemesis step at a time on nodes of `cluster`, until `signal` aborts. */
export async function nemesis(
  cluster: ProcessCluster,
  ids: string[],
  signal: AbortSignal,
  log: (line: string) => void,
  downMs = 1500,
): Promise<number> {
  let faults = 0;
  for (let i = 0; !signal.aborted; i++) {
    const id = ids[i % ids.length]!;
    const node = cluster.nodes.get(id)!;
    if (i % 2 === 0) {
      log(`nemesis: SIGKILL ${id}`);
      await node.kill("SIGKILL");
      await sleep(downMs);
      await cluster.startNode(id, node.port);
      log(`nemesis: restarted ${id}`);
    } else {
      log(`nemesis: SIGSTOP ${id}`);
      Deno.kill(node.pid, "SIGSTOP");
      await sleep(downMs);
      Deno.kill(node.pid, "SIGCONT");
      log(`nemesis: SIGCONT ${id}`);
    }
    faults++;
    await sleep(downMs);
  }
  return faults;
}

/** Waits `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
