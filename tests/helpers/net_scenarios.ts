/**
 * Network fault runs, shared by tests/net_faults_test.ts (short) and `deno task torture
 * --net` (60 s runs): a lab (tests/helpers/netns.ts) with nodes n1-n3 (3 replicas) and two
 * proxies p1, p2 in their own hosts, clients on both proxies over the same keys, and a
 * nemesis of one fault kind that puts a fault in force for 4 s, lifts it for 2 s,
 * and so on. After the run: every fault lifted, the history linearizable (final reads
 * included), no acknowledged write lost, and the replicas agreeing within one anti-entropy
 * interval.
 *
 * @module
 */
import { ADMIN, admin, SECRET } from "./process_cluster.ts";
import { finalReads, runClients, sleep } from "./fault_workload.ts";
import { checkHistory, type Operation } from "./linearizability.ts";
import { type FaultWindow, lostWrites, type ProxiedOp, type Share, shares } from "./fault_stats.ts";
import type { NetLab } from "./netns.ts";
import type { Faults } from "./nft_rules.ts";

/** The fault kinds, each run on its own. */
export const FAULT_KINDS = [
  "isolate",
  "split-proxies",
  "answers-lost",
  "requests-lost",
  "loss-10",
  "slow-link",
  "kill-pause-partition",
  "membership-partition",
  "clock-skew",
] as const;
/** One fault kind. */
export type FaultKind = typeof FAULT_KINDS[number];

/** How long each fault is in force, then lifted (defaults of {@link runFaults}). */
const PACE = { faultMs: 4000, calmMs: 2000 };
const TIMEOUT_MS = 1000;
const PROBE_MS = 200;
/** The delay each way of a slow link (NetLab.startNode's relay default). */
const RELAY_DELAY_MS = 300;
/** Interval of anti-entropy sweeps in the lab. */
export const ANTI_ENTROPY_MS = 2000;
const KEYS = 16;
const PROXIES = ["p1", "p2"];
/** Test-only clock offset (docs/replication.md, "Clock skew"). */
const HOUR = String(3_600_000);

/** What one run measured. */
export interface RunResult {
  kind: FaultKind;
  faults: number;
  /** Faults seen in force before they were lifted (packets dropped, a slow link measured). */
  seenInForce: number;
  all: Share;
  majority: Share;
  /** Requests sent while no fault was in force (nor had just been lifted). */
  calm: Share;
  /** The first key whose history is not linearizable, or null. */
  violation: string | null;
  lost: string[];
  /** Keys whose replicas still disagreed at the deadline. */
  diverged: string[];
  convergedMs: number;
  /** Both proxies' `ringkv_proxy_fast_writes_total` by outcome, summed (absent: no scrape). */
  fast?: Record<string, number>;
  /** Why the run could not finish (the cluster never settled), when it could not. */
  unfinished?: string;
}

/** Starts n1-n3 and proxies p1 (`--nodes`) and p2 (`--join`); skew applies to n3 and p2. */
async function startCluster(lab: NetLab, kind: FaultKind): Promise<void> {
  const skew = (sign: string): Record<string, string> =>
    kind === "clock-skew" ? { RINGKV_TEST_CLOCK_OFFSET_MS: sign + HOUR } : {};
  for (const id of ["n1", "n2", "n3"]) await lab.startNode(id, id === "n3" ? skew("+") : {});
  const common = [
    ...["--timeout-ms", String(TIMEOUT_MS), "--probe-ms", String(PROBE_MS), "--poll-ms", "200"],
    ...["--anti-entropy-ms", String(ANTI_ENTROPY_MS)],
  ];
  const urls = [...lab.nodes.values()].map((n) => n.url).join(",");
  await lab.startProxy("p1", ["--nodes", urls, "--replicas", "3", ...common]);
  await lab.startProxy("p2", ["--join", lab.nodes.get("n1")!.url, ...common], skew("-"));
}

/** The hosts of nodes and proxies other than `host` (the client host is never cut). */
function others(lab: NetLab, host: string): string[] {
  return [...lab.nodes.keys(), ...lab.proxies.keys()].filter((h) => h !== host);
}

