import { assert, assertEquals, assertRejects } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import { formatVersion } from "../../shared/version.ts";
import {
  createFakeDisk,
  type FakeDisk,
  IO_ERROR,
  NO_SPACE,
} from "../../tests/doubles/fake_disk.ts";
import { open, textOf } from "../../tests/doubles/engine_test_helpers.ts";
import { encodeLine, scanLines } from "./log_format.ts";
import { Wal } from "./wal.ts";

const LOG = "wal.jsonl";

/** A log record that sets `key` to the text `value`, as the engine logs a put. */
function setLine(key: string, value: string, wall: number): Uint8Array {
  const ver = formatVersion(wall, 0, "n1");
  return encodeLine({ set: [{ k: key, h: 7, ver, t: "text/plain", s: value }] });
}

/** A log on an empty fake disk that holds one durable record, `a`. */
async function oneDurable(): Promise<{ disk: FakeDisk; wal: Wal }> {
  const disk = createFakeDisk();
  await disk.writeAtomic(LOG, new Uint8Array(0));
  const wal = new Wal(disk, LOG, 0);
  await wal.durable(wal.append(setLine("a", "one", 1)));
  return { disk, wal };
}

function keysLogged(disk: FakeDisk): unknown[] {
  const bytes = disk.bytes(LOG)!;
  const scan = scanLines(bytes);
  assertEquals([scan.goodLength, scan.damage, scan.torn], [bytes.length, undefined, undefined]);
  return scan.records.map(({ record }) => (record.set as { k: string }[])[0]!.k);
}

Deno.test("Wal: a line lost to a failed fsync is never reported durable, not even after reopen()", async () => {
  const { disk, wal } = await oneDurable();
  disk.failSyncs(1);
  const lost = wal.append(setLine("b", "two", 2));
  const err = await assertRejects(() => wal.durable(lost), RingkvError);
  assert(err.message.includes(IO_ERROR), err.message);
  await wal.reopen();
  await assertRejects(() => wal.durable(lost), RingkvError, IO_ERROR);
  await wal.durable(1); // the round before the failure stays durable
  const later = wal.append(setLine("c", "three", 3));
  await wal.durable(later);
  await wal.flush();
  await assertRejects(() => wal.durable(lost), RingkvError, IO_ERROR);
  assertEquals(keysLogged(disk.crash()), ["a", "c"]);
});

Deno.test("Wal.reopen() cuts an append that failed part-way, so the next line starts on a clean line", async () => {
  const { disk, wal } = await oneDurable();
  const before = disk.bytes(LOG)!.length;
  disk.setCapacity(before + 20); // "b"'s line is longer: 20 of its bytes land, then ENOSPC
  const torn = wal.append(setLine("b", "two", 2));
  await assertRejects(() => wal.durable(torn), RingkvError, NO_SPACE);
  assertEquals(disk.bytes(LOG)!.length, before + 20);
  disk.setCapacity(undefined);
  await wal.reopen();
  assertEquals(disk.bytes(LOG)!.length, before);
  await wal.durable(wal.append(setLine("c", "three", 3)));
  assertEquals(keysLogged(disk), ["a", "c"]);
  // An engine started on what the disk kept has the later key and not the torn one.
  const engine = await open(disk.crash());
  try {
    const texts = await Promise.all(["a", "b", "c"].map((k) => textOf(engine, k)));
    assertEquals(texts, ["one", undefined, "three"]);
  } finally {
    await engine.close();
  }
});
