/**
 * Cases the chaos test may not reach, each with fake acceptors: owners that change between the
 * decided round and the next write, a restarted node's promise floor, two proxies alternating
 * writes on one key, and conditions whose fast outcome must match a full round's.
 */
import { assert, assertEquals } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import { formatVersion, HybridClock } from "../../shared/version.ts";
import type { BatchOp, BatchResult } from "../../shared/wire.ts";
import type { NodeRef } from "../nodes/node_client.ts";
import { FakeAcceptors } from "../../tests/doubles/fake_acceptors.ts";
import {
  type Call,
  checkHistory,
  type Operation,
  type Result,
} from "../../tests/helpers/linearizability.ts";
import { type Replicas, Replicated } from "./caspaxos.ts";
import { FailureDetector } from "./failure_detector.ts";
import { Hints } from "./hints.ts";

const NOW = 1_700_000_000_000;
const P1 = "p0a1b2c3d4e5f";
const P2 = "p9f8e7d6c5b4a";
const node = (id: string): NodeRef => ({ id, url: `http://${id}.test` });
const N123 = ["n1", "n2", "n3"].map(node);

/** Acceptors n1..n5 and proxies over them, with a history of what their clients saw. */
function world(proxies = [P1], clockOf = (_p: number) => () => NOW) {
  const nodes = new FakeAcceptors(["n1", "n2", "n3", "n4", "n5"]);
  const hints = proxies.map(() => new Hints());
  const reps = proxies.map((id, p) =>
    new Replicated({
      client: nodes,
      ingest: (n, _epoch, entries) => nodes.accept(n, 0, entries),
      clock: new HybridClock(id, clockOf(p)),
      detector: new FailureDetector({ probeMs: 1000 }),
      hints: hints[p]!,
      maxRounds: 4,
    })
  );
  const history: Operation[] = [];
  let tick = 0;
  let unique = 0;
  /** Runs `call` through proxy `p` on `r`; a 503 is an unknown outcome. */
  const run = async (p: number, r: Replicas, call: Call): Promise<BatchResult | undefined> => {
    const value = call.op === "put" ? `${call.value}#${unique++}` : undefined;
    const op: BatchOp = call.op === "get"
      ? { op: "get", key: r.key }
      : call.op === "delete"
      ? { op: "delete", key: r.key, ...(call.ifMatch ? { ifMatch: call.ifMatch } : {}) }
      : {
        op: "put",
        key: r.key,
        value: btoa(value!),
        ...(call.ifMatch ? { ifMatch: call.ifMatch } : {}),
        ...(call.ifNoneMatch ? { ifNoneMatch: "*" } : {}),
      };
    const start = tick++;
    const res = await reps[p]!.run(r, op).catch((err) => {
      if (!(err instanceof RingkvError)) throw err;
      return undefined;
    });
    const seen: Call = call.op === "put" ? { ...call, value: value! } : call;
    history.push({ key: r.key, client: p, call: seen, result: resultOf(res), start, end: tick++ });
    return res;
  };
  return { nodes, hints, reps, history, run };
}

function resultOf(res: BatchResult | undefined): Result {
  if (res === undefined) return { status: "unknown" };
  const version = res.version === undefined ? {} : { version: res.version };
  const value = res.value === undefined ? {} : { value: atob(res.value) };
  return { status: res.status as 200, ...version, ...value };
}

function at(owners: NodeRef[], epoch = 1, joining: NodeRef[] = []): Replicas {
  return { owners, joining, key: "k", point: 7, epoch };
}

/** The accepts sent at ballot `ver`, with the nodes that stored them. */
function acceptsAt(nodes: FakeAcceptors, ver: string): { sent: string[]; stored: string[] } {
  const sent = nodes.calls.filter((c) => c.kind === "accept" && c.ver === ver).map((c) => c.node);
  const stored = [...nodes.slots.entries()].filter(([, m]) => m.get("k")?.entry?.ver === ver)
    .map(([id]) => id);
  return { sent, stored };
}

const put = (value: string, extra: Partial<Call & { op: "put" }> = {}): Call => ({
  op: "put",
  value,
  ...extra,
});

Deno.test("owners change between the decided round and the next write: same epoch, new set: a full round, nothing sent at b + '0'", async () => {
  const { nodes, run, history } = world();
  const first = (await run(0, at(N123), put("a")))!;
  // A node takes n3's place without the epoch moving (a proxy's view must never do this; the
  // record is keyed on the replica set as well, so it holds even then).
  const moved = at([node("n1"), node("n2"), node("n4")]);
  await run(0, moved, put("b"));
  assertEquals(acceptsAt(nodes, first.version + "0").sent, []);
  assertEquals(checkHistory(history), null);
});

