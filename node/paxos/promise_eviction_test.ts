import { assert, assertEquals } from "@std/assert";
import { until } from "../../tests/helpers/poll.ts";
import { Acceptor, memoryFloorStore } from "./acceptor.ts";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import { openEngine } from "../engine/open_engine.ts";
import type { NodeEngine } from "../engine/engine.ts";

// Age 0: each prepare ticks, so a promise is folded two prepares after it was given.
async function setup(): Promise<{ engine: NodeEngine; acceptor: Acceptor }> {
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", now: () => 0 });
  const acceptor = await Acceptor.open(engine, memoryFloorStore(), { promiseAgeMs: 0 });
  return { engine, acceptor };
}

const at = (ms: number, writer = "p") => `${ms.toString(16).padStart(12, "0")}-0000-${writer}`;
const put = (k: string, ver: string) => ({ k, v: "eA==", ver, h: 7 });

/** Prepares `n` distinct keys no node holds (DELETEs of missing keys), ballots from `from` on. */
async function missing(acceptor: Acceptor, n: number, from: number, prefix = "gone") {
  for (let i = 0; i < n; i++) {
    assert((await acceptor.prepare(`${prefix}${i}`, at(from + i))).ok);
  }
}

Deno.test("Acceptor: promises on many distinct keys without an entry are folded, not kept one by one", async () => {
  const { engine, acceptor } = await setup();
  try {
    await missing(acceptor, 2_000, 100);
    // The last two generations at most (before: 2,000, one per key, for good).
    assert(acceptor.openPromises <= 2, `${acceptor.openPromises} open promises`);
    assertEquals(acceptor.foldedPromises, 1_998);
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor: a prepare or accept at or below a folded promise is refused with the floor; a fresh ballot passes", async () => {
  const { engine, acceptor } = await setup();
  try {
    await missing(acceptor, 3, 500); // gone0 at 500 is folded by the third prepare
    // A stale proposer's late accept of gone0 below its folded promise.
    const late = await acceptor.accept(put("gone0", at(499)));
    assertEquals([late.ok, late.promised], [false, at(500)]);
    // A new key's prepare (it ticks first: gone1's promise at 501 joins the floor).
    const other = await acceptor.prepare("new", at(400));
    assertEquals([other.ok, other.promised], [false, at(501)]);
    assertEquals((await acceptor.prepare("gone1", at(501))).ok, false);
    // The proposer moves past the floor: its fresh ballot is promised and accepted.
    assertEquals((await acceptor.prepare("new", at(600))).ok, true);
    assertEquals((await acceptor.accept(put("new", at(600)))).ok, true);
    assertEquals((await engine.get("new"))?.version, at(600));
    assertEquals(acceptor.openPromises <= 2, true);
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor: a promise on a key with an entry is kept however old, and the floor does not apply to it", async () => {
  const { engine, acceptor } = await setup();
  try {
    assert((await acceptor.prepare("k", at(10))).ok);
    assert((await acceptor.accept(put("k", at(10)))).ok);
    assert((await acceptor.prepare("k", at(20))).ok); // a failed If-Match: no accept follows
    await missing(acceptor, 50, 1_000);
    assertEquals(acceptor.foldedPromises > 0, true);
    // k's own promise stands: nothing between its entry and it passes.
    const vote = await acceptor.prepare("k", at(15));
    assertEquals([vote.ok, vote.promised], [false, at(20)]);
    assertEquals((await acceptor.accept(put("k", at(19)))).ok, false);
    assertEquals(acceptor.openPromises <= 3, true);
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor: the one-round-trip write (old version + '0') on a key with an entry passes below the absent-key floor", async () => {
  const { engine, acceptor } = await setup();
  try {
    assert((await acceptor.prepare("k", at(10))).ok);
    assert((await acceptor.accept(put("k", at(10)))).ok);
    await missing(acceptor, 50, 1_000);
    assertEquals(acceptor.foldedPromises > 0, true); // the floor is far above at(10)
    assertEquals((await acceptor.accept(put("k", at(10) + "0"))).ok, true);
    assertEquals((await acceptor.accept(put("k", at(10) + "00"))).ok, true);
    assertEquals((await engine.get("k"))?.version, at(10) + "00");
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor: an entry ingested below the floor on a key without one keeps the floor as the key's promise", async () => {
  const { engine, acceptor } = await setup();
  try {
    await missing(acceptor, 3, 500); // gone0's promise at 500 is in the floor now
    // Anti-entropy installs a decided older entry of gone0 (versioned ingest ignores promises).
    await engine.ingest([put("gone0", at(300))], undefined, acceptor.admitIngest);
    assertEquals((await engine.get("gone0"))?.version, at(300));
    // A stale accept between the ingested entry and the folded promise is still refused.
    const late = await acceptor.accept(put("gone0", at(400)));
    assertEquals([late.ok, late.promised], [false, at(500)]);
    assertEquals((await acceptor.prepare("gone0", at(450))).ok, false);
    assertEquals((await acceptor.prepare("gone0", at(600))).ok, true);
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor: a held key's promise is not folded while a drop of it is not durable: a rolled-back drop keeps it", async () => {
  const disk = createFakeDisk();
  const engine = await openEngine({ disk, id: "n1", now: () => 0 });
  const acceptor = await Acceptor.open(engine, memoryFloorStore(), { promiseAgeMs: 0 });
  try {
    assertEquals((await acceptor.accept(put("k", at(10)))).ok, true);
    assert((await acceptor.prepare("k", at(50))).ok); // a promise with no accept after it
    assert((await acceptor.prepare("a", at(60))).ok); // k's promise reaches the older generation
    // The drop takes k out of memory at once; its log record's fsync fails, and the repair rolls
    // it back. Meanwhile a prepare ticks, with k absent from memory.
    disk.failSyncs(1);
    const dropping = engine.drop([{ start: 0, end: 2 ** 32 }]);
    assertEquals(engine.peekVersion("k"), undefined);
    assert((await acceptor.prepare("b", at(70))).ok);
    await dropping.catch(() => {});
    const reloaded = () => {
      try {
        return engine.peekVersion("k") === at(10);
      } catch {
        return false; // refused until the repair has reloaded the store
      }
    };
    await until("the repair reloads k", reloaded);
    // A stale proposer between k's entry and its promise must still be refused.
    const stale = await acceptor.accept(put("k", at(40)));
    assertEquals([stale.ok, stale.promised], [false, at(50)]);
  } finally {
    await engine.close();
  }
});