type Undo = () => Promise<void>;

/** A fault put in force: the proxies that keep a majority, how to lift it, how to see it. */
interface Applied {
  majority: string[];
  undo: Undo;
  /** Whether the fault is in force: its rules dropped packets, or the link is slow. */
  inForce: () => Promise<boolean>;
}

/** Whether the nemesis's rules have dropped any packet since they were put in force. */
async function dropping(lab: NetLab): Promise<boolean> {
  return (await lab.droppedPackets()) > 0;
}

/** Whether a `/health` of `node` through its relay takes at least the relay's delay. */
async function slowThrough(lab: NetLab, node: string): Promise<boolean> {
  const start = performance.now();
  await (await lab.fetch(`${lab.nodes.get(node)!.local}/health`)).body?.cancel();
  return performance.now() - start >= RELAY_DELAY_MS;
}

/** Puts fault number `i` of `kind` in force; returns the proxies that keep a majority. */
async function applyFault(
  lab: NetLab,
  kind: FaultKind,
  i: number,
  log: (line: string) => void,
): Promise<Applied> {
  const node = ["n1", "n2", "n3"][i % 3]!;
  const net = async (faults: Faults, what: string, majority = PROXIES): Promise<Applied> => {
    log(`nemesis: ${what}`);
    await lab.setFaults(faults);
    return { majority, undo: () => lab.heal(), inForce: () => dropping(lab) };
  };
  switch (kind) {
    case "isolate":
    case "clock-skew":
      return await net({ partition: [[node], others(lab, node)] }, `isolate ${node}`);
    case "split-proxies":
      return i % 2 === 0
        ? await net({ partition: [["p1", "n1"], ["p2", "n2", "n3"]] }, "{p1,n1} | {p2,n2,n3}", [
          "p2",
        ])
        : await net({ partition: [["p2", "n1"], ["p1", "n2", "n3"]] }, "{p2,n1} | {p1,n2,n3}", [
          "p1",
        ]);
    case "answers-lost":
      return await net(
        { drops: PROXIES.map((p) => ({ from: node, to: p })) },
        `${node}'s answers lost`,
      );
    case "requests-lost":
      return await net(
        { drops: PROXIES.map((p) => ({ from: p, to: node })) },
        `requests to ${node} lost`,
      );
    case "loss-10":
      return await net(
        { loss: Object.fromEntries(others(lab, "").map((h) => [h, 10])) },
        "10 % loss on every host",
      );
    case "slow-link":
      log(`nemesis: ${node}'s link slow`);
      lab.slow(node, true);
      return {
        majority: PROXIES,
        undo: () => Promise.resolve(lab.slow(node, false)),
        inForce: () => slowThrough(lab, node),
      };
    case "kill-pause-partition":
      return await killOrPause(lab, node, i, log);
    case "membership-partition":
      return await reshapeIsolated(lab, node, i, log);
  }
}

/** Cuts `node` off one way or the other and also kills or pauses it. */
async function killOrPause(
  lab: NetLab,
  node: string,
  i: number,
  log: (l: string) => void,
): Promise<Applied> {
  const faults: Faults = i % 2 === 0
    ? { partition: [[node], others(lab, node)] }
    : { drops: PROXIES.map((p) => ({ from: node, to: p })) };
  await lab.setFaults(faults);
  const kill = i % 4 < 2;
  log(
    `nemesis: ${i % 2 === 0 ? "isolate" : "drop the answers of"} ${node}, ${
      kill ? "kill" : "pause"
    } it`,
  );
  if (kill) await lab.kill(node);
  else lab.pause(node);
  return {
    majority: PROXIES,
    undo: async () => {
      await lab.heal();
      if (kill) await lab.startNode(node);
      else lab.resume(node);
    },
    inForce: () => dropping(lab),
  };
}

let nextNode = 4;

/**
 * Isolates `node` and, meanwhile, adds n4+, drains it or kills and force-removes it via
 * p2. A change the proxy refuses during the partition (409: a force removal needs the
 * other replicas of the dead node's ranges) is asked again once the partition heals.
 */