Deno.test("a map epoch that moves and comes back to the same owners: the record of the old epoch is not used", async () => {
  const { nodes, run, history } = world([P1, P2]);
  const first = (await run(0, at(N123, 1), put("a")))!;
  // The range moves to n4 and back while only p2 writes it: p1's record is of epoch 1.
  await run(1, at(N123, 2, [node("n4")]), put("b"));
  await run(1, at([node("n4"), node("n2"), node("n3")], 3), put("c"));
  await run(1, at([node("n4"), node("n2"), node("n3")], 4, [node("n1")]), put("d"));
  const back = (await run(0, at(N123, 5), put("e")))!;
  assertEquals(acceptsAt(nodes, first.version + "0").sent, []);
  assertEquals(back.status, 200);
  assertEquals((await run(0, at(N123, 5), { op: "get" }))?.version, back.version);
  assertEquals(checkHistory(history), null);
});

Deno.test("while a range moves (joining nodes) no write is fast, and each accepted entry is copied to the joining node", async () => {
  const { nodes, run, reps } = world();
  await run(0, at(N123), put("a"));
  const moving = at(N123, 2, [node("n4")]);
  const b = (await run(0, moving, put("b")))!;
  const c = (await run(0, moving, put("c")))!;
  assertEquals(reps[0]!.fast.decided, 0);
  assertEquals(nodes.slot("n4", "k").entry?.ver, c.version);
  assert(c.version! > b.version!);
  // Once the move ends (a new epoch, n4 an owner) the first write is a full round again.
  const after = at([node("n1"), node("n2"), node("n4")], 3);
  const prepares = nodes.count("prepare");
  await run(0, after, put("d"));
  assert(nodes.count("prepare") > prepares);
});

Deno.test("a restarted node whose promise floor moved past b + '0' refuses the fast write; a majority still decides it", async () => {
  const { nodes, run, history, hints } = world();
  const first = (await run(0, at(N123), put("a")))!;
  // What a restart leaves: the same entry, a promise floor (writer id 0) at its clock.
  const floor = formatVersion(NOW + 5_000, 0, "0");
  nodes.slot("n1", "k").promised = floor;
  const second = (await run(0, at(N123), put("b")))!;
  assertEquals(second.version, first.version + "0");
  assertEquals(acceptsAt(nodes, second.version!).stored, ["n2", "n3"]);
  // n1 stays behind on a decided entry until the hint's replay brings it level (hint_replay.ts).
  assertEquals(hints[0]!.take("n1", 10).map((e) => e.ver), [second.version]);
  assertEquals(checkHistory(history), null);
});

Deno.test("two restarted nodes refuse the fast write, the third took it: recovery answers consistently with what is chosen", async () => {
  for (const quorumHasIt of [true, false]) {
    const { nodes, run, history } = world();
    await run(0, at(N123), put("a"));
    for (const id of ["n1", "n2"]) {
      nodes.slot(id, "k").promised = formatVersion(NOW + 5_000, 0, "0");
    }
    if (!quorumHasIt) nodes.fault("n3", "prepare", "down");
    nodes.fault("n3", "read", "down");
    const res = await run(0, at(N123), put("b"));
    nodes.faults.clear();
    const final = (await run(0, at(N123), { op: "get" }))!;
    if (quorumHasIt) {
      assertEquals(res, undefined, "re-stamped: 503 'has taken effect'");
      assertEquals(atob(final.value!).startsWith("b#"), true);
    } else {
      assertEquals(res?.status, 200, "applied afresh under the recovery's ballot");
      assertEquals(final.version, res?.version);
    }
    assertEquals(checkHistory(history), null, `quorum has it: ${quorumHasIt}`);
  }
});

Deno.test("two proxies alternating writes on one key: a stale record's b + '0' is refused by every replica that took the other's round", async () => {
  const { nodes, run, history, reps } = world([P1, P2]);
  for (let i = 0; i < 6; i++) {
    const res = await run(i % 2, at(N123), put(`w${i}`));
    assert(res !== undefined && res.status < 300, JSON.stringify(res));
  }
  // Each proxy's record was stale every other write: refused everywhere, then a full round.
  const stale = nodes.calls.filter((c) => c.kind === "accept" && c.ver?.endsWith("0"));
  for (const c of stale) {
    const kept = [...nodes.slots.values()].some((m) => m.get("k")?.entry?.ver === c.ver);
    const answered = history.some((o) => "version" in o.result && o.result.version === c.ver);
    assertEquals(kept, answered, `${c.ver} stored only if it was the answer`);
  }
  assertEquals([reps[0]!.fast.refused, reps[1]!.fast.refused], [2, 2]);
  assertEquals(stale.length, 4 * 3, "four stale fast accepts, each sent to the 3 replicas");
  assertEquals(checkHistory(history), null);
});

