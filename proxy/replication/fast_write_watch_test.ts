// What a watcher sees of a fast write that its recovery round decided (docs/api.md, "Watching
// changes"): the nodes' change logs from fake acceptors, merged as proxy/watch/ does.
import { assert, assertEquals } from "@std/assert";
import { withExpiry } from "../../shared/expiry.ts";
import { HybridClock } from "../../shared/version.ts";
import { FakeAcceptors, proposerOver } from "../../tests/doubles/fake_acceptors.ts";
import { WatchMerge } from "../watch/watch_merge.ts";
import { quorumOf } from "./quorum.ts";

const IDS = ["n1", "n2", "n3"];
const R = {
  owners: IDS.map((id) => ({ id, url: `http://${id}.test` })),
  joining: [],
  key: "k",
  point: 7,
  epoch: 1,
};

/** `fastExpiryMarginMs` 0: a short TTL still takes the fast path, to reach its recovery. */
function setup() {
  const nodes = new FakeAcceptors(IDS);
  const rep = proposerOver(nodes, {
    fastExpiryMarginMs: 0,
    clock: new HybridClock("p0a1b2c3d4e5f"), // the real time: the TTL test waits for an expiry
  });
  return { nodes, rep };
}

/** The fast accept lands on n1 alone (answer lost); the recovery's quorum is n2, n3. */
function onlyN1StoresTheFastAccept(nodes: FakeAcceptors): void {
  nodes.fault("n1", "accept", "lost", 1);
  nodes.fault("n2", "accept", "down", 1);
  nodes.fault("n3", "accept", "down", 1);
  nodes.fault("n1", "read", "down", 1); // the read's repair sees only the base
  nodes.fault("n1", "prepare", "down", 1); // the recovery round's quorum: "older"
}

/** The events a watcher gets, each node's log read in turn, as `version=value`. */
function watched(nodes: FakeAcceptors): string[] {
  const positions = new Map(IDS.map((id) => [id, { boot: "x", low: 0, read: 0 }]));
  const merge = new WatchMerge(positions, quorumOf);
  merge.start("k", IDS, new Map(IDS.map((id) => [id, {}])));
  const out = [];
  for (const id of IDS) {
    for (const c of nodes.changes) if (c.node === id) out.push(...merge.observe(id, c.change));
  }
  return out.map((e) => `${e.version}=${e.value === null ? "DEL" : atob(e.value)}`);
}

Deno.test("a fast write its recovery finds only the base of shows its value at the fast version and at the answered one", async () => {
  const { nodes, rep } = setup();
  const put = (v: string) => ({ op: "put" as const, key: "k", value: btoa(v), contentType: "t" });
  const first = await rep.run(R, put("v1"));
  onlyN1StoresTheFastAccept(nodes);
  const second = await rep.run(R, put("v2"));
  assertEquals([second.status, rep.fast.older], [200, 1]);
  assert(second.version! > first.version + "0");
  const fast = first.version + "0";
  assertEquals(watched(nodes), [`${first.version}=v1`, `${fast}=v2`, `${second.version}=v2`]);
});

Deno.test("a fast DELETE whose base's TTL runs out before its recovery round is answered 204 and never shows the old value again", async () => {
  const { nodes, rep } = setup();
  const expiresAt = Date.now() + 1500; // room for the fast accept on a loaded machine
  const t = withExpiry("text/plain", expiresAt);
  const first = await rep.run(R, { op: "put", key: "k", value: btoa("v1"), contentType: t });
  onlyN1StoresTheFastAccept(nodes);
  nodes.beforePrepare = async () => {
    for (let i = 0; i < 500 && Date.now() <= expiresAt; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  };
  const del = await rep.run(R, { op: "delete", key: "k" });
  assert(Date.now() > expiresAt, "the TTL ran out before the recovery round");
  assertEquals([del.status, rep.fast.recovered, rep.fast.older], [204, 1, 1]);
  // The delete took effect while v1 was live, before its TTL ran out; the watcher sees it at the
  // fast version and at the answered one, and never v1 after it.
  const fast = first.version + "0";
  assertEquals(watched(nodes), [`${first.version}=v1`, `${fast}=DEL`, `${del.version}=DEL`]);
  for (const id of IDS) assertEquals(nodes.slot(id, "k").entry?.v, null);
});
