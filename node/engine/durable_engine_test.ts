import { assert, assertEquals, assertRejects } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import { formatVersion } from "../../shared/version.ts";
import {
  atomicWritesGated,
  open,
  put,
  settle,
  textOf,
} from "../../tests/doubles/engine_test_helpers.ts";

Deno.test("a write and an ingest whose fence refuses once they waited behind a snapshot change nothing, and give back the room they held", async () => {
  const gated = atomicWritesGated();
  const engine = await open(gated.disk, { snapshotEveryBytes: 4096 });
  try {
    gated.hold("snapshot.json");
    for (let i = 0; gated.waiting("snapshot.json") === 0; i++) {
      assert(i < 1000, "no snapshot started");
      await engine.write([put(`filler${i}`, "x".repeat(200))]);
      await settle();
    }
    let stale = false;
    const fence = () => {
      if (stale) throw new RingkvError("stale_epoch", "a newer map came meanwhile");
    };
    const big = "v".repeat(70 * 1024); // writes this large wait for the snapshot's room
    const write = engine.write([put("written", big)], fence);
    const ingest = engine.ingest([{
      k: "ingested",
      v: btoa(big),
      t: "text/plain",
      ver: formatVersion(1, 0, "px"),
      h: 1,
    }], fence);
    await settle();
    stale = true; // the map push lands while both wait
    gated.release("snapshot.json");
    await assertRejects(() => write, RingkvError, "a newer map came meanwhile");
    await assertRejects(() => ingest, RingkvError, "a newer map came meanwhile");
    assertEquals([await textOf(engine, "written"), await textOf(engine, "ingested")], [
      undefined,
      undefined,
    ]);
    // Nothing is left holding the room: the next large write goes through.
    await engine.write([put("after", big)]);
    assertEquals((await textOf(engine, "after"))?.length, big.length);
  } finally {
    await engine.close();
  }
});
