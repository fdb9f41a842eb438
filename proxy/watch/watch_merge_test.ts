import { assertEquals } from "@std/assert";
import { quorumOf } from "../replication/quorum.ts";
import type { WireChange } from "../../node/http/change_routes.ts";
import { type Bases, majorityTop, type NodePos, WatchMerge } from "./watch_merge.ts";

const NODES = ["a", "b", "c"];

function positions(read = 0): Map<string, NodePos> {
  return new Map(NODES.map((id) => [id, { boot: "x", low: read, read }]));
}

function change(s: number, ver: string, v: string | null = ver): WireChange {
  return { s, k: "k", ver, prev: null, v, ...(v === null ? {} : { t: "text/plain" }) };
}

function versions(events: { version: string }[]): string[] {
  return events.map((e) => e.version);
}

function none(): Bases {
  return new Map(NODES.map((id) => [id, {}]));
}

Deno.test("WatchMerge sends a version once a majority logged it, older acknowledged ones first", () => {
  const m = new WatchMerge(positions(), quorumOf);
  m.start("k", NODES, none());
  // v1 was accepted by a and b, v2 by b and c; c is read first.
  assertEquals(versions(m.observe("c", change(1, "v2"))), []);
  assertEquals(versions(m.observe("a", change(1, "v1"))), ["v1"]);
  assertEquals(versions(m.observe("b", change(1, "v1"))), []);
  assertEquals(versions(m.observe("b", change(2, "v2"))), ["v2"]);
  // a late copy (a hint) is not sent again, and then the key is forgotten.
  assertEquals(versions(m.observe("a", change(2, "v2"))), []);
  m.forgetSettled();
  assertEquals(m.trackedKeys, 0);
});

Deno.test("WatchMerge with one replica sends each change as its owner logs it, deletes included", () => {
  const m = new WatchMerge(new Map([["a", { boot: "x", low: 0, read: 0 }]]), quorumOf);
  m.start("k", ["a"], new Map([["a", {}]]));
  const events = m.observe("a", change(1, "v1"));
  assertEquals(events, [{ key: "k", version: "v1", value: "v1", contentType: "text/plain" }]);
  assertEquals(m.observe("a", change(2, "v2", null)), [{ key: "k", version: "v2", value: null }]);
});

Deno.test("WatchMerge starts a key from its replicas' versions: older ones are not events", () => {
  const m = new WatchMerge(positions(5), quorumOf);
  m.start("k", NODES, new Map([["a", { k: "v3" }], ["b", { k: "v3" }], ["c", { k: "v1" }]]));
  assertEquals(versions(m.observe("c", change(6, "v3"))), []);
  assertEquals(versions(m.observe("a", change(6, "v4"))), []);
  assertEquals(versions(m.observe("b", change(6, "v4"))), ["v4"]);
});

Deno.test("WatchMerge resumes from its resume point: nothing waiting is lost, nothing sent is repeated", () => {
  const m = new WatchMerge(positions(), quorumOf);
  m.start("k", NODES, none());
  m.observe("c", change(1, "v2"));
  assertEquals(versions(m.observe("a", change(1, "v1"))), ["v1"]);
  m.observe("b", change(1, "v1"));
  const point = m.resumePoint();
  assertEquals(point.pending, new Map([["k", "v1"]]));
  assertEquals(point.nodes.c, { boot: "x", low: 0, read: 1 }); // v2 at c still waits
  // A new stream from the point: c's log is replayed from `low`, the others from `read`.
  const pos = new Map(
    Object.entries(point.nodes).map(([id, p]) => [id, { ...p, read: p.low, at: p.read }]),
  );
  const r = new WatchMerge(pos, quorumOf, point.pending);
  r.start("k", NODES, new Map([["a", { k: "v1" }], ["b", { k: "v1" }], ["c", { k: "v2" }]]));
  assertEquals(versions(r.observe("c", change(1, "v2"))), []);
  assertEquals(versions(r.observe("b", change(2, "v2"))), ["v2"]);
});

Deno.test("WatchMerge forgets the sequence numbers of a node whose log is gone", () => {
  const m = new WatchMerge(positions(), quorumOf);
  m.start("k", NODES, none());
  m.observe("c", change(3, "v1"));
  m.restarted("c", "y", 1);
  const point = m.resumePoint();
  assertEquals(point.nodes.c, { boot: "y", low: 0, read: 0 });
  assertEquals(point.pending, new Map([["k", null]]));
  assertEquals(versions(m.observe("a", change(1, "v1"))), ["v1"]);
});

Deno.test("WatchMerge.start() counts what a node that lost changes holds, but not as sent", () => {
  const m = new WatchMerge(positions(), quorumOf);
  // c restarted: read from its new log's start, where it holds v2, which this watch never read.
  m.restarted("c", "y", 1);
  assertEquals([...m.lost], ["c"]);
  m.start("k", NODES, new Map([["a", { k: "v1" }], ["b", { k: "v1" }], ["c", { k: "v2" }]]));
  // c's answer alone did not send v2; with b's copy a majority holds it, but c may have lost an
  // acknowledged version between (its majority c and a): v2 waits for a's copy too.
  assertEquals(versions(m.observe("b", change(1, "v2"))), []);
  assertEquals(versions(m.observe("a", change(1, "v2"))), ["v2"]);
  // Past what c held when it lost changes, c counts again: c and a make v3's majority.
  assertEquals(versions(m.observe("c", { ...change(1, "v3"), prev: "v2" })), []);
  assertEquals(versions(m.observe("a", { ...change(2, "v3"), prev: "v2" })), ["v3"]);
});

