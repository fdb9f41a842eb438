import { assert, assertEquals, assertMatch, assertRejects } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import { withExpiry } from "../../shared/expiry.ts";
import { formatVersion, HybridClock, parseVersion } from "../../shared/version.ts";
import type { BatchOp, BatchResult } from "../../shared/wire.ts";
import { StaleEpochError } from "../nodes/node_client.ts";
import { FAKE_NOW, FakeAcceptors, proposerOver } from "../../tests/doubles/fake_acceptors.ts";
import { type Replicas, Replicated } from "./caspaxos.ts";
import { FailureDetector } from "./failure_detector.ts";
import { Hints } from "./hints.ts";
import { type AcceptAnswer, neverStored, nowhere, recoveryCase } from "./fast_write.ts";
import {
  type Call,
  checkHistory,
  type Operation,
  type Result,
} from "../../tests/helpers/linearizability.ts";

const ID = "p0a1b2c3d4e5f"; // a proxy id as wiring.ts makes them: 13 characters
const IDS = ["n1", "n2", "n3"];
const OWNERS = IDS.map((id) => ({ id, url: `http://${id}.test` }));
const NOW = FAKE_NOW;
/** A ballot of another proposer, above all of this proxy's in these tests. */
const THEIRS = formatVersion(NOW + 60_000, 0, "pOther");

function setup(fastWrites = true) {
  const nodes = new FakeAcceptors(IDS);
  const hints = new Hints();
  const rep = proposerOver(nodes, { hints, fastWrites });
  return { nodes, hints, rep };
}

function replicas(epoch = 1, owners = OWNERS): Replicas {
  return { owners, joining: [], key: "k", point: 7, epoch };
}

function put(value: string, extra: Partial<BatchOp> = {}): BatchOp {
  return { op: "put", key: "k", value: btoa(value), contentType: "text/plain", ...extra };
}

function versionsOf(nodes: FakeAcceptors): (string | undefined)[] {
  return IDS.map((id) => nodes.slot(id, "k").entry?.ver);
}

Deno.test("a proxy's next write of a key it decided last is one accept at b + '0', no prepare", async () => {
  const { nodes, rep } = setup();
  const first = await rep.run(replicas(), put("v1"));
  assertEquals(first.status, 201);
  assertEquals(nodes.count("prepare"), 3);
  const second = await rep.run(replicas(), put("v2"));
  assertEquals(second, { status: 200, version: first.version + "0" });
  const del = await rep.run(replicas(), { op: "delete", key: "k" });
  assertEquals(del, { status: 204, version: first.version + "00" });
  assertEquals(nodes.count("prepare"), 3, "no prepare after the first write");
  assertEquals(versionsOf(nodes), [del.version, del.version, del.version]);
  assertEquals(rep.fast.decided, 2);
});

Deno.test("a fast accept taken by a majority succeeds; the replica that missed it gets a hint", async () => {
  const { nodes, hints, rep } = setup();
  const first = await rep.run(replicas(), put("v1"));
  nodes.fault("n3", "accept", "down", 1);
  const second = await rep.run(replicas(), put("v2"));
  assertEquals(second, { status: 200, version: first.version + "0" });
  assertEquals(hints.take("n3", 10).map((e) => e.ver), [second.version]);
  assert(rep.remembers("k"));
});

Deno.test("a fast accept refused by every replica is on none: the write runs as a full round", async () => {
  const { nodes, hints, rep } = setup();
  const first = await rep.run(replicas(), put("v1"));
  for (const id of IDS) nodes.slot(id, "k").promised = THEIRS; // another proposer prepared
  const second = await rep.run(replicas(), put("v2", { ifMatch: first.version }));
  assertEquals(second.status, 200);
  assert(second.version! > THEIRS, `${second.version} must beat the promise`);
  assertEquals([rep.fast.refused, rep.fast.recovered], [1, 0]);
  assertEquals(IDS.map((id) => hints.count(id)), [0, 0, 0]);
});

