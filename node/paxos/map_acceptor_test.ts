import { assertEquals, assertRejects } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import type { ClusterMap } from "../../shared/wire.ts";
import { MapAcceptor, type MapVoteStore, memoryVoteStore } from "./map_acceptor.ts";

const B1 = "018c00000000-0000-pa";
const B2 = "018c00000000-0001-pb";
const B3 = "018c00000000-0002-pa";

function mapOf(epoch: number, note = ""): ClusterMap {
  const nodes = [{ id: "n1" + note, url: "http://n1", weight: 1 }];
  return { epoch, replicas: 1, vnodes: 8, nodes, rebalancing: null };
}

function acceptorAt(routingEpoch: number, store: MapVoteStore = memoryVoteStore()) {
  let routing: ClusterMap | null = routingEpoch === 0 ? null : mapOf(routingEpoch);
  const acceptor = new MapAcceptor(store, () => Promise.resolve(routing));
  return { acceptor, store, learn: (map: ClusterMap) => (routing = map) };
}

async function refusal(run: () => Promise<unknown>): Promise<RingkvError> {
  return await assertRejects(run, RingkvError);
}

Deno.test("MapAcceptor promises the highest ballot and reports what it accepted", async () => {
  const { acceptor } = acceptorAt(1);
  assertEquals(await acceptor.prepare(2, B1), null);
  await acceptor.accept(2, B1, mapOf(2, "a"));
  assertEquals(await acceptor.prepare(2, B2), { ballot: B1, map: mapOf(2, "a") });
  // Promised B2: an accept or a prepare under the lower B1 is refused, naming the promise.
  const lower = await refusal(() => acceptor.accept(2, B1, mapOf(2, "b")));
  assertEquals([lower.code, lower.extra.promised], ["conflict", B2]);
  assertEquals((await refusal(() => acceptor.prepare(2, B1))).extra.promised, B2);
  // The same ballot again (a retried call) is answered as before.
  assertEquals(await acceptor.prepare(2, B2), { ballot: B1, map: mapOf(2, "a") });
  await acceptor.accept(2, B3, mapOf(2, "c"));
  assertEquals(await acceptor.prepare(2, B3), { ballot: B3, map: mapOf(2, "c") });
});

Deno.test("MapAcceptor answers an epoch decided already with its chosen map, and a later vote's epoch as a conflict", async () => {
  const { acceptor, learn } = acceptorAt(3);
  const decided = await refusal(() => acceptor.prepare(3, B1));
  assertEquals([decided.code, decided.extra.epoch, decided.extra.map], [
    "stale_epoch",
    3,
    mapOf(3),
  ]);
  await acceptor.accept(5, B1, mapOf(5));
  const behind = await refusal(() => acceptor.prepare(4, B2));
  assertEquals([behind.code, behind.extra.voting, behind.extra.promised], [
    "conflict",
    5,
    undefined,
  ]);
  // Once the node has the map of epoch 5, the next vote starts afresh.
  learn(mapOf(5));
  assertEquals(await acceptor.prepare(6, B1), null);
});

Deno.test("MapAcceptor keeps its vote in its store: a restarted node refuses what it promised against", async () => {
  const store = memoryVoteStore();
  await acceptorAt(1, store).acceptor.accept(2, B2, mapOf(2, "a"));
  const { acceptor } = acceptorAt(1, store);
  assertEquals((await refusal(() => acceptor.prepare(2, B1))).extra.promised, B2);
  assertEquals(await acceptor.prepare(2, B3), { ballot: B2, map: mapOf(2, "a") });
});

Deno.test("MapAcceptor stores a vote before answering: a failed store answers nothing and keeps the old vote", async () => {
  const inner = memoryVoteStore();
  let broken = false;
  const store: MapVoteStore = {
    load: () => inner.load(),
    save: (vote) => broken ? Promise.reject(new Error("EIO")) : inner.save(vote),
  };
  const { acceptor } = acceptorAt(1, store);
  await acceptor.prepare(2, B1);
  broken = true;
  await assertRejects(() => acceptor.prepare(2, B3), Error, "EIO");
  broken = false;
  // B3 was never promised: B2 still gets a promise.
  assertEquals(await acceptor.prepare(2, B2), null);
});

Deno.test("MapAcceptor refuses to vote from a damaged stored vote (503) rather than forget a promise", async () => {
  const store: MapVoteStore = {
    load: () => Promise.resolve({ epoch: "x" }),
    save: () => Promise.resolve(),
  };
  const err = await refusal(() => acceptorAt(1, store).acceptor.prepare(2, B1));
  assertEquals(err.code, "unavailable");
});