Deno.test("a stale record meets a replica the other proxy's round missed: b + '0' is stored there only and never chosen", async () => {
  const { nodes, run, history, reps } = world([P1, P2]);
  const a = (await run(0, at(N123), put("a")))!;
  // p2's round misses n3 entirely (its prepare and accept), so n3 still holds a with its promise.
  nodes.fault("n3", "prepare", "down", 1);
  nodes.fault("n3", "accept", "down", 1);
  const b = (await run(1, at(N123), put("b", { ifMatch: a.version })))!;
  assertEquals(b.status, 200);
  // p1 still remembers a: its fast accept at a + '0' reaches n3 only.
  const res = await run(0, at(N123), put("c", { ifMatch: a.version }));
  const fast = a.version + "0";
  assertEquals(acceptsAt(nodes, fast).stored, ["n3"]);
  assertEquals(res, undefined, "a newer writer got in: 503, where a full round answers 412");
  // Nothing chooses it later: reads through both proxies, a settle, and the values agree.
  for (const p of [0, 1]) {
    const got = (await run(p, at(N123), { op: "get" }))!;
    assertEquals(got.version, b.version);
  }
  await reps[0]!.settle(at(N123)); // anti-entropy's round: the replicas end level on b's value
  const values = ["n1", "n2", "n3"].map((id) => atob(nodes.slot(id, "k").entry!.v!).split("#")[0]);
  assertEquals(values, ["b", "b", "b"]);
  assertEquals(checkHistory(history), null);
});

/** One conditional script, the same calls through a fast proxy and a full-round one. */
async function compare(script: (versions: string[]) => Call[], setupOther: boolean) {
  const out: (number | "unknown")[][] = [];
  for (const fastWrites of [true, false]) {
    const w = world([P1, P2]);
    const versions: string[] = [];
    const statuses: (number | "unknown")[] = [];
    if (!fastWrites) w.reps.splice(0, 1, noFast(w.nodes));
    for (const call of script(versions)) {
      const proxy = setupOther && call.op === "put" && call.value.startsWith("other") ? 1 : 0;
      const res = await w.run(proxy, at(N123), call);
      if (res?.version !== undefined && res.status < 300) versions.push(res.version);
      statuses.push(res?.status ?? "unknown");
    }
    assertEquals(checkHistory(w.history), null);
    out.push(statuses);
  }
  assertEquals(out[0], out[1]);
  return out[0]!;
}

function noFast(nodes: FakeAcceptors): Replicated {
  return new Replicated({
    client: nodes,
    ingest: () => Promise.resolve(),
    clock: new HybridClock(P1, () => NOW),
    detector: new FailureDetector({ probeMs: 1000 }),
    hints: new Hints(),
    maxRounds: 4,
    fastWrites: false,
  });
}

Deno.test("If-Match, If-None-Match and DELETE of an absent key answer on the fast path as a full round does, with another proxy writing in between", async () => {
  const statuses = await compare(() => [
    put("a"),
    put("other1"), // p2 writes: p1's record is stale
    put("b", { ifMatch: "stale-version" }), // fails on the record and on the quorum
    { op: "delete" },
    { op: "delete" }, // absent: 404 from a quorum, never from the record
    put("c", { ifNoneMatch: true }),
    put("other2"),
    put("d", { ifNoneMatch: true }), // live since p2's write: 412 (the record says live too)
    { op: "delete", ifMatch: "x" },
    put("e", {}),
    { op: "delete" },
    put("other3"),
    // p1's record is a tombstone, p2 made it live: If-None-Match must fail (412).
    put("f", { ifNoneMatch: true }),
  ], true);
  assertEquals(statuses, [201, 200, 412, 204, 404, 201, 200, 412, 412, 200, 204, 201, 412]);
});

Deno.test("If-Match on the version the other proxy wrote, after this proxy's record: the stale fast accept is refused and the full round applies it", async () => {
  const { run, history, reps } = world([P1, P2]);
  await run(0, at(N123), put("a"));
  const other = (await run(1, at(N123), put("b")))!;
  const res = (await run(0, at(N123), put("c", { ifMatch: other.version })))!;
  assertEquals(res.status, 200);
  assertEquals(reps[0]!.fast.condition, 1, "the record's version is not the If-Match: full round");
  const again = (await run(0, at(N123), put("d", { ifMatch: res.version })))!;
  assertEquals([again.status, again.version], [200, res.version + "0"]);
  assertEquals(checkHistory(history), null);
});
