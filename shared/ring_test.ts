import { assert, assertEquals, assertThrows } from "@std/assert";
import {
  DEFAULT_VNODES,
  diffRings,
  hashKey,
  hashKeys,
  inRanges,
  type RangeMove,
  Ring,
  RING_SIZE,
} from "./ring.ts";
import { seededRandom as seeded } from "../tests/doubles/seeded_random.ts";

const at = (point: number, nodeId: string) => ({ point, nodeId });
/** a@100, b@200, a@300, c@400: worked out by hand below. */
const small = Ring.fromPoints([at(300, "a"), at(100, "a"), at(400, "c"), at(200, "b")]);
const named = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `n${i + 1}`, weight: 1 }));

function hexIds(n: number, seed: number): { id: string; weight: number }[] {
  const next = seeded(seed);
  return Array.from({ length: n }, () => ({
    id: Math.floor(next() * RING_SIZE).toString(16).padStart(8, "0"),
    weight: 1,
  }));
}

const movedFraction = (moves: RangeMove[]) =>
  moves.reduce((sum, m) => sum + m.end - m.start, 0) / RING_SIZE;

Deno.test("hashKey() is the first 32 bits of SHA-1, big-endian", async () => {
  assertEquals(await hashKey("abc"), 0xa9993e36);
  assertEquals(await hashKey(""), 0xda39a3ee);
  assertEquals(await hashKey("é"), 0xbf15be71); // hashes the UTF-8 bytes c3 a9
});

Deno.test("hashKeys() returns each key's hashKey() in order, also past one wave", async () => {
  const keys = Array.from({ length: 700 }, (_, i) => `key-${i}`);
  const points = await hashKeys(keys);
  assertEquals(points.length, keys.length);
  for (const i of [0, 255, 256, 511, 699]) assertEquals(points[i], await hashKey(keys[i]!));
});

Deno.test("Ring.ownersOf() on an exact hit returns that point's node", () => {
  assertEquals(small.ownersOf(200, 1), ["b"]);
  assertEquals(small.ownersOf(100, 1), ["a"]);
});

Deno.test("Ring.ownersOf() between points returns the next point's node", () => {
  assertEquals(small.ownersOf(101, 1), ["b"]);
  assertEquals(small.ownersOf(399, 1), ["c"]);
  assertEquals(small.ownersOf(0, 1), ["a"]);
});

Deno.test("Ring.ownersOf() wraps past the last point", () => {
  assertEquals(small.ownersOf(401, 1), ["a"]);
  assertEquals(small.ownersOf(RING_SIZE - 1, 2), ["a", "b"]);
  assertEquals(small.ownersOf(350, 3), ["c", "a", "b"]);
});

Deno.test("Ring.ownersOf() returns n distinct nodes, skipping repeated vnodes", () => {
  const ring = Ring.fromPoints([at(10, "a"), at(20, "a"), at(30, "a"), at(40, "b"), at(50, "c")]);
  assertEquals(ring.ownersOf(5, 2), ["a", "b"]);
  assertEquals(ring.ownersOf(201, 2), ["a", "b"]);
  assertEquals(small.ownersOf(250, 2), ["a", "c"]);
  assertEquals(small.ownersOf(150, 3), ["b", "a", "c"]);
});

Deno.test("Ring.ownersOf() with n above the node count returns every node once", () => {
  assertEquals(small.ownersOf(150, 5), ["b", "a", "c"]);
  assertEquals(small.ownersOf(150, 0), []);
});

Deno.test("Ring.ownersOf() on an empty ring returns []", () => {
  const empty = Ring.fromPoints([]);
  assertEquals(empty.ownersOf(5, 1), []);
  assertEquals(empty.nodeIds, []);
  assertEquals(empty.shares(), new Map());
});

