/**
 * A round reads TTLs on the wall clock it was given (`ReplicatedDeps.wallNow`), not the host's:
 * a proxy whose clock is behind the nodes' refuses the reaper's delete until its own clock
 * passed the expiry (the node's listing holds back a proxy whose clock is ahead:
 * node/engine/store.ts `expiredKeys`).
 */
import { assert, assertEquals } from "@std/assert";
import { withExpiry } from "../../shared/expiry.ts";
import { formatVersion } from "../../shared/version.ts";
import type { BatchOp } from "../../shared/wire.ts";
import { FAKE_NOW, FakeAcceptors, proposerOver } from "../../tests/doubles/fake_acceptors.ts";
import type { Replicas } from "./caspaxos.ts";

const IDS = ["n1", "n2", "n3"];
const OWNERS = IDS.map((id) => ({ id, url: `http://${id}.test` }));
const R: Replicas = { owners: OWNERS, joining: [], key: "k", point: 7, epoch: 1 };
const EXPIRES_AT = FAKE_NOW + 10_000;

function setup(fastWrites: boolean) {
  const nodes = new FakeAcceptors(IDS);
  let wall = FAKE_NOW;
  const rep = proposerOver(nodes, { fastWrites, wallNow: () => wall });
  return { nodes, rep, setWall: (ms: number) => wall = ms };
}

const putWithTtl: BatchOp = {
  op: "put",
  key: "k",
  value: btoa("v"),
  contentType: withExpiry("text/plain", EXPIRES_AT),
};

for (const fastWrites of [true, false]) {
  Deno.test(`the reaper's delete is refused until this proxy's clock passed the expiry (fast writes ${fastWrites ? "on" : "off"})`, async () => {
    const { nodes, rep, setWall } = setup(fastWrites);
    const written = await rep.run(R, putWithTtl);
    assertEquals(written.status, 201);
    const expire: BatchOp = { op: "delete", key: "k", expire: true, ifMatch: written.version };
    setWall(EXPIRES_AT - 1);
    assertEquals((await rep.run(R, expire)).status, 412, "not expired on this proxy's clock yet");
    assert(IDS.every((id) => nodes.slot(id, "k").entry?.v === btoa("v")), "the value stays");
    setWall(EXPIRES_AT + 1);
    const reaped = await rep.run(R, expire);
    assertEquals(reaped.status, 204);
    const tombstones = IDS.filter((id) => {
      const e = nodes.slot(id, "k").entry;
      return e?.v === null && e.ver === reaped.version;
    });
    assert(tombstones.length >= 2, `a tombstone on a majority: ${tombstones}`);
  });
}

Deno.test("a conditional write reads an expired key as absent by this proxy's clock", async () => {
  const { rep, setWall } = setup(false);
  const written = await rep.run(R, putWithTtl);
  setWall(EXPIRES_AT - 1);
  const live = await rep.run(R, { ...putWithTtl, ifMatch: written.version });
  assertEquals(live.status, 200, "If-Match on a live key");
  setWall(EXPIRES_AT + 1);
  const gone = await rep.run(R, { ...putWithTtl, ifMatch: live.version });
  assertEquals(gone.status, 412, "If-Match on an expired key");
  assertEquals((await rep.run(R, { ...putWithTtl, ifNoneMatch: "*" })).status, 201);
});

Deno.test("the fast path's expiry margin is measured on this proxy's clock", async () => {
  const { rep, setWall } = setup(true);
  await rep.run(R, { ...putWithTtl, contentType: withExpiry("text/plain", FAKE_NOW + 120_000) });
  setWall(FAKE_NOW); // 120 s left: past the 60 s margin, the next write takes one round trip
  assertEquals((await rep.run(R, putWithTtl)).status, 200);
  assertEquals(rep.fast.expiring, 0);
  setWall(EXPIRES_AT - 5_000); // 5 s left on the key's TTL: a full round
  assertEquals((await rep.run(R, putWithTtl)).status, 200);
  assertEquals(rep.fast.expiring, 1);
});

