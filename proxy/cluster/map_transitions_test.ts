import { assertEquals, assertThrows } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import type { NodeInfo } from "../../shared/wire.ts";
import {
  allNodes,
  cancelRemove,
  initialMap,
  nodeInfo,
  type Plan,
  planAdd,
  planRemove,
  previousNodes,
  toCleanup,
  toForcedRemoval,
  toStable,
  withIncarnation,
  withNodeUrls,
} from "./map_transitions.ts";

const n = (id: string): NodeInfo => ({ id, url: `http://${id}`, weight: 1 });
const three = initialMap([n("a"), n("b"), n("c")], 1, 8);

function code(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof RingkvError) return `${err.status} ${err.code}`;
    throw err;
  }
  return "no error";
}

Deno.test("planAdd() starts copying at epoch + 1 with the next ring and the previous one", () => {
  const map = planAdd(three, n("d"), 1000, 42);
  assertEquals(map.epoch, 2);
  assertEquals(map.nodes, three.nodes);
  assertEquals(
    map.rebalancing,
    {
      kind: "add",
      nodeId: "d",
      phase: "copying",
      next: [n("a"), n("b"), n("c"), n("d")],
      startedAt: 1000,
      movedKeys: 0,
      totalKeys: 42,
      prev: three.nodes,
    } as typeof map.rebalancing,
  );
});

Deno.test("an add goes copying -> cleanup (nodes = next) -> stable, one epoch per step", () => {
  const copying = planAdd(three, n("d"), 0, 0);
  const cleanup = toCleanup(copying, 7);
  assertEquals([cleanup.epoch, cleanup.rebalancing?.phase, cleanup.rebalancing?.movedKeys], [
    3,
    "cleanup",
    7,
  ]);
  assertEquals(cleanup.nodes.map((x) => x.id), ["a", "b", "c", "d"]);
  assertEquals(previousNodes(cleanup).map((x) => x.id), ["a", "b", "c"]);
  const stable = toStable(cleanup);
  assertEquals([stable.epoch, stable.rebalancing], [4, null]);
  assertEquals(stable.nodes.map((x) => x.id), ["a", "b", "c", "d"]);
});

Deno.test("a remove keeps the leaving node's address through cleanup", () => {
  const cleanup = toCleanup(planRemove(three, "b", 0, 0), 0);
  assertEquals(cleanup.nodes.map((x) => x.id), ["a", "c"]);
  assertEquals(previousNodes(cleanup).map((x) => x.id), ["a", "b", "c"]);
  assertEquals(allNodes(cleanup).map((x) => x.id), ["a", "c", "b"]);
  assertEquals(toStable(cleanup).nodes.map((x) => x.id), ["a", "c"]);
  assertEquals(allNodes(toStable(cleanup)).map((x) => x.id), ["a", "c"]);
});

Deno.test("previousNodes() works out an add's old ring from a map without prev", () => {
  const cleanup = toCleanup(planAdd(three, n("d"), 0, 0), 0);
  delete (cleanup.rebalancing as { prev?: unknown }).prev;
  assertEquals(previousNodes(cleanup).map((x) => x.id), ["a", "b", "c"]);
});

Deno.test("planAdd() refuses a duplicate id or URL, and a second rebalancing, with 409", () => {
  assertEquals(code(() => planAdd(three, n("b"), 0, 0)), "409 conflict");
  assertEquals(code(() => planAdd(three, { ...n("x"), url: "http://a" }, 0, 0)), "409 conflict");
  const busy = planAdd(three, n("d"), 0, 0);
  assertEquals(code(() => planAdd(busy, n("e"), 0, 0)), "409 conflict");
  assertEquals(code(() => planRemove(busy, "a", 0, 0)), "409 conflict");
  assertEquals(code(() => planRemove(toCleanup(busy, 0), "a", 0, 0)), "409 conflict");
});

Deno.test("planRemove() refuses an unknown id (404) and the last node (409)", () => {
  assertEquals(code(() => planRemove(three, "zz", 0, 0)), "404 not_found");
  // QA: `kv remove http://127.0.0.1:7004` and `kv remove N1` said only "no node has this id".
  const urls = initialMap([{ id: "n1", url: "http://127.0.0.1:7001", weight: 1 }], 1, 8);
  assertThrows(
    () => planRemove(urls, "http://127.0.0.1:7001/", 0, 0),
    RingkvError,
    "no node has this id; it is the URL of node n1: remove n1",
  );
  assertThrows(() => planRemove(urls, "N1", 0, 0), RingkvError, "; did you mean n1?");
  assertThrows(() => planRemove(three, "zz", 0, 0), RingkvError, "no node has this id");
  assertEquals(code(() => planRemove(initialMap([n("a")], 1, 8), "a", 0, 0)), "409 conflict");
});