Deno.test("Ring breaks ties on a point by node id, whatever the input order", () => {
  for (
    const ring of [
      Ring.fromPoints([at(7, "b"), at(7, "a")]),
      Ring.fromPoints([at(7, "a"), at(7, "b")]),
    ]
  ) {
    assertEquals(ring.ownersOf(7, 1), ["a"]);
    assertEquals(ring.ownersOf(7, 2), ["a", "b"]);
    assertEquals(ring.points(), [at(7, "a"), at(7, "b")]);
  }
});

Deno.test("Ring.points() is in ring order and nodeIds is sorted", () => {
  assertEquals(small.points(), [at(100, "a"), at(200, "b"), at(300, "a"), at(400, "c")]);
  assertEquals(small.nodeIds, ["a", "b", "c"]);
});

Deno.test("Ring.shares() gives each node the arcs ending at its points, wrap included", () => {
  const quarter = RING_SIZE / 4;
  const ring = Ring.fromPoints([at(quarter, "a"), at(2 * quarter, "b")]);
  assertEquals(ring.shares(), new Map([["a", 0.75], ["b", 0.25]]));
  assertEquals(Ring.fromPoints([at(5, "solo")]).shares(), new Map([["solo", 1]]));
});

Deno.test("Ring.fromPoints() rejects points outside [0, 2**32)", () => {
  for (const point of [-1, RING_SIZE, 1.5, NaN]) {
    assertThrows(() => Ring.fromPoints([at(point, "a")]), Error, "points are integers");
  }
});

Deno.test("Ring.build() rejects weights that are 0, negative or not finite", async () => {
  for (const weight of [0, -1, NaN, Infinity]) {
    const members = [{ id: "n1", weight: 1 }, { id: "n2", weight }];
    const err = await Ring.build(members, 10).then(() => null, (e: Error) => e);
    assert(err?.message.includes(`Cannot place node n2 on the ring: its weight is ${weight}`));
  }
});

Deno.test("Ring.build() rejects a repeated node id", async () => {
  const err = await Ring.build([...named(2), ...named(1)], 10).then(() => null, (e: Error) => e);
  assert(err?.message.includes("Cannot place node n1 twice"));
});

Deno.test("Ring.build() places round(weight * vnodes) points at hashKey(id#i)", async () => {
  const ring = await Ring.build([{ id: "x", weight: 1 }, { id: "y", weight: 0.5 }], 4);
  const expected = [
    ...(await hashKeys(["x#0", "x#1", "x#2", "x#3"])).map((p) => at(p, "x")),
    ...(await hashKeys(["y#0", "y#1"])).map((p) => at(p, "y")),
  ].sort((l, r) => l.point - r.point);
  assertEquals(ring.points(), expected);
});

Deno.test("Ring.build() with default vnodes gives every node within ±10% of a fair share", async () => {
  let worst = 0;
  for (let n = 3; n <= 16; n++) {
    for (const members of [named(n), hexIds(n, 1000 + n), hexIds(n, 2000 + n)]) {
      const ring = await Ring.build(members);
      assertEquals(ring.nodeIds.length, n);
      for (const [id, share] of ring.shares()) {
        const deviation = Math.abs(share * n - 1);
        worst = Math.max(worst, deviation);
        assert(deviation <= 0.1, `${n} nodes: ${id} has ${share}, fair is ${1 / n}`);
      }
    }
  }
  console.log(`worst share deviation at ${DEFAULT_VNODES} vnodes: ${(worst * 100).toFixed(1)}%`);
});

Deno.test("Ring.build() gives a node of weight 2 about twice the share", async () => {
  const members = [{ id: "heavy", weight: 2 }, ...named(4)];
  const shares = (await Ring.build(members)).shares();
  for (const { id, weight } of members) {
    const fair = weight / 6;
    assert(Math.abs(shares.get(id)! / fair - 1) <= 0.1, `${id} has ${shares.get(id)}`);
  }
});