Deno.test("a fast write's recovery reads the quorum's TTL entry on this proxy's clock", async () => {
  const { nodes, rep } = setup(true); // the wall stays at FAKE_NOW: the TTL entry below is live
  await rep.run(R, { ...putWithTtl, contentType: "text/plain" });
  // The quorum the recovery reads (n1, n2) holds an entry older than the recorded base, with a
  // TTL: the recovery decides the write again on it (fast_write.ts recoveryPlan, "older").
  const older = { k: "k", v: btoa("old"), t: putWithTtl.contentType, ver: "0", h: 7 };
  for (const id of ["n1", "n2"]) nodes.slot(id, "k").entry = { ...older };
  nodes.fault("n1", "accept", "down", 1);
  nodes.fault("n2", "accept", "down", 1);
  nodes.fault("n3", "prepare", "down");
  nodes.fault("n3", "read", "down");
  const again = await rep.run(R, { ...putWithTtl, contentType: "text/plain" });
  assertEquals(rep.fast.older, 1, "the recovery's 'older' case ran");
  assertEquals(again.status, 200, "the key was live on this proxy's clock: replaced, not created");
});

Deno.test("a reaper's delete that finds the key deleted on a write quorum levels the replica that lags by ingest, without a new version", async () => {
  const nodes = new FakeAcceptors(IDS);
  let wall = FAKE_NOW;
  const ingested: { node: string; ver: string }[] = [];
  const rep = proposerOver(nodes, {
    fastWrites: false,
    wallNow: () => wall,
    ingest: (node, _epoch, entries) => {
      for (const e of entries) ingested.push({ node: node.id, ver: e.ver });
      return Promise.resolve();
    },
  });
  const written = await rep.run(R, putWithTtl);
  wall = EXPIRES_AT + 1;
  // Another proxy's reaper deleted it on n1 and n2; n3 has not got the tombstone yet, and still
  // lists the key to every proxy's sweep.
  const tombstone = { k: "k", v: null, ver: formatVersion(EXPIRES_AT + 1, 0, "pOther"), h: 7 };
  for (const id of ["n1", "n2"]) nodes.slot(id, "k").entry = { ...tombstone };
  nodes.fault("n2", "prepare", "down"); // the prepare's quorum: n1 (tombstone), n3 (value)
  const accepts = nodes.count("accept");
  const expire: BatchOp = { op: "delete", key: "k", expire: true, ifMatch: written.version };
  assertEquals((await rep.run(R, expire)).status, 412);
  assertEquals(nodes.count("accept"), accepts, "no tombstone re-stamped under a new version");
  assertEquals(ingested, [{ node: "n3", ver: tombstone.ver }], "n2 was read: a quorum holds it");
});

Deno.test("a reaper's delete that finds a tombstone no quorum is known to hold re-stamps it, so the replicas agree", async () => {
  const { nodes, rep, setWall } = setup(false);
  const written = await rep.run(R, putWithTtl);
  setWall(EXPIRES_AT + 1);
  // A reaper's tombstone reached n1 only (another proposer got in at n2 and n3).
  const tombstone = { k: "k", v: null, ver: formatVersion(EXPIRES_AT + 1, 0, "pOther"), h: 7 };
  nodes.slot("n1", "k").entry = { ...tombstone };
  nodes.fault("n3", "prepare", "down", 1); // the prepare's quorum: n1 (tombstone) and n2 (value)
  const expire: BatchOp = { op: "delete", key: "k", expire: true, ifMatch: written.version };
  assertEquals((await rep.run(R, expire)).status, 412);
  const held = IDS.map((id) => nodes.slot(id, "k").entry);
  const restamped = held.filter((e) => e?.v === null && e.ver > tombstone.ver);
  assert(restamped.length >= 2, `a tombstone decided on a majority: ${JSON.stringify(held)}`);
});
