/**
 * The chaos run of fast_write_chaos_test.ts over REAL acceptors: two proxies (their wiring,
 * batcher and HTTP client) over three in-process node apps with their acceptors and engines,
 * calls that fail or lose their answer at random, a statfs that takes a few ms, and half the
 * values of 70 kB (a log line of 64 KiB or more makes the engine ask statfs before it stores an
 * accept). Before 1a38987 an accept was decided when it came and stored after that wait: 4 to 7
 * of these 10 seeds gave a history that is not linearizable (five runs).
 *
 * REAL_CHAOS_SEEDS (default 10), REAL_CHAOS_FIRST_SEED (1), REAL_CHAOS_BIG_SHARE (0.5),
 * REAL_CHAOS_FAULT_RATE (0.1). A failing seed runs again alone with
 * REAL_CHAOS_FIRST_SEED=<seed> REAL_CHAOS_SEEDS=1 (the same draws; timing may differ).
 *
 * The second test runs the same with acceptors that fold every promise on a key without an
 * entry into their absent-key floor two prepares after giving it (a promise age of 0, not 60 s)
 * and 6 keys, so refusals by the floor, late accepts below it and ingests below it happen
 * throughout (REAL_CHAOS_FOLD_SEEDS, default 5).
 */
import { assert, assertEquals } from "@std/assert";
import type { BatchResult } from "../../shared/wire.ts";
import type { Replicas } from "./caspaxos.ts";
import { seededRandom } from "../../tests/doubles/seeded_random.ts";
import { startRealAcceptorCluster } from "../../tests/doubles/real_acceptor_cluster.ts";
import { checkHistory, type Operation, type Result } from "../../tests/helpers/linearizability.ts";
import { historyOf, pick, resultOf, runOnce } from "../../tests/helpers/chaos_clients.ts";

const PROXIES = ["p0a1b2c3d4e5f", "p9f8e7d6c5b4a"];
const CLIENTS = 6;
const OPS = 20;
const KEYS = 2;
const FOLD_KEYS = 6;
const FOLD_SEEDS = Number(Deno.env.get("REAL_CHAOS_FOLD_SEEDS") ?? 5);
/** A statfs takes up to this many ms, less 1 (the longer, the more accepts wait in it). */
const STATFS_MS = 8;
const SEEDS = Number(Deno.env.get("REAL_CHAOS_SEEDS") ?? 10);
const FIRST = Number(Deno.env.get("REAL_CHAOS_FIRST_SEED") ?? 1);
const BIG = Number(Deno.env.get("REAL_CHAOS_BIG_SHARE") ?? 0.5);
const RATE = Number(Deno.env.get("REAL_CHAOS_FAULT_RATE") ?? 0.1);
/** Makes a value 70 kB; the checker sees what is before the colon. */
const PAD = ":" + "x".repeat(70_000);

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

async function chaosRun(
  seed: number,
  fold?: { keys: number; folded: number },
): Promise<Operation[]> {
  const random = seededRandom(seed);
  const wait = () => random() < 0.5 ? sleep(Math.floor(random() * 3)) : Promise.resolve();
  const c = await startRealAcceptorCluster({
    proxies: PROXIES,
    statfsDelay: () => sleep(Math.floor(random() * STATFS_MS)),
    ...(fold ? { promiseAgeMs: 0 } : {}),
  });
  const keys = fold?.keys ?? KEYS;
  const reps = [...c.proxies.values()].map((p) => p.replication.replicated);
  const replicas = new Map<string, Replicas>();
  for (let k = 0; k < keys; k++) replicas.set(`k${k}`, await c.replicas(`k${k}`));
  const store = (value: string) => btoa(random() < BIG ? value + PAD : value);
  const load = (value: string) => atob(value).split(":")[0]!;
  const history: Operation[] = [];
  try {
    c.chaos = { random, rate: RATE, delay: wait };
    await Promise.all(Array.from({ length: CLIENTS }, async (_, client) => {
      const seen = new Map<string, string>();
      for (let i = 0; i < OPS; i++) {
        const key = `k${Math.floor(random() * keys)}`;
        const { call, op } = pick(random, key, `c${client}-${i}`, seen.get(key), store);
        const start = performance.now();
        const res = await runOnce(reps[client % reps.length]!, replicas.get(key)!, op);
        const result: Result = res === undefined
          ? { status: "unknown" }
          : resultOf(call, res, load);
        if (res?.version !== undefined && res.status !== 404) seen.set(key, res.version);
        history.push({ key, client, call, result, start, end: performance.now() });
      }
    }));
    c.chaos = undefined;
    for (const [key, r] of replicas) {
      const start = performance.now();
      let res: BatchResult | undefined;
      for (let t = 0; t < 10 && res === undefined; t++) {
        res = await runOnce(reps[0]!, r, { op: "get", key });
      }
      assert(res !== undefined, `seed ${seed}: the last read of ${key} failed 10 times`);
      const result = resultOf({ op: "get" }, res, load);
      history.push({ key, client: 99, call: { op: "get" }, result, start, end: performance.now() });
    }
    if (fold) fold.folded += await foldedOn(c.nodes.values());
  } finally {
    await c.close();
  }
  return history;
}

/** The promises the nodes folded into their absent-key floor, from their /metrics. */
async function foldedOn(
  nodes: Iterable<
    { app: { request(path: string, init: RequestInit): Response | Promise<Response> } }
  >,
) {
  let folded = 0;
  for (const n of nodes) {
    const res = await n.app.request("/metrics", { headers: { authorization: "Bearer s3cret" } });
    folded += Number(
      /ringkv_node_promises_folded_total\{[^}]*\} (\d+)/.exec(await res.text())?.[1],
    );
  }
  return folded;
}

Deno.test(`two proxies over real acceptors with a slow statfs and 70 kB values: every history is linearizable (${SEEDS} seeds)`, async () => {
  await checkSeeds(SEEDS);
});

Deno.test(`the same with every promise on a key without an entry folded at once: linearizable (${FOLD_SEEDS} seeds)`, async () => {
  const fold = { keys: FOLD_KEYS, folded: 0 };
  await checkSeeds(FOLD_SEEDS, fold);
  assert(fold.folded > 0, "no promise was folded: the run did not exercise the floor");
  console.log(`${fold.folded} promises folded over ${FOLD_SEEDS} seeds`);
});

async function checkSeeds(seeds: number, fold?: { keys: number; folded: number }) {
  const bad: number[] = [];
  for (let seed = FIRST; seed < FIRST + seeds; seed++) {
    const history = await chaosRun(seed, fold);
    const key = checkHistory(history);
    if (key === null) continue;
    bad.push(seed);
    console.log(`seed ${seed}, key ${key}:\n${historyOf(history, key)}`);
  }
  assertEquals(
    bad,
    [],
    `not linearizable: seeds ${bad.join(", ")} of ${FIRST}..${FIRST + seeds - 1} ` +
      `(one again: REAL_CHAOS_FIRST_SEED=${bad[0]} REAL_CHAOS_SEEDS=1)`,
  );
}
