/**
 * A node killed with SIGKILL under concurrent writes and deletes comes back with every
 * write it acknowledged. Several clients share the keys, so the check is linearizability
 * of each key as a register: after the restart a key must hold the outcome of some op that
 * no acknowledged op followed in real time (ops in flight at the kill may or may not have
 * happened; the state found by the previous check counts as an op that ended then).
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { type ServerProcess, spawnServer } from "./helpers/process.ts";

const MAIN = new URL("../node/main.ts", import.meta.url);
const CYCLES = 20;
const CLIENTS = 6;
const KEYS = 50;
const CALL_TIMEOUT_MS = 10_000;
const CYCLE_DEADLINE_MS = 15_000;

/** One op as a client saw it: `value` null is a delete; `end` is Infinity when unanswered. */
interface Op {
  key: string;
  value: string | null;
  start: number;
  end: number;
}

function startNode(dir: string): Promise<ServerProcess> {
  // A small snapshot threshold makes the kills land during snapshots too.
  const args = ["--port", "0", "--data", dir, "--id", "crash", "--snapshot-every-bytes", "20000"];
  return spawnServer({ script: MAIN, args });
}

/** What the clients share: their ops, the count of answers, and when to stop. */
interface Run {
  ops: Op[];
  acked: number;
  target: number;
  reached: PromiseWithResolvers<void>;
  stopped: boolean;
  unexpected: string[];
}

/** Sends ops until the run stops; every op is recorded, answered or not. */
async function client(url: string, id: string, run: Run): Promise<void> {
  for (let seq = 0; !run.stopped; seq++) {
    const key = `key${Math.floor(Math.random() * KEYS)}`;
    const value = Math.random() < 0.75 ? `${id}-${seq}` : null;
    const op: Op = { key, value, start: performance.now(), end: Infinity };
    run.ops.push(op);
    let res: Response;
    try {
      res = await fetch(`${url}/kv/${key}`, {
        method: value === null ? "DELETE" : "PUT",
        body: value,
        signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
      });
      await res.body?.cancel();
    } catch {
      return; // the node is gone: this op stays in flight
    }
    const expected = value === null ? [204, 404] : [200, 201];
    if (!expected.includes(res.status)) run.unexpected.push(`${key}: status ${res.status}`);
    op.end = performance.now();
    if (++run.acked === run.target) run.reached.resolve();
  }
}

/** Every value `key` may hold after the restart (null: absent). */
function allowed(
  key: string,
  ops: Op[],
  before: string | null,
  cycleStart: number,
): (string | null)[] {
  const mine = ops.filter((op) => op.key === key);
  const lastAckStart = Math.max(
    -Infinity,
    ...mine.filter((o) => o.end < Infinity).map((o) => o.start),
  );
  const out: (string | null)[] = [];
  if (cycleStart >= lastAckStart) out.push(before);
  for (const op of mine) if (op.end >= lastAckStart) out.push(op.value);
  return out;
}

async function readAll(url: string): Promise<Map<string, string | null>> {
  const res = await fetch(`${url}/internal/keys?limit=1000&values=true`, {
    signal: AbortSignal.timeout(CALL_TIMEOUT_MS),
  });
  const body = await res.json() as { entries: { k: string; v: string | null }[]; more: boolean };
  assertEquals(body.more, false);
  const decoder = new TextDecoder();
  return new Map(
    body.entries.map((
      e,
    ) => [e.k, e.v === null ? null : decoder.decode(Uint8Array.fromBase64(e.v))]),
  );
}

/** Runs clients until a random number of acknowledged ops, then kills the node. */
async function loadAndKill(node: ServerProcess): Promise<{ ops: Op[]; start: number }> {
  const run: Run = {
    ops: [],
    acked: 0,
    target: 20 + Math.floor(Math.random() * 1000),
    reached: Promise.withResolvers<void>(),
    stopped: false,
    unexpected: [],
  };
  const start = performance.now();
  const clients = Array.from(
    { length: CLIENTS },
    (_, i) => client(node.url, `c${i}r${rand()}`, run),
  );
  const timer = setTimeout(() => run.reached.resolve(), CYCLE_DEADLINE_MS);
  await run.reached.promise;
  clearTimeout(timer);
  run.stopped = true; // no new ops; those already sent are in flight at the kill
  await node.kill("SIGKILL");
  await Promise.all(clients);
  assertEquals(run.unexpected, []);
  assert(run.acked >= run.target, `only ${run.acked} of ${run.target} ops were answered in time`);
  return { ops: run.ops, start };
}

function rand(): string {
  return Math.random().toString(36).slice(2, 8);
}

Deno.test("a node killed with SIGKILL under load keeps every acknowledged write (20 cycles)", async () => {
  const dir = await Deno.makeTempDir();
  let node = await startNode(dir);
  let state = new Map<string, string | null>();
  let totalAcked = 0;
  try {
    for (let cycle = 0; cycle < CYCLES; cycle++) {
      const { ops, start } = await loadAndKill(node);
      totalAcked += ops.filter((o) => o.end < Infinity).length;
      node = await startNode(dir);
      const found = await readAll(node.url);
      for (const k of found.keys()) assert(/^key\d+$/.test(k), `cycle ${cycle}: unknown key ${k}`);
      for (let i = 0; i < KEYS; i++) {
        const key = `key${i}`;
        const value = found.get(key) ?? null;
        const ok = allowed(key, ops, state.get(key) ?? null, start);
        assert(
          ok.includes(value),
          `cycle ${cycle}: ${key} is ${value}, allowed: ${JSON.stringify(ok)}`,
        );
      }
      state = found;
    }
    assert(totalAcked > CYCLES * 20);
    const snapshot = await Deno.stat(join(dir, "snapshot.json"));
    assert(snapshot.size > 0, "the node wrote snapshots between the kills");
  } finally {
    await node.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