async function reshapeIsolated(
  lab: NetLab,
  node: string,
  i: number,
  log: (l: string) => void,
): Promise<Applied> {
  await lab.setFaults({ partition: [[node], others(lab, node)] });
  const id = `n${nextNode}`;
  let change: () => Promise<{ status: number; body: unknown }>;
  if (i % 2 === 0) {
    const added = await lab.startNode(id);
    change = () => admin(p2Of(lab), "POST", "/cluster/nodes", { url: added.url, weight: 1 });
  } else {
    if (i % 4 === 1) await lab.kill(id);
    nextNode++;
    const force = i % 4 === 1 ? "?force=true" : "";
    change = () => admin(p2Of(lab), "DELETE", `/cluster/nodes/${id}${force}`);
  }
  const what = ["add", "kill and force-remove", "add", "drain and remove"][i % 4];
  const res = await change();
  log(`nemesis: isolate ${node}, ${what} ${id}: ${res.status} ${JSON.stringify(res.body)}`);
  return {
    majority: PROXIES,
    undo: async () => {
      await lab.heal();
      for (let again = res, tries = 0; again.status !== 202; tries++) {
        if (tries === 10 || (tries > 0 && again.status !== 409)) {
          throw new Error(`Cannot ${what} ${id} after the partition: ${JSON.stringify(again)}`);
        }
        await settle(lab, "p2");
        again = await change();
        log(`nemesis: healed, ${what} ${id} again: ${again.status}`);
      }
      await settle(lab, "p2");
    },
    inForce: () => dropping(lab),
  };
}

function p2Of(lab: NetLab): string {
  return lab.proxies.get("p2")!.local;
}

/** Polls `GET /cluster` on `proxy` until no rebalancing runs; a failed call is retried. */
async function settle(lab: NetLab, proxy: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = "no answer yet";
  while (Date.now() < deadline) {
    try {
      const res = await lab.fetch(`${lab.proxies.get(proxy)!.local}/cluster`, { headers: ADMIN });
      const body = await res.text();
      if (res.status === 200 && JSON.parse(body).rebalancing === null) return;
      last = `${res.status} ${body.slice(0, 600)}`;
    } catch (err) {
      if (!(err instanceof TypeError || err instanceof DOMException)) throw err;
      last = String(err);
    }
    await sleep(200);
  }
  throw new Error(`Cannot finish the run: ${proxy} is not stable after ${timeoutMs} ms: ${last}`);
}

/** Runs the nemesis until `signal` aborts; returns the fault windows. */
async function nemesis(
  lab: NetLab,
  kind: FaultKind,
  signal: AbortSignal,
  log: (line: string) => void,
  pace: typeof PACE,
): Promise<{ windows: FaultWindow[]; seenInForce: number }> {
  const windows: FaultWindow[] = [];
  let seenInForce = 0;
  for (let i = 0; !signal.aborted; i++) {
    const start = performance.now();
    const { majority, undo, inForce } = await applyFault(lab, kind, i, log);
    await sleep(pace.faultMs);
    windows.push({ start, end: performance.now(), majority });
    if (await inForce()) seenInForce++;
    await undo();
    await sleep(pace.calmMs);
  }
  return { windows, seenInForce };
}

/** Every key's newest entry that is live is held by 3 nodes (tombstones may be collected). */
async function divergedKeys(lab: NetLab, prefix: string): Promise<string[]> {
  const seen = new Map<string, string>();
  const holders = new Map<string, { ver: string; live: boolean; count: number }>();
  const view = await (await lab.fetch(`${lab.proxies.get("p1")!.local}/cluster`, {
    headers: ADMIN,
  })).json() as { nodes: { id: string }[] };
  for (const { id } of view.nodes) {
    const res = await lab.fetch(`${lab.nodes.get(id)!.local}/internal/keys?limit=1000`, {
      headers: { authorization: `Bearer ${SECRET}` },
    });
    const body = await res.json() as { entries: { k: string; v: string | null; ver: string }[] };
    for (const e of body.entries.filter((e) => e.k.startsWith(prefix))) {
      seen.set(`${e.k} ${id}`, e.ver + (e.v === null ? " (deleted)" : ""));
      const h = holders.get(e.k);
      if (h === undefined || e.ver > h.ver) {
        holders.set(e.k, { ver: e.ver, live: e.v !== null, count: 1 });
      } else if (e.ver === h.ver) h.count++;
    }
  }
  // Each key left apart with what every node holds: a failed run says where it stuck.
  const ids = view.nodes.map((n) => n.id);
  return [...holders].filter(([, h]) => h.live && h.count < 3).map(([k]) =>
    `${k}: ${ids.map((id) => `${id} ${seen.get(`${k} ${id}`) ?? "-"}`).join(", ")}`
  );
}

