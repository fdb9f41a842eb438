import { assert, assertEquals, assertRejects } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import { Acceptor, memoryFloorStore } from "./acceptor.ts";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import { openEngine } from "../engine/open_engine.ts";

const h = 7;
const entry = (ver: string, v = "eA==") => ({ k: "k", v, ver, h });

async function setup() {
  // Born at time 0, so the hand-written ballots below are not older than the directory.
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", now: () => 0 });
  const floor = memoryFloorStore();
  return { engine, floor, acceptor: await Acceptor.open(engine, floor) };
}

Deno.test("Acceptor.prepare() refuses a ballot not above the promised one and names it", async () => {
  const { engine, acceptor } = await setup();
  try {
    assertEquals((await acceptor.prepare("k", "000000000002-0000-p")).ok, true);
    const vote = await acceptor.prepare("k", "000000000001-0000-p");
    assertEquals([vote.ok, vote.promised], [false, "000000000002-0000-p"]);
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor.accept() refuses a ballot below a promise and stores one at or above it", async () => {
  const { engine, acceptor } = await setup();
  try {
    await acceptor.prepare("k", "000000000005-0000-p");
    assertEquals((await acceptor.accept(entry("000000000004-0000-q"))).ok, false);
    assertEquals((await acceptor.accept(entry("000000000005-0000-p"))).ok, true);
    assertEquals((await engine.get("k"))?.version, "000000000005-0000-p");
    // The same accepted entry again is a no-op that answers ok; an older one is refused.
    assertEquals((await acceptor.accept(entry("000000000005-0000-p"))).ok, true);
    assertEquals((await acceptor.accept(entry("000000000003-0000-p"))).ok, false);
    const vote = await acceptor.prepare("k", "000000000005-0000-p");
    assertEquals([vote.ok, vote.entry?.version], [false, "000000000005-0000-p"]);
  } finally {
    await engine.close();
  }
});

Deno.test("after a restart every key is promised the stored watermark, above all old promises", async () => {
  const { engine, floor, acceptor } = await setup();
  try {
    await acceptor.prepare("k", "000000100000-0000-p");
    const again = await Acceptor.open(engine, floor);
    assertEquals((await again.accept(entry("000000100000-0000-p"))).ok, false);
    assertEquals((await again.prepare("other", "000000100001-0000-p")).ok, false);
    assertEquals((await again.prepare("other", "000001000000-0000-p")).ok, true);
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor.open() promises nothing older than the data directory (a wiped node forgot its promises)", async () => {
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", now: () => 50_000 });
  try {
    const acceptor = await Acceptor.open(engine, memoryFloorStore());
    const old = await acceptor.prepare("k", "000000000001-0000-p");
    assertEquals([old.ok, old.promised], [false, "00000000c350-0000-0"]);
    assertEquals((await acceptor.accept(entry("00000000c34f-0000-p"))).ok, false);
    assertEquals((await acceptor.prepare("k", "00000000c351-0000-p")).ok, true);
  } finally {
    await engine.close();
  }
});

Deno.test("Acceptor.prepare() answers 503 unavailable when its promise watermark cannot be stored (a full disk)", async () => {
  // A directory created at time 0, so the ballot below is newer than the directory's floor.
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", now: () => 0 });
  const full = {
    load: () => Promise.resolve(null),
    save: () => Promise.reject(new Error("No space left on device (os error 28)")),
  };
  try {
    const acceptor = await Acceptor.open(engine, full);
    const err = await assertRejects(
      () => acceptor.prepare("k", "000000000002-0000-p"),
      RingkvError,
    );
    assertEquals([err.code, err.status], ["unavailable", 503]);
    assert(err.message.includes("No space left on device"), err.message);
  } finally {
    await engine.close();
  }
});