Deno.test("a fast accept on a minority that a read quorum finds newest is sent again and answered under its version", async () => {
  const { nodes, rep } = setup();
  const first = await rep.run(replicas(), put("v1"));
  const fast = first.version + "0";
  nodes.fault("n1", "accept", "down", 1); // nothing stored
  nodes.fault("n2", "accept", "lost", 1); // stored, its answer lost
  nodes.fault("n3", "accept", "down", 1);
  nodes.fault("n3", "read", "down", 1);
  const prepares = nodes.count("prepare");
  const second = await rep.run(replicas(), put("v2"));
  assertEquals(second, { status: 200, version: fast });
  assertEquals(versionsOf(nodes).slice(0, 2), [fast, fast]);
  assertEquals([nodes.count("prepare"), rep.restamps], [prepares, 0], "no recovery round");
  assert(!rep.remembers("k"), "a recovered key takes the full round next");
});

Deno.test("recovery that finds the fast accept newest on part of its quorum re-stamps it and answers that it took effect, without a version", async () => {
  const { nodes, rep } = setup();
  const first = await rep.run(replicas(), put("v1"));
  nodes.slot("n1", "k").promised = THEIRS; // n1 refuses the fast accept and its resending
  nodes.fault("n2", "accept", "lost", 1); // n2 stores it, its answer is lost
  nodes.fault("n3", "accept", "down");
  nodes.fault("n3", "prepare", "down");
  nodes.fault("n3", "read", "down");
  const err = await assertRejects(
    () => rep.run(replicas(), put("v2", { ifMatch: first.version })),
    RingkvError,
  );
  // A reader may have seen it under the fast version, and its client's If-Match on that one
  // would fail: neither version is answered (a 503 that says it took effect).
  assertEquals(err.code, "node_unavailable");
  assertMatch(err.message, /finished it under version .*has taken effect/);
  const [n1, n2] = [nodes.slot("n1", "k").entry!, nodes.slot("n2", "k").entry!];
  assertEquals([n1.ver, atob(n1.v!)], [n2.ver, "v2"]);
  assert(n1.ver > THEIRS);
  assertEquals([rep.fast.recovered, rep.fast.ours, rep.restamps], [1, 1, 1]);
  assert(!rep.remembers("k"), "a recovered key takes the full round next");
});

Deno.test("recovery that finds the fast accept on its whole quorum answers without another accept", async () => {
  const { nodes, rep } = setup();
  const first = await rep.run(replicas(), put("v1"));
  nodes.fault("n1", "accept", "lost", 1);
  nodes.fault("n2", "accept", "lost", 1);
  nodes.fault("n3", "accept", "down");
  nodes.fault("n3", "prepare", "down");
  const accepts = nodes.count("accept");
  const second = await rep.run(replicas(), put("v2"));
  assertEquals(second, { status: 200, version: first.version + "0" });
  assertEquals(nodes.count("accept"), accepts + 3, "only the fast accept");
  assertEquals(rep.restamps, 0);
});

Deno.test("recovery that finds only the base entry accepts the fast decision re-stamped at its ballot, answered at it", async () => {
  const { nodes, rep } = setup();
  const first = await rep.run(replicas(), put("v1"));
  nodes.slot("n1", "k").promised = THEIRS;
  nodes.fault("n2", "accept", "down", 1); // no answer, nothing stored
  nodes.fault("n3", "prepare", "down"); // n3 stored the fast accept; the quorum is n1, n2
  nodes.fault("n3", "read", "down");
  const second = await rep.run(replicas(), put("v2", { ifMatch: first.version }));
  assertEquals(second.status, 200);
  assert(second.version! > THEIRS, "a new version, not the fast one");
  // The recovery's accept went to every replica: n3's fast entry is gone.
  assertEquals(versionsOf(nodes), [second.version, second.version, second.version]);
  assertEquals(IDS.map((id) => atob(nodes.slot(id, "k").entry!.v!)), ["v2", "v2", "v2"]);
  assertEquals(rep.restamps, 0);
});

