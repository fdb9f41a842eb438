import { assertEquals, assertRejects } from "@std/assert";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import type { Stored } from "../engine/packed.ts";
import { readSnapshot, SnapshotDamage, writeSnapshot } from "./snapshot.ts";

/** Entries with short, long, non-ASCII and tombstone lines, so reads cut lines everywhere. */
function entries(): [string, Stored][] {
  const out: [string, Stored][] = [];
  for (let i = 0; i < 40; i++) {
    const data = i % 7 === 3 ? "é✓".repeat(i) : "x".repeat((i * 37) % 300);
    const kind = i % 11 === 5 ? "tombstone" : "text";
    const version = `0000000000${String(i).padStart(2, "0")}-0000-n1`;
    out.push([`key/${i}`, {
      kind,
      data: kind === "tombstone" ? "" : data,
      hash: i * 1000,
      contentType: kind === "tombstone" ? "" : "text/plain",
      version,
    }]);
  }
  return out;
}

const READS = [1, 2, 7, 64, 333, 4096, 1 << 20];

Deno.test("readSnapshot() gives back every entry, whatever the size of its reads", async () => {
  const disk = createFakeDisk();
  const written = entries();
  await writeSnapshot(disk, "snapshot.json", "n1", written);
  for (const readBytes of READS) {
    const seen: [string, Stored][] = [];
    const info = await readSnapshot(disk, "snapshot.json", (k, e) => seen.push([k, e]), readBytes);
    assertEquals(seen, written, `reads of ${readBytes} bytes`);
    assertEquals(info?.count, written.length);
  }
});

Deno.test("readSnapshot() names the byte offset of a damaged line, whatever the size of its reads", async () => {
  const disk = createFakeDisk();
  await writeSnapshot(disk, "snapshot.json", "n1", entries());
  const bytes = disk.bytes("snapshot.json")!;
  const lineStarts = [0];
  for (let i = 0; i < bytes.length - 1; i++) if (bytes[i] === 0x0a) lineStarts.push(i + 1);
  // Lines after non-ASCII ones: byte offsets differ from char offsets there.
  for (const line of [1, 5, 12, 26, 40]) {
    const start = lineStarts[line]!;
    const damaged = createFakeDisk();
    await damaged.writeAtomic("snapshot.json", bytes);
    damaged.flip("snapshot.json", start + 1);
    for (const readBytes of READS) {
      const err = await assertRejects(
        () => readSnapshot(damaged, "snapshot.json", () => {}, readBytes),
        SnapshotDamage,
      );
      assertEquals(err.offset, start, `line ${line}, reads of ${readBytes} bytes`);
    }
  }
});

Deno.test("readSnapshot() refuses a snapshot whose last line has no newline", async () => {
  const disk = createFakeDisk();
  await writeSnapshot(disk, "snapshot.json", "n1", entries());
  const bytes = disk.bytes("snapshot.json")!;
  await disk.writeAtomic("snapshot.json", bytes.subarray(0, bytes.length - 1));
  for (const readBytes of READS) {
    const err = await assertRejects(
      () => readSnapshot(disk, "snapshot.json", () => {}, readBytes),
      SnapshotDamage,
    );
    assertEquals(err.offset, bytes.lastIndexOf(0x0a, bytes.length - 2) + 1);
  }
});