/** Checks the shape every diffRings() answer must have. */
function assertWellFormed(moves: RangeMove[]): void {
  moves.forEach((m, i) => {
    assert(0 <= m.start && m.start < m.end && m.end <= RING_SIZE, `bad range ${m.start}-${m.end}`);
    const prev = moves[i - 1];
    if (!prev) return;
    assert(prev.end <= m.start, `ranges overlap or are out of order at ${m.start}`);
    const same = prev.from.join() === m.from.join() && prev.to.join() === m.to.join();
    assert(prev.end < m.start || !same, `adjacent ranges at ${m.start} were not merged`);
  });
}

/** ownersOf() at `point` per diffRings(): `to` inside a moved range, else unchanged. */
function movedOwners(moves: RangeMove[], point: number): string[] | undefined {
  return moves.find((m) => m.start <= point && point < m.end)?.to;
}

Deno.test("diffRings() of identical rings is empty", async () => {
  assertEquals(diffRings(small, small, 2), []);
  const ring = await Ring.build(named(5));
  assertEquals(diffRings(ring, await Ring.build(named(5)), 1), []);
});

Deno.test("diffRings() moves (previous point, new point] to an added node", () => {
  const bigger = Ring.fromPoints([...small.points(), at(150, "d")]);
  assertEquals(diffRings(small, bigger, 1), [{ start: 101, end: 151, from: ["b"], to: ["d"] }]);
  assertEquals(
    diffRings(small, bigger, 2),
    [
      { start: 1 + 400, end: RING_SIZE, from: ["a", "b"], to: ["a", "d"] },
      { start: 0, end: 101, from: ["a", "b"], to: ["a", "d"] },
      { start: 101, end: 151, from: ["b", "a"], to: ["d", "b"] },
    ].sort((l, r) => l.start - r.start),
  );
});

Deno.test("diffRings() merges adjacent ranges with the same owners", () => {
  const empty = Ring.fromPoints([]);
  const ring = Ring.fromPoints([at(10, "a"), at(20, "a"), at(RING_SIZE - 1, "a")]);
  assertEquals(diffRings(empty, ring, 1), [{ start: 0, end: RING_SIZE, from: [], to: ["a"] }]);
});

Deno.test("diffRings() agrees with ownersOf() at every point of small rings", () => {
  const next = seeded(7);
  const randomRing = () =>
    Ring.fromPoints(
      Array.from({ length: 8 }, () => at(Math.floor(next() * 60), "abcd"[Math.floor(next() * 4)]!)),
    );
  for (let round = 0; round < 30; round++) {
    const [from, to] = [randomRing(), randomRing()];
    for (const n of [1, 2, 3]) {
      const moves = diffRings(from, to, n);
      assertWellFormed(moves);
      for (const point of [...Array(70).keys(), RING_SIZE - 1]) {
        assertEquals(movedOwners(moves, point) ?? from.ownersOf(point, n), to.ownersOf(point, n));
      }
    }
  }
});

Deno.test("adding a node to n nodes moves about 1/(n+1) of the keys, all to the new node", async () => {
  const keys = Array.from({ length: 20_000 }, (_, i) => `user:${i}`);
  const points = await hashKeys(keys);
  const report: string[] = [];
  for (let n = 3; n <= 10; n++) {
    const [before, after] = [await Ring.build(named(n)), await Ring.build(named(n + 1))];
    const added = `n${n + 1}`;
    const moves = diffRings(before, after, 1);
    assertWellFormed(moves);
    for (const m of moves) assertEquals(m.to, [added]);
    const moved = points.filter((p) => before.ownersOf(p, 1)[0] !== after.ownersOf(p, 1)[0]);
    assertEquals(moved.length, points.filter((p) => inRanges(p, moves)).length);
    const ideal = 1 / (n + 1);
    const [space, sample] = [movedFraction(moves), moved.length / keys.length];
    assert(Math.abs(space / ideal - 1) <= 0.1, `${n}+1 nodes: moved ${space} of the space`);
    assert(Math.abs(sample / ideal - 1) <= 0.1, `${n}+1 nodes: moved ${sample} of the keys`);
    report.push(
      `${n}->${n + 1}: ideal ${ideal.toFixed(4)} space ${space.toFixed(4)} keys ${sample}`,
    );
  }
  console.log(report.join("\n"));
});

