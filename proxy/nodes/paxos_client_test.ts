import { assertEquals, assertMatch, assertRejects } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import { PaxosClient } from "./paxos_client.ts";
import type { HealthEvent } from "../replication/failure_detector.ts";
import { secretProof } from "../../shared/node_proof.ts";

const NODE = { id: "n1", url: "http://n1.test" };
const GOOD = { k: "a", v: "dg==", t: "text/plain", ver: "01a24bc5c827-0000-n1", h: 7 };

/** A client whose node answers every call with `body` (200, JSON). */
function clientAnswering(body: unknown): PaxosClient {
  const fetch = () => Promise.resolve(Response.json(body));
  return new PaxosClient({ fetch, timeoutMs: 1000 });
}

Deno.test("PaxosClient passes well-formed read and prepare entries, tombstones and absent keys", async () => {
  const tomb = { ...GOOD, k: "b", v: null, t: "" };
  const read = await clientAnswering({ entries: [GOOD, tomb, null] }).read(NODE, 1, [
    "a",
    "b",
    "c",
  ]);
  assertEquals(read, [GOOD, tomb, null]);
  const votes = [{ ok: true, entry: GOOD }, { ok: false, promised: GOOD.ver, entry: null }];
  const prepared = await clientAnswering({ results: votes }).prepare(NODE, 1, [
    { key: "a", ballot: GOOD.ver },
    { key: "b", ballot: GOOD.ver },
  ]);
  assertEquals(prepared, votes);
});

Deno.test("PaxosClient answers 502 for a read or prepare entry without a valid version, key or value", async () => {
  const bad = [
    { ...GOOD, ver: undefined },
    { ...GOOD, ver: "undefined" },
    { ...GOOD, k: 5 },
    { ...GOOD, v: 12 },
    "entry",
  ];
  for (const entry of bad) {
    const read = clientAnswering({ entries: [null, entry] }).read(NODE, 1, ["x", "a"]);
    const err = await assertRejects(() => read, RingkvError, "entry 1 is not");
    assertEquals(err.code, "bad_gateway", JSON.stringify(entry));
    const prepare = clientAnswering({ results: [{ ok: true, entry }] })
      .prepare(NODE, 1, [{ key: "a", ballot: GOOD.ver }]);
    const err2 = await assertRejects(() => prepare, RingkvError, "/internal/prepare");
    assertEquals(err2.code, "bad_gateway", JSON.stringify(entry));
  }
});

Deno.test("PaxosClient.read() with a value budget takes an answer that stops early, never an empty or a longer one", async () => {
  const keys = ["a", "b", "c"];
  assertEquals(await clientAnswering({ entries: [GOOD] }).read(NODE, 1, keys, 100), [GOOD]);
  const broken = [
    [{ entries: [] }, 100],
    [{ entries: [GOOD, null, null, null] }, 100],
    [{ entries: [GOOD] }, undefined], // a short answer to a call without a budget
  ] as const;
  for (const [body, budget] of broken) {
    const read = clientAnswering(body).read(NODE, 1, keys, budget);
    const err = await assertRejects(() => read, RingkvError, "expected 3 results");
    assertEquals(err.code, "bad_gateway", JSON.stringify([body, budget]));
  }
});

Deno.test("PaxosClient.probe() reports the node's clock offset from this proxy's at the call's midpoint", async () => {
  const events: HealthEvent[] = [];
  let mono = 0;
  const fetch = () => {
    mono += 40; // a call of 40 ms: the node read its clock 20 ms after it was sent
    return Promise.resolve(Response.json({ status: "ok", now: 1_700_000_000_520 }));
  };
  const client = new PaxosClient({
    fetch,
    timeoutMs: 1000,
    report: (e) => events.push(e),
    now: () => mono,
    wall: () => 1_700_000_000_000,
  });
  await client.probe(NODE);
  const probe = events.find((e) => e.kind === "answered" && e.clockOffsetMs !== undefined);
  assertEquals(probe?.kind === "answered" ? probe.clockOffsetMs : undefined, 500);
});

Deno.test("PaxosClient.probe() reports the node's promiseFloor, null when it gives none or no version", async () => {
  for (
    const [given, expected] of [["018bcfe58b28-0000-0", "018bcfe58b28-0000-0"], [undefined, null], [
      "x",
      null,
    ]]
  ) {
    const events: HealthEvent[] = [];
    const fetch = () => Promise.resolve(Response.json({ status: "ok", promiseFloor: given }));
    const client = new PaxosClient({ fetch, timeoutMs: 1000, report: (e) => events.push(e) });
    await client.probe(NODE);
    const probe = events.find((e) => e.kind === "answered" && e.promiseFloor !== undefined);
    assertEquals(probe?.kind === "answered" ? probe.promiseFloor : "none", expected);
  }
});

Deno.test("PaxosClient: a node that answers 401 to the cluster secret is a 502 naming it, reported as refusing, never as answered", async () => {
  const events: HealthEvent[] = [];
  const error = {
    code: "unauthorized",
    message: "Cannot use the node: the cluster secret sent is wrong",
  };
  const fetch = () => Promise.resolve(Response.json({ error }, { status: 401 }));
  const client = new PaxosClient({ fetch, timeoutMs: 1000, report: (e) => events.push(e) });
  const err = await assertRejects(() => client.read(NODE, 1, ["a"]), RingkvError);
  assertEquals(err.code, "bad_gateway");
  assertMatch(err.message, /^Node n1 at http:\/\/n1\.test refused this proxy's cluster secret/);
  assertMatch(err.message, /the cluster secret sent is wrong/);
  assertEquals(events.map((e) => e.kind), ["refused"]);
});

Deno.test("PaxosClient.probe() challenges the node and reports it refusing when it proves another cluster secret, up when it proves this one", async () => {
  for (const [nodeSecret, kind] of [["another", "refused"], ["s3cret", "answered"]] as const) {
    const events: HealthEvent[] = [];
    const fetch = async (url: string) => {
      const challenge = new URL(url).searchParams.get("challenge") ?? "";
      const proof = challenge === "" ? undefined : await secretProof(nodeSecret, challenge);
      return Response.json({ status: "ok", id: "n1", proof });
    };
    const client = new PaxosClient({
      fetch,
      timeoutMs: 1000,
      clusterSecret: "s3cret",
      report: (e) => events.push(e),
    });
    await client.probe(NODE);
    assertEquals(events.map((e) => e.kind), [kind], nodeSecret);
  }
});