/**
 * How long the replicas may take to agree after the final reads: one anti-entropy interval,
 * issue 16's bound, in `deno task torture --net`; the test suite allows more (it runs beside
 * other tests on 2 cores, where hint replay after a restart took 2.1 s once).
 */
export const CONVERGE_MS = { torture: ANTI_ENTROPY_MS, loaded: 3 * ANTI_ENTROPY_MS + 5000 };

/** Polls until the replicas agree, for `withinMs`; returns what is left and how long it took. */
async function converge(
  lab: NetLab,
  prefix: string,
  withinMs: number,
): Promise<{ diverged: string[]; ms: number }> {
  const start = performance.now();
  let diverged = await divergedKeys(lab, prefix);
  while (diverged.length > 0 && performance.now() - start < withinMs) {
    await sleep(200);
    diverged = await divergedKeys(lab, prefix);
  }
  return { diverged, ms: Math.round(performance.now() - start) };
}

/** One run of `kind` for `durationMs` on a started lab; the lab is left for `stop()`. */
export async function runFaults(
  lab: NetLab,
  kind: FaultKind,
  durationMs: number,
  log: (line: string) => void = () => {},
  pace = PACE,
  convergeMs = CONVERGE_MS.torture,
): Promise<RunResult> {
  await startCluster(lab, kind);
  const stop = new AbortController();
  const prefix = `${kind}-`;
  const workloads = PROXIES.map((p, i) =>
    runClients(lab.proxies.get(p)!.local, {
      clients: 4,
      keys: KEYS,
      signal: stop.signal,
      prefix,
      firstClient: 100 * i,
      timeoutMs: 5000,
    }).then(({ history }) => history.map((op): ProxiedOp => ({ ...op, proxy: p })))
  );
  const chaos = nemesis(lab, kind, stop.signal, log, pace);
  await sleep(durationMs);
  stop.abort();
  const [{ windows, seenInForce }, ...histories] = await Promise.all([chaos, ...workloads]);
  const ops = histories.flat();
  await settle(lab, "p1");
  const finals = await finalReads(lab.proxies.get("p1")!.local, KEYS, prefix);
  const history: Operation[] = [...ops, ...finals];
  const { diverged, ms } = await converge(lab, prefix, convergeMs);
  const fast = await fastWrites(lab);
  const violation = checkHistory(history);
  if (violation !== null) {
    // The key's operations by call time, to read the violation from.
    const mine = history.filter((o) => o.key === violation).sort((a, b) => a.start - b.start);
    log(`${violation}'s history:\n${mine.map((o) => JSON.stringify(o)).join("\n")}`);
  }
  return {
    kind,
    faults: windows.length,
    seenInForce,
    ...shares(ops, windows, TIMEOUT_MS + PROBE_MS + 300),
    violation,
    lost: lostWrites(ops, finals),
    diverged,
    convergedMs: ms,
    fast,
  };
}

/** Both proxies' fast-write outcomes, from their /metrics, summed; the outcomes seen only. */
async function fastWrites(lab: NetLab): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const p of PROXIES) {
    const res = await lab.fetch(`${lab.proxies.get(p)!.local}/metrics`, { headers: ADMIN });
    const text = await res.text();
    for (const m of text.matchAll(/^ringkv_proxy_fast_writes_total\{outcome="(\w+)"\} (\d+)$/gm)) {
      if (Number(m[2]) > 0) out[m[1]!] = (out[m[1]!] ?? 0) + Number(m[2]);
    }
  }
  return out;
}