Deno.test("WatchMerge: a node that lost changes and one other hold a version: an older one the third logged is not skipped", () => {
  const m = new WatchMerge(positions(), quorumOf);
  m.start("k", NODES, none());
  // c restarted: v1, accepted by c and b, is in what it lost; v2 was then accepted by c and a.
  m.restarted("c", "y", 1);
  assertEquals(versions(m.observe("c", { ...change(1, "v2"), prev: "v1" })), []);
  assertEquals(versions(m.observe("a", change(1, "v2"))), [], "c's log may have lost v1");
  // v1 goes out; c held nothing newer when it lost changes, so its v2 counts again.
  assertEquals(versions(m.observe("b", change(1, "v1"))), ["v1", "v2"]);
  assertEquals(versions(m.observe("b", change(2, "v2"))), []);
});

Deno.test("WatchMerge counts a node first reached with the start of its log dropped as one that lost changes", () => {
  const m = new WatchMerge(
    new Map([...positions(), ["d", { boot: "", low: 0, read: 0 }]]),
    quorumOf,
  );
  m.restarted("d", "y", 1);
  assertEquals([...m.lost], [], "a log read from its first change: nothing unread");
  const cut = new WatchMerge(
    new Map([...positions(), ["d", { boot: "", low: 0, read: 0 }]]),
    quorumOf,
  );
  cut.restarted("d", "y", 40);
  assertEquals([...cut.lost], ["d"]);
});

Deno.test("WatchMerge across a ring change: copies on the new replica are not sent again, held events come in order", () => {
  const pos = new Map(["a", "b", "c", "d"].map((id) => [id, { boot: "x", low: 0, read: 0 }]));
  const m = new WatchMerge(pos, quorumOf);
  m.start("k", NODES, none());
  // Old replicas a, b, c: v1 accepted by a and b (out), v2 by b and c (b read late).
  assertEquals(versions(m.observe("a", change(1, "v1"))), []);
  assertEquals(versions(m.observe("b", change(1, "v1"))), ["v1"]);
  assertEquals(versions(m.observe("c", change(1, "v2"))), []);
  // b leaves the key's replicas, d joins: d got copies of v1 and v2, then accepted v3.
  m.pause();
  m.retarget("k", ["a", "c", "d"], new Map([["d", {}]]));
  assertEquals(versions(m.observe("d", change(1, "v1"))), []);
  assertEquals(versions(m.observe("d", change(2, "v2"))), []);
  assertEquals(versions(m.observe("d", change(3, "v3"))), [], "held back by the barrier");
  assertEquals(versions(m.observe("c", change(2, "v3"))), []);
  assertEquals(versions(m.observe("b", change(2, "v2"))), []);
  assertEquals(m.resume(), ["k"]);
  assertEquals(versions(m.recount("k")), ["v2", "v3"]);
  // A late copy of a sent version on any node is not sent again.
  assertEquals(versions(m.observe("a", change(2, "v2"))), []);
  assertEquals(versions(m.observe("a", change(3, "v3"))), []);
  m.forgetSettled();
  assertEquals(m.trackedKeys, 0);
  // Met again after being forgotten: started from the kept replicas, d's late copy is old.
  const kept: Bases = new Map([["a", { k: "v3" }], ["c", { k: "v3" }], ["d", { k: null }]]);
  m.start("k", ["a", "c", "d"], kept);
  assertEquals(versions(m.observe("d", change(4, "v3"))), []);
  assertEquals(versions(m.observe("d", change(5, "v4"))), []);
  assertEquals(versions(m.observe("c", change(3, "v4"))), ["v4"]);
});

Deno.test("WatchMerge drops a node that left: its waiting changes no longer hold the resume point back", () => {
  const pos = new Map(NODES.map((id) => [id, { boot: "x", low: 0, read: 0 }]));
  const m = new WatchMerge(pos, quorumOf);
  m.start("k", NODES, none());
  m.observe("c", change(4, "v1"));
  assertEquals(m.resumePoint().nodes.c, { boot: "x", low: 3, read: 4 });
  m.dropNode("c");
  m.addNode("d", { boot: "", low: 0, read: 0 });
  const point = m.resumePoint();
  assertEquals(Object.keys(point.nodes).sort(), ["a", "b", "d"]);
  assertEquals(point.pending, new Map([["k", null]]));
});