Deno.test("adding a node with 2 or 3 replicas puts the new node in every moved range", async () => {
  const [before, after] = [await Ring.build(named(5)), await Ring.build(named(6))];
  for (const n of [2, 3]) {
    const moves = diffRings(before, after, n);
    assertWellFormed(moves);
    assert(moves.length > 0);
    for (const m of moves) assert(m.to.includes("n6") && !m.from.includes("n6"));
  }
});

Deno.test("removing a node moves only that node's keys", async () => {
  for (const members of [named(6), hexIds(5, 42)]) {
    const removed = members[2]!.id;
    const before = await Ring.build(members);
    const after = await Ring.build(members.filter((m) => m.id !== removed));
    const moves = diffRings(before, after, 1);
    assertWellFormed(moves);
    for (const m of moves) assertEquals(m.from, [removed]);
    const share = before.shares().get(removed)!;
    assert(Math.abs(movedFraction(moves) - share) < 1e-9, "exactly its share of the space moves");
    for (const n of [2, 3]) {
      for (const m of diffRings(before, after, n)) {
        assert(m.from.includes(removed) && !m.to.includes(removed), `n=${n} at ${m.start}`);
      }
    }
  }
});

Deno.test("inRanges() includes start, excludes end, and reaches 2**32 - 1", () => {
  const ranges = [{ start: 0, end: 10 }, { start: 20, end: 30 }, { start: 40, end: RING_SIZE }];
  for (const p of [0, 9, 20, 29, 40, RING_SIZE - 1]) assert(inRanges(p, ranges), `${p} is in`);
  for (const p of [10, 19, 30, 39]) assert(!inRanges(p, ranges), `${p} is out`);
  assert(!inRanges(0, []));
  assert(!inRanges(5, [{ start: 6, end: 7 }]));
  const touching = [{ start: 0, end: 10 }, { start: 10, end: 12 }, { start: 12, end: 13 }];
  for (const p of [0, 9, 10, 11, 12]) assert(inRanges(p, touching), `${p} is in a touching range`);
  assert(!inRanges(13, touching));
});

Deno.test("Ring.build() hashes only the virtual-node labels it has not hashed before", async () => {
  const digest = crypto.subtle.digest.bind(crypto.subtle);
  let digests = 0;
  const counting = (...args: Parameters<typeof digest>) => (digests++, digest(...args));
  crypto.subtle.digest = counting as typeof crypto.subtle.digest;
  try {
    // Ids of this test alone: labels other tests hashed would be known already.
    const three = [1, 2, 3].map((i) => ({ id: `memo-${i}`, weight: 1 }));
    const first = await Ring.build(three, 50);
    assertEquals(digests, 150);
    const again = await Ring.build(three.toReversed(), 50);
    assertEquals(digests, 150, "the same members again: no digest");
    assertEquals(again.points(), first.points());
    const four = await Ring.build([...three, { id: "memo-4", weight: 2 }], 50);
    assertEquals(digests, 250, "one new member of weight 2: its 100 labels only");
    const fresh = Ring.fromPoints(
      await Promise.all(
        [...three, { id: "memo-4", weight: 2 }].flatMap(({ id, weight }) =>
          Array.from(
            { length: weight * 50 },
            async (_, i) => ({ point: await hashKey(`${id}#${i}`), nodeId: id }),
          )
        ),
      ),
    );
    assertEquals(four.points(), fresh.points(), "the remembered points are the digests' own");
  } finally {
    crypto.subtle.digest = digest;
  }
});