Deno.test("the same step taken twice from the same map gives the same epochs and rings", () => {
  const one = toStable(toCleanup(planAdd(three, n("d"), 5, 0), 0));
  const two = toStable(toCleanup(planAdd(three, n("d"), 5, 0), 0));
  assertEquals(one, two);
  assertThrows(() => toStable(three));
  assertThrows(() => toCleanup(toCleanup(planAdd(three, n("d"), 5, 0), 0), 0));
});

Deno.test("withNodeUrls() moves a node to its new URL in every ring and bumps the epoch", () => {
  const n1 = { id: "n1", url: "http://a:1", weight: 1 };
  const n2 = { id: "n2", url: "http://b:1", weight: 1 };
  const adding = planAdd(initialMap([n1], 1, 8), n2, 0, 0);
  const moved = withNodeUrls(adding, [{ id: "n1", url: "http://a:2", weight: 1 }])!;
  assertEquals(moved.epoch, adding.epoch + 1);
  assertEquals(moved.nodes[0]!.url, "http://a:2");
  assertEquals(moved.rebalancing!.next.map((n) => n.url), ["http://a:2", "http://b:1"]);
  assertEquals(withNodeUrls(adding, [n1, n2]), null);
  assertEquals(withNodeUrls(adding, [{ id: "n9", url: "http://z", weight: 1 }]), null);
});

Deno.test("withIncarnation() records a node's incarnation in the next epoch, on stable maps only", () => {
  const a = { id: "n1", url: "http://a", weight: 1, incarnation: "i000000000001" };
  const b = { id: "n2", url: "http://b", weight: 1 };
  const map = initialMap([a, b], 3, 8);
  const next = withIncarnation(map, "n1", "i000000000002");
  assertEquals(next.epoch, 2);
  assertEquals(next.nodes, [{ ...a, incarnation: "i000000000002" }, b]);
  assertEquals(map.nodes[0]!.incarnation, "i000000000001"); // the old map is unchanged
  assertThrows(() => withIncarnation(planAdd(map, { ...b, id: "n3", url: "c" }, 0, 0), "n1", "i"));
  assertThrows(() => withIncarnation(map, "n9", "i000000000002"));
});

Deno.test("nodeInfo() keeps a node's incarnation when its /health has one", () => {
  assertEquals(nodeInfo({ id: "n1" }, "http://a", 2), { id: "n1", url: "http://a", weight: 2 });
  assertEquals(nodeInfo({ id: "n1", incarnation: "i1" }, "http://a", 1), {
    id: "n1",
    url: "http://a",
    weight: 1,
    incarnation: "i1",
  });
});

Deno.test("planRemove() refuses (409) leaving fewer nodes than replicas, unless insisted on", () => {
  const map = initialMap([n("a"), n("b"), n("c")], 3, 8);
  assertEquals(code(() => planRemove(map, "a", 0, 0)), "409 conflict");
  assertEquals(planRemove(map, "a", 0, 0, false, true).rebalancing?.kind, "remove");
  assertEquals(planRemove(map, "a", 0, 0, true).rebalancing?.kind, "remove", "force insists");
  assertEquals(planRemove(initialMap([n("a"), n("b"), n("c")], 2, 8), "a", 0, 0).epoch, 2);
});

Deno.test("planRemove() of the node a rebalancing adds says it is being added (409), not 404", () => {
  const busy = planAdd(three, n("d"), 0, 0);
  assertEquals(code(() => planRemove(busy, "d", 0, 0)), "409 conflict");
  const err = assertThrows(() => planRemove(busy, "d", 0, 0), RingkvError);
  assertEquals(
    err.message,
    "Cannot remove node d: node d is being added (phase copying); wait until GET /cluster " +
      "shows no rebalancing (if its rebalancing.error says a node does not answer, remove that " +
      "node for good with DELETE /cluster/nodes/{id}?force=true: the change then goes on, or " +
      "ends, without it)",
  );
});

Deno.test("toForcedRemoval() marks a drain still copying as a removal for good, one epoch on, same rings", () => {
  const draining = planRemove(three, "c", 5, 9, false, true);
  const forced = toForcedRemoval(draining);
  assertEquals(forced.epoch, draining.epoch + 1);
  assertEquals(forced.nodes, three.nodes);
  assertEquals(forced.rebalancing, { ...draining.rebalancing!, force: true } as Plan);
  assertThrows(() => toForcedRemoval(toCleanup(draining, 0)), Error, "needs a removal copying");
  assertThrows(() => toForcedRemoval(planAdd(three, n("d"), 0, 0)), Error);
});

Deno.test("cancelRemove() goes back to the ring a drain started from, stable, one epoch on; not past the switch", () => {
  const draining = planRemove(three, "c", 5, 9, false, true);
  assertEquals(cancelRemove(draining), { ...three, epoch: draining.epoch + 1 });
  assertThrows(() => cancelRemove(toCleanup(draining, 0)), Error, "needs a removal copying");
});