Deno.test("WatchMerge.maySendSeveral() holds whenever one change makes two versions due", () => {
  const m = new WatchMerge(positions(), quorumOf);
  m.start("k", NODES, none());
  assertEquals(m.maySendSeveral("k", "v1"), false, "nothing waits yet");
  assertEquals(versions(m.observe("a", change(1, "v1"))), []);
  assertEquals(m.maySendSeveral("k", "v1"), false, "another copy of the one version waiting");
  assertEquals(m.maySendSeveral("k", "v2"), true);
  assertEquals(versions(m.observe("a", change(2, "v2"))), []);
  assertEquals(m.maySendSeveral("k", "v2"), true, "two versions wait");
  assertEquals(versions(m.observe("b", change(1, "v2"))), ["v1", "v2"]);
  assertEquals(m.maySendSeveral("k", "v3"), false, "nothing waits once both went out");
  assertEquals(m.maySendSeveral("unknown", "v1"), false);
});

Deno.test("majorityTop() is the need-th highest version the replicas hold, as a sorted list says", () => {
  const vs = ["", "v1", "v2", "v3"];
  let x = 7;
  const pick = (n: number) => (x = (x * 48271) % 2147483647) % n;
  for (let round = 0; round < 2000; round++) {
    const replicas = ["a", "b", "c", "d", "e"].slice(0, 1 + pick(5));
    const held = new Map<string, string>();
    for (const id of replicas) {
      const v = vs[pick(vs.length)]!;
      if (v !== "") held.set(id, v);
    }
    const need = 1 + pick(replicas.length + 1);
    const sorted = replicas.map((id) => held.get(id) ?? "").sort();
    const want = sorted[sorted.length - need] ?? "";
    assertEquals(majorityTop({ replicas, held }, need), want, `${[...held]} need ${need}`);
  }
});

Deno.test("WatchMerge.resumePoint() lists, after every change, each key with a version not out yet and its last event's version (live or copied)", () => {
  let x = 3;
  const pick = (n: number) => (x = (x * 48271) % 2147483647) % n;
  for (let round = 0; round < 50; round++) {
    const m = new WatchMerge(positions(), quorumOf);
    const seqs = new Map(NODES.map((id) => [id, 0]));
    const keys = ["k0", "k1", "k2", "k3"];
    for (const k of keys) m.start(k, NODES, none());
    const seen = new Map<string, string[]>(); // versions observed per key
    const out = new Map<string, string | null>(); // last event's version per key
    // Each node logs the writes it got in order; a write goes to 1-3 of them.
    const logs = new Map<string, { k: string; ver: string }[]>(NODES.map((id) => [id, []]));
    for (let w = 1; w <= 40; w++) {
      const k = keys[pick(keys.length)]!;
      const ver = `v${String(w).padStart(3, "0")}`;
      for (const id of NODES) if (pick(3) > 0) logs.get(id)!.push({ k, ver });
    }
    for (let step = 0; step < 200; step++) {
      const id = NODES[pick(3)]!;
      const next = logs.get(id)!.shift();
      if (next === undefined) continue;
      const s = seqs.get(id)! + 1;
      seqs.set(id, s);
      const c = { s, k: next.k, ver: next.ver, prev: null, v: next.ver };
      for (const e of m.observe(id, c)) out.set(e.key, e.version);
      seen.set(next.k, [...(seen.get(next.k) ?? []), next.ver]);
      const want = new Map<string, string | null>();
      for (const [k, vs] of seen) {
        const last = out.get(k) ?? null;
        if (vs.some((v) => last === null || v > last)) want.set(k, last);
      }
      const sorted = (p: ReadonlyMap<string, string | null>) => [...p].sort();
      assertEquals(sorted(m.resumePoint(true).pending), sorted(want), `round ${round}`);
      assertEquals(sorted(m.resumePoint().pending), sorted(want), `round ${round}`);
    }
  }
});

Deno.test("WatchMerge.start() refuses a key whose last event no majority's replica can tell: a node that lost changes and one that did not answer (QA: a version sent again)", () => {
  // a lost changes; b did not answer (down when the stream resumed). v2 went out, held by a and
  // b; c is behind at v1. Started from c's word alone, v2 would go out again.
  const m = new WatchMerge(positions(), quorumOf, new Map(), new Set(["a"]));
  const told = new Map([["a", { k: "v2" }], ["c", { k: "v1" }]]);
  assertEquals(m.start("k", NODES, told), false);
  assertEquals(m.needsStart("k"), true);
  // With b's answer, every majority has a replica that told: v2 is the last event.
  assertEquals(m.start("k", NODES, new Map([...told, ["b", { k: "v2" }]])), true);
  assertEquals(m.observe("c", { s: 1, k: "k", ver: "v2", prev: "v1", v: null }), []);
  // A key the cursor lists has its last event from the cursor: no answer needed.
  const r = new WatchMerge(positions(), quorumOf, new Map([["p", "v2"]]), new Set(["a"]));
  assertEquals(r.start("p", NODES, new Map([["c", { p: "v1" }]])), true);
  // No node lost: one that does not answer leaves two that told.
  const n = new WatchMerge(positions(), quorumOf);
  assertEquals(n.start("k", NODES, new Map([["a", { k: "v2" }], ["c", { k: "v1" }]])), true);
});
