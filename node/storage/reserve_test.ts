import { assert, assertEquals, assertRejects } from "@std/assert";
import { createFakeDisk, NO_SPACE } from "../../tests/doubles/fake_disk.ts";
import { RESERVE_FILE, reserveFor, SpaceReserve } from "./reserve.ts";

Deno.test("SpaceReserve.resize() grows the file with bytes that do not compress, and cuts it", async () => {
  const disk = createFakeDisk();
  const reserve = await SpaceReserve.open(disk);
  await reserve.resize(3 * 1024 * 1024 + 5);
  const bytes = disk.bytes(RESERVE_FILE)!;
  assertEquals([bytes.length, reserve.bytes], [3 * 1024 * 1024 + 5, 3 * 1024 * 1024 + 5]);
  assert(bytes.slice(0, 4096).some((b) => b !== 0), "the reserve is zeros");
  // No block repeats within a chunk: a compressing file system's record (btrfs: 128 KiB)
  // would keep a repeated block in half the space.
  const blocks = new Set<string>();
  for (let at = 0; at < 1024 * 1024; at += 65536) {
    blocks.add(btoa(String.fromCharCode(...bytes.subarray(at, at + 64))));
  }
  assertEquals(blocks.size, 16, "64 KiB blocks repeat in the reserve");
  await reserve.resize(1000);
  assertEquals([disk.bytes(RESERVE_FILE)!.length, reserve.bytes], [1000, 1000]);
  assertEquals((await SpaceReserve.open(disk.reopen())).bytes, 1000);
});

Deno.test("SpaceReserve.resize() on a full disk keeps what it wrote, counts it, and throws ENOSPC", async () => {
  const disk = createFakeDisk();
  disk.setCapacity(5000);
  const reserve = await SpaceReserve.open(disk);
  const err = await assertRejects(() => reserve.resize(8000));
  assert(err.message.includes(NO_SPACE), err.message);
  assertEquals([reserve.bytes, disk.bytes(RESERVE_FILE)!.length], [5000, 5000]);
  await reserve.release();
  assertEquals([reserve.bytes, disk.bytes(RESERVE_FILE)], [0, null]);
});

Deno.test("reserveFor() needs the data plus a quarter of the minimum, wants half again plus the minimum; a minimum of 0 turns it off", () => {
  assertEquals(reserveFor(0, 65536), { needed: 16384, wanted: 65536 });
  assertEquals(reserveFor(1000, 100), { needed: 1025, wanted: 1600 });
  assertEquals(reserveFor(1000, 0), { needed: 0, wanted: 0 });
});