Deno.test("recovery that finds a newer writer's entry answers 'may have taken effect'", async () => {
  const { nodes, rep } = setup();
  await rep.run(replicas(), put("v1"));
  nodes.slot("n1", "k").entry = { k: "k", v: btoa("theirs"), ver: THEIRS, h: 7 };
  nodes.fault("n2", "accept", "down", 1);
  nodes.fault("n3", "prepare", "down");
  const err = await assertRejects(() => rep.run(replicas(), put("v2")), RingkvError);
  assertEquals(err.code, "node_unavailable");
  assertMatch(err.message, /another writer's entry \(version .*\) is newer.*may have taken effect/);
  assert(!rep.remembers("k"));
});

Deno.test("a fast accept without answers from a majority, and no quorum for the recovery: 'may have taken effect'", async () => {
  const { nodes, rep } = setup();
  await rep.run(replicas(), put("v1"));
  for (const id of ["n2", "n3"]) {
    nodes.fault(id, "accept", "down");
    nodes.fault(id, "prepare", "down");
  }
  const err = await assertRejects(() => rep.run(replicas(), put("v2")), RingkvError);
  assertMatch(err.message, /recovery round's prepare failed|1 of 3 replicas answered when/);
  assertMatch(err.message, /may have taken effect/);
  assert(!rep.remembers("k"));
  // Back up: the next write is a full round, and finds the fast entry (n1's) as newest.
  nodes.faults.clear();
  const prepares = nodes.count("prepare");
  assertEquals((await rep.run(replicas(), put("v3"))).status, 200);
  assert(nodes.count("prepare") > prepares);
});

/**
 * {@link setup} with a failure detector the test steps, and `prepared(value)`: whether a PUT of
 * `value` took a prepare (a full round) rather than one accept.
 */
function probedSetup() {
  const { nodes, hints } = setup();
  const detector = new FailureDetector({ probeMs: 1000 });
  const rep = proposerOver(nodes, { detector, hints });
  const prepared = async (value: string) => {
    const before = nodes.count("prepare");
    await rep.run(replicas(), put(value));
    return nodes.count("prepare") > before;
  };
  return { nodes, hints, detector, rep, prepared };
}

Deno.test("a proxy takes the full round while an owner is not up or has hints pending in its view", async () => {
  const { hints, detector, rep, prepared } = probedSetup();
  await rep.run(replicas(), put("v1"));
  detector.step({ kind: "failed", node: "n3", at: NOW });
  assertEquals([await prepared("v2"), rep.fast.lagging], [true, 1]);
  // Its probe answers, with its restart floor (below the record: no `floored`).
  const floor = formatVersion(NOW - 60_000, 0, "0");
  detector.step({ kind: "answered", node: "n3", at: NOW, promiseFloor: floor });
  hints.take("n3", 10); // the full round left n3 a hint: replayed
  hints.add("n2", { k: "other", v: "", ver: THEIRS, h: 1 });
  assertEquals([await prepared("v3"), rep.fast.lagging], [true, 2]);
  hints.take("n2", 10);
  assertEquals([await prepared("v4"), rep.fast.lagging, rep.fast.decided], [false, 2, 1]);
});

Deno.test("a write on a key decided before two owners restarted is a full round's 200, not a recovery's 503 (restart floors)", async () => {
  const { nodes, hints } = setup();
  const detector = new FailureDetector({ probeMs: 1000 });
  const rep = proposerOver(nodes, { detector, hints });
  const first = await rep.run(replicas(), put("v1"));
  // n1, then n2 restart on their data, one after the other: each comes back with its saved
  // watermark as every key's promise (node/paxos/acceptor.ts), above the key's entry, and
  // says so at its next probe. Their hints were replayed: in this proxy's view all is level.
  const floors = { n1: formatVersion(NOW + 5_000, 0, "0"), n2: formatVersion(NOW + 9_000, 0, "0") };
  for (const [id, floor] of Object.entries(floors)) {
    detector.step({ kind: "failed", node: id, at: NOW });
    const slot = nodes.slot(id, "k");
    if (slot.promised === undefined || slot.promised < floor) slot.promised = floor;
    detector.step({ kind: "answered", node: id, at: NOW, avoidWrites: false, promiseFloor: floor });
  }
  assertEquals(IDS.map((id) => hints.count(id)), [0, 0, 0]);
  // A fast accept at first.version + "0" is refused by n1 and n2 for good and taken by n3
  // alone: its recovery finds it newest and re-stamps it, a 503 while two replicas were up.
  const second = await rep.run(replicas(), put("v2"));
  assertEquals(second.status, 200);
  assert(second.version! > floors.n2, `${second.version} is a fresh ballot`);
  assertEquals([rep.fast.floored, rep.fast.recovered, rep.fast.restamped], [1, 0, 0]);
  assertEquals(IDS.map((id) => atob(nodes.slot(id, "k").entry!.v!)), ["v2", "v2", "v2"]);
  // Decided above both floors: the next write is one accept again.
  const third = await rep.run(replicas(), put("v3"));
  assertEquals([third.version, rep.fast.decided], [second.version + "0", 1]);
  assert(first.version! < floors.n1);
});

Deno.test("an owner a call failed on counts as floored until a probe says its floor; one below the fast ballot lets it go", async () => {
  const { hints, detector, rep, prepared } = probedSetup();
  await rep.run(replicas(), put("v1"));
  detector.step({ kind: "failed", node: "n3", at: NOW });
  detector.step({ kind: "answered", node: "n3", at: NOW }); // a call's answer, not a probe
  assertEquals(detector.promiseFloor("n3"), "unsure");
  assertEquals([await prepared("v2"), rep.fast.floored], [true, 1]);
  hints.take("n3", 10);
  detector.step({
    kind: "answered",
    node: "n3",
    at: NOW,
    promiseFloor: formatVersion(NOW - 1, 0, "0"),
  });
  assertEquals([await prepared("v3"), rep.fast.floored, rep.fast.decided], [false, 1, 1]);
  detector.step({ kind: "answered", node: "n3", at: NOW, promiseFloor: null }); // says none
  assertEquals([await prepared("v4"), rep.fast.floored, rep.fast.decided], [false, 1, 2]);
});

Deno.test("a write after another proxy's that the owner it has hints for missed is a full round's 200, not a recovery's 503", async () => {
  const { nodes, hints, rep } = setup();
  const p2 = otherProxy(nodes);
  nodes.fault("n3", "accept", "down", 1); // n3 misses this proxy's write: a hint for it
  await rep.run(replicas(), put("a"));
  assertEquals(hints.count("n3"), 1);
  nodes.fault("n3", "prepare", "down"); // n3 does not hear from the other proxy at all
  nodes.fault("n3", "accept", "down");
  await p2.run(replicas(), put("b"));
  nodes.faults.clear();
  // A fast accept would be refused by n1, n2 (b is newer) and taken by n3 alone: a recovery
  // round that finds b newer, and a 503 for a write that can never take effect.
  const third = await rep.run(replicas(), put("c"));
  assertEquals([third.status, rep.fast.lagging, rep.fast.recovered], [200, 1, 0]);
  assertEquals(IDS.map((id) => atob(nodes.slot(id, "k").entry!.v!)), ["c", "c", "c"]);
});

/** A second proxy on the same nodes, its clock ahead of this one's. */
function otherProxy(nodes: FakeAcceptors): Replicated {
  return proposerOver(nodes, { clock: new HybridClock("p9f8e7d6c5b4a", () => NOW + 1000) });
}

/** This proxy decides "a"; the other writes "b" while n3 hears nothing from it. */
async function otherWrotePastN3(nodes: FakeAcceptors, rep: Replicated): Promise<void> {
  await rep.run(replicas(), put("a"));
  nodes.fault("n3", "prepare", "down");
  nodes.fault("n3", "accept", "down");
  await otherProxy(nodes).run(replicas(), put("b"));
  nodes.faults.clear();
}

Deno.test("a stale fast accept that n1, n2 refused and n3 never got is nowhere once n3 promises the recovery: a full round's 200", async () => {
  const { nodes, rep } = setup();
  await otherWrotePastN3(nodes, rep);
  nodes.fault("n3", "accept", "down", 1); // no answer, nothing stored
  const third = await rep.run(replicas(), put("c"));
  assertEquals([third.status, rep.fast.newer, rep.fast.nowhere, rep.fast.unconfirmed], [
    200,
    1,
    1,
    0,
  ]);
  assertEquals(IDS.map((id) => atob(nodes.slot(id, "k").entry!.v!)), ["c", "c", "c"]);
});

Deno.test("a stale fast accept whose lost answer hid that n3 stored it is not nowhere, as it is or overwritten since", async () => {
  for (const overwritten of [false, true]) {
    const { nodes, rep } = setup();
    await otherWrotePastN3(nodes, rep);
    nodes.fault("n3", "accept", "lost", 1); // stored, the answer lost
    if (overwritten) {
      // Another round re-stamps n3's fast entry before the recovery's prepare reaches it.
      nodes.beforePrepare = () => {
        const held = nodes.slot("n3", "k").entry!;
        if (held.ver.endsWith("0")) nodes.slot("n3", "k").entry = { ...held, ver: THEIRS };
        return Promise.resolve();
      };
    }
    const err = await assertRejects(() => rep.run(replicas(), put("c")), RingkvError);
    assertMatch(err.message, /another writer's entry .* is newer.*may have taken effect/);
    assertEquals([rep.fast.nowhere, rep.fast.unconfirmed], [0, 1], `overwritten: ${overwritten}`);
  }
});

Deno.test("a stale fast accept is not nowhere while an owner that did not answer it has not promised the recovery", async () => {
  const { nodes, rep } = setup();
  await otherWrotePastN3(nodes, rep);
  nodes.fault("n3", "accept", "down", 1);
  nodes.fault("n3", "prepare", "down"); // in every recovery round
  await assertRejects(() => rep.run(replicas(), put("c")), RingkvError);
  assertEquals([rep.fast.newer, rep.fast.nowhere, rep.fast.unconfirmed], [1, 0, 1]);
});

Deno.test("a fast accept every replica refused for a newer map is retried under it (stale epoch, no hints)", async () => {
  const { nodes, hints, rep } = setup();
  await rep.run(replicas(), put("v1"));
  for (const id of IDS) nodes.fault(id, "accept", "stale", 1);
  await assertRejects(() => rep.run(replicas(), put("v2")), StaleEpochError);
  assertEquals(IDS.map((id) => hints.count(id)), [0, 0, 0]);
});

Deno.test("a fast accept partly stored whose recovery meets a newer map answers 'may have taken effect', not a retry", async () => {
  const { nodes, rep } = setup();
  await rep.run(replicas(), put("v1"));
  nodes.fault("n1", "accept", "stale", 2); // the fast accept and its resending
  nodes.fault("n1", "prepare", "stale");
  nodes.slot("n3", "k").promised = THEIRS;
  const err = await assertRejects(() => rep.run(replicas(), put("v2")), RingkvError);
  assert(!(err instanceof StaleEpochError), "a retry could apply it twice");
  assertMatch(err.message, /may have taken effect/);
});

Deno.test("an accept cut short by a newer map says the write may have taken effect, not that no replica took it", async () => {
  const { nodes, rep } = setup(false);
  nodes.fault("n2", "accept", "stale");
  nodes.fault("n3", "accept", "stale");
  const err = await assertRejects(() => rep.run(replicas(), put("v1")), RingkvError);
  assert(!(err instanceof StaleEpochError), "n1 holds it: a retry could apply it twice");
  assertEquals(nodes.slot("n1", "k").entry?.v, btoa("v1"));
  assertEquals(err.code, "node_unavailable");
  assertMatch(
    err.message,
    /^Cannot confirm the put of key "k": the cluster map changed during its accept \(.*epoch 99.*\), so some replicas may hold it\. The write may have taken effect; retry it\.$/,
  );
});

Deno.test("after 19 fast writes the writer id is 32 characters long and the next write is a full round", async () => {
  const { nodes, rep } = setup();
  let last: BatchResult = await rep.run(replicas(), put("v0"));
  for (let i = 1; i <= 19; i++) last = await rep.run(replicas(), put(`v${i}`));
  assertEquals(parseVersion(last.version!).writer, ID.padEnd(32, "0"));
  assertEquals(nodes.count("prepare"), 3);
  const next = await rep.run(replicas(), put("v20"));
  assertEquals(nodes.count("prepare"), 6);
  assertEquals(parseVersion(next.version!).writer, ID);
  assertEquals((await rep.run(replicas(), put("v21"))).version, next.version + "0");
});

Deno.test("the record is used only under its epoch and replica set, and never while a range moves", async () => {
  const { nodes, rep } = setup();
  await rep.run(replicas(), put("v1"));
  await rep.run(replicas(2), put("v2"));
  assertEquals(nodes.count("prepare"), 6, "another epoch: a full round");
  const other = [OWNERS[1]!, OWNERS[0]!, OWNERS[2]!];
  await rep.run(replicas(2, other), put("v3"));
  assertEquals(nodes.count("prepare"), 9, "another replica set: a full round");
  const moving = { ...replicas(2, other), joining: [{ id: "n4", url: "http://n4.test" }] };
  await rep.run(moving, put("v4"));
  await rep.run(moving, put("v5"));
  assertEquals(nodes.count("prepare"), 15, "a moving range: full rounds, nothing remembered");
  assert(!rep.remembers("k"));
});

Deno.test("every other round on the key forgets the record: read write-back, settle, failed condition, forget()", async () => {
  const { nodes, rep } = setup();
  const write = async () => {
    await rep.run(replicas(), put("w"));
    assert(rep.remembers("k"));
  };
  await write();
  await rep.run(replicas(), { op: "get", key: "k" });
  assert(rep.remembers("k"), "a read whose replicas agree changes nothing");
  // A replica ahead: the read writes its entry back.
  nodes.slot("n1", "k").entry = { k: "k", v: btoa("theirs"), ver: THEIRS, h: 7 };
  await rep.run(replicas(), { op: "get", key: "k" });
  assert(!rep.remembers("k"), "read write-back");
  await write();
  await rep.settle(replicas());
  assert(!rep.remembers("k"), "settle");
  await write();
  const failed = await rep.run(replicas(), put("x", { ifNoneMatch: "*" }));
  assertEquals(failed.status, 412);
  assert(!rep.remembers("k"), "a condition that fails on the record is read from a quorum");
  await write();
  rep.forget("k"); // hint replay and anti-entropy (wiring.ts)
  assert(!rep.remembers("k"));
});

/** The conditional script of the next test, with expired and plain entries. */
function script(versionOf: () => string | undefined): (() => BatchOp)[] {
  const past = withExpiry("text/plain", NOW - 1); // expired when written
  return [
    () => put("a"),
    () => put("b", { ifMatch: versionOf() }),
    () => put("c", { ifMatch: formatVersion(NOW - 5, 0, "pOld") }),
    () => put("d", { ifNoneMatch: "*" }),
    () => ({ op: "delete", key: "k", ifMatch: formatVersion(NOW - 5, 0, "pOld") }),
    () => ({ op: "delete", key: "k" }),
    () => ({ op: "delete", key: "k" }),
    () => put("e", { ifMatch: versionOf() }),
    () => put("f", { ifNoneMatch: "*" }),
    () => put("g", { contentType: past }),
    () => put("h", { ifMatch: versionOf() }),
    () => put("i", { ifNoneMatch: "*" }),
    () => put("j", { ifNoneMatch: "*" }),
    () => ({ op: "delete", key: "k", ifMatch: versionOf() }),
  ];
}

Deno.test("conditional writes answer on the fast path exactly as on full rounds", async () => {
  const runs: { status: number; hasVersion: boolean }[][] = [];
  const prepares: number[] = [];
  for (const fastWrites of [true, false]) {
    const { nodes, rep } = setup(fastWrites);
    let version: string | undefined;
    const out = [];
    for (const make of script(() => version)) {
      const res = await rep.run(replicas(), make());
      if (res.version !== undefined && res.status < 300) version = res.version;
      out.push({ status: res.status, hasVersion: res.version !== undefined });
    }
    runs.push(out);
    prepares.push(nodes.count("prepare"));
  }
  assertEquals(runs[0], runs[1]);
  assertEquals(runs[0]!.map((r) => r.status), [
    201,
    200,
    412,
    412,
    412,
    204,
    404,
    412,
    201,
    200,
    412,
    201,
    412,
    204,
  ]);
  assert(prepares[0]! < prepares[1]!, `fast ${prepares[0]} vs full ${prepares[1]} prepares`);
});

Deno.test("nowhere() and recoveryCase() classify answers and the quorum's newest entry", () => {
  assert(nowhere(["refused", "refused", "refused"]));
  assert(!nowhere(["refused", "accepted", "refused"]));
  assert(!nowhere(["refused", "refused", "failed"]));
  const e = (ver: string) => ({ k: "k", v: null, ver, h: 1 });
  const fast = formatVersion(NOW, 1, ID) + "0";
  assertEquals(recoveryCase(null, fast), "older");
  assertEquals(recoveryCase(e(formatVersion(NOW, 1, ID)), fast), "older");
  assertEquals(recoveryCase(e(fast), fast), "ours");
  assertEquals(recoveryCase(e(fast + "0"), fast), "newer");
  assertEquals(recoveryCase(e(THEIRS), fast), "newer");
});

Deno.test("neverStored(): each owner refused the fast accept, or promised holding something older", () => {
  const e = (ver: string) => ({ k: "k", v: null, ver, h: 1 });
  const base = formatVersion(NOW, 1, ID);
  const fast = base + "0";
  const said = (...a: AcceptAnswer[]) => new Map(IDS.map((id, i) => [id, a[i]!]));
  const held = (...h: (string | null)[]) => new Map(IDS.map((id, i) => [id, h[i] && e(h[i]!)]));
  const never = (answers: Map<string, AcceptAnswer>, promised: Map<string, unknown>) =>
    neverStored(fast, IDS, answers, promised as Map<string, ReturnType<typeof e> | null>);
  assert(never(said("refused", "refused", "failed"), held(THEIRS, THEIRS, base)));
  assert(never(said("refused", "refused", "failed"), held(THEIRS, THEIRS, null)));
  assert(never(said("refused", "refused", "refused"), new Map()));
  assert(!never(said("refused", "refused", "accepted"), held(THEIRS, THEIRS, base)));
  assert(!never(said("refused", "refused", "stale"), held(THEIRS, THEIRS, base)));
  // A lost answer: it may have stored the fast accept, seen as such or under a newer entry.
  assert(!never(said("refused", "refused", "failed"), held(THEIRS, THEIRS, fast)));
  assert(!never(said("refused", "refused", "failed"), held(THEIRS, THEIRS, THEIRS)));
  assert(!never(said("refused", "refused", "failed"), new Map([["n1", null], ["n2", null]])));
  assert(!never(new Map([["n1", "refused"], ["n2", "refused"]]), held(THEIRS, THEIRS)));
});

Deno.test("a fast write its recovery re-stamped, then its client's If-Match: the history stays linearizable", async () => {
  const { nodes, rep } = setup();
  const history: Operation[] = [];
  const record = async (call: Call, op: BatchOp) => {
    const start = history.length * 10;
    const res = await rep.run(replicas(), op).catch((err) => {
      if (!(err instanceof RingkvError)) throw err;
      return undefined;
    });
    const result: Result = res === undefined
      ? { status: "unknown" }
      : { status: res.status as 200, ...(res.version ? { version: res.version } : {}) };
    history.push({ key: "k", client: 1, call, result, start, end: start + 5 });
    return res;
  };
  const first = await record({ op: "put", value: "v1" }, put("v1"));
  const fastVersion = first!.version + "0";
  nodes.slot("n1", "k").promised = THEIRS;
  nodes.fault("n2", "accept", "lost", 1);
  nodes.fault("n3", "accept", "down", 2); // the fast accept and its resending
  nodes.fault("n3", "prepare", "down", 1);
  nodes.fault("n3", "read", "down", 1);
  await record({ op: "put", value: "v2" }, put("v2"));
  assertEquals(rep.fast.ours, 1, "the recovery found its own entry on part of the quorum");
  // The client's If-Match on the version it would have been given fails: the value was re-stamped.
  const cas = await record(
    { op: "put", value: "v3", ifMatch: fastVersion },
    put("v3", { ifMatch: fastVersion }),
  );
  assertEquals(cas?.status, 412);
  assertEquals(checkHistory(history), null);
  // Had the write answered the fast version, the same history would not be linearizable.
  const answered = history.map((o, i) =>
    i === 1 ? { ...o, result: { status: 200 as const, version: fastVersion } } : o
  );
  assertEquals(checkHistory(answered), "k");
});

Deno.test("a key whose TTL ends within the margin takes the full round: a recovery could outlast it", async () => {
  const nodes = new FakeAcceptors(IDS);
  const make = (fastExpiryMarginMs?: number) => proposerOver(nodes, { fastExpiryMarginMs });
  const withTtl = (value: string, ms: number) =>
    put(value, { contentType: withExpiry("text/plain", Date.now() + ms) });
  const prepared = async (rep: Replicated, op: BatchOp) => {
    const before = nodes.count("prepare");
    assert((await rep.run(replicas(), op)).status < 300);
    return nodes.count("prepare") > before;
  };
  const byDefault = make(); // margin FAST_EXPIRY_MARGIN_MS (60 s)
  assert(await prepared(byDefault, withTtl("v1", 30_000)));
  assertEquals([await prepared(byDefault, put("v2")), byDefault.fast.expiring], [true, 1]);
  assertEquals(await prepared(byDefault, withTtl("v3", 120_000)), false, "a TTL far off: fast");
  const short = make(1_000);
  assert(await prepared(short, withTtl("v4", 30_000)));
  assertEquals([await prepared(short, put("v5")), short.fast.expiring], [false, 0]);
});

Deno.test("a write on a tombstone this proxy got decided 5 min ago or more takes the full round: its replicas may have purged it", async () => {
  const nodes = new FakeAcceptors(IDS);
  let wall = FAKE_NOW;
  const rep = proposerOver(nodes, { fastTombstoneAgeMs: 300_000, wallNow: () => wall });
  const prepares = async (op: BatchOp) => {
    const before = nodes.count("prepare");
    assert((await rep.run(replicas(), op)).status < 300);
    return nodes.count("prepare") > before;
  };
  await prepares(put("v1"));
  assertEquals(await prepares({ op: "delete", key: "k" }), false, "a delete of a value: fast");
  wall += 299_000;
  assertEquals(await prepares(put("v2")), false, "a tombstone decided 299 s ago: fast");
  await prepares({ op: "delete", key: "k" }); // decided now; its version is FAKE_NOW's (+ "0")
  wall += 10_000;
  assertEquals(await prepares(put("v3")), false, "by when it was decided, not by its version");
  await prepares({ op: "delete", key: "k" });
  wall += 301_000;
  assertEquals([await prepares(put("v4")), rep.fast.purgeable], [true, 1]);
  // A live record is never purged, however old.
  wall += 3_600_000;
  assertEquals([await prepares(put("v5")), rep.fast.purgeable], [false, 1]);
  // Without the rule (tests only), none.
  const keeping = proposerOver(nodes, { wallNow: () => wall });
  await keeping.run(replicas(), { op: "delete", key: "k" });
  wall += 3_600_000;
  const before = nodes.count("prepare");
  assert((await keeping.run(replicas(), put("v6"))).status < 300);
  assertEquals([nodes.count("prepare") > before, keeping.fast.purgeable], [false, 0]);
});

Deno.test("a write whose copy to the node taking its key over fails answers 503 'may have taken effect', never 'has'", async () => {
  const nodes = new FakeAcceptors(IDS);
  const refused = new RingkvError("stale_epoch", "the node holds the map of epoch 3");
  const rep = proposerOver(nodes, { ingest: () => Promise.reject(refused) });
  const moving = { ...replicas(2), joining: [{ id: "n4", url: "http://n4.test" }] };
  const err = await assertRejects(() => rep.run(moving, put("v1")), RingkvError);
  assertEquals(err.code, "node_unavailable");
  assertMatch(err.message, /a majority accepted version .* The write may have taken effect/);
  assert(!/has taken effect/.test(err.message), err.message);
});

Deno.test("a read whose write-back a newer writer refused at some replicas runs another round and answers, never 'may have taken effect'", async () => {
  const { nodes, rep } = setup(false);
  const v1 = {
    k: "k",
    v: btoa("v1"),
    t: "text/plain",
    ver: formatVersion(NOW - 1000, 0, ID),
    h: 7,
  };
  // n1 holds v1; n2 and n3 missed it and promised another proposer: the read's write-back of
  // v1 is refused, so the read runs a full round.
  nodes.slot("n1", "k").entry = { ...v1 };
  for (const id of ["n2", "n3"]) nodes.slot(id, "k").promised = THEIRS;
  // That round's accept meets a newer promise at n2 and n3 (a writer preparing in between):
  // the write-back lands on n1 alone.
  const later = formatVersion(NOW + 120_000, 0, "pOther");
  const accept = nodes.accept.bind(nodes);
  let raced = false;
  nodes.accept = (node, epoch, entries) => {
    if (!raced && entries[0]!.ver > THEIRS) {
      raced = true;
      for (const id of ["n2", "n3"]) nodes.slot(id, "k").promised = later;
    }
    return accept(node, epoch, entries);
  };
  const read = await rep.run(replicas(), { op: "get", key: "k" });
  assert(raced, "the race ran");
  assertEquals([read.status, read.value], [200, btoa("v1")]);
  // The round that answered wrote v1 back to a majority, above the newer promise.
  const held = IDS.map((id) => nodes.slot(id, "k").entry);
  assertEquals(held.map((e) => e?.v), [btoa("v1"), btoa("v1"), btoa("v1")]);
  assert(held.every((e) => e!.ver > later));
});
