/**
 * `deno run -A --v8-flags=--expose-gc tasks/bench/tombstone_memory.ts [keys]`: the V8 heap a
 * node's store holds per tombstone (keys `session/<uuid>` written with 100 B and deleted), and
 * after the purge of old tombstones forgot them all (docs/replication.md, "Purging old
 * tombstones"). Prints one JSON line: bytes per key of the key strings themselves, of the
 * tombstones beyond them, and after the purge.
 *
 * @module
 */
import { Store } from "../../node/engine/store.ts";
import { HybridClock } from "../../shared/version.ts";

const gc = (globalThis as { gc?: () => void }).gc;
if (gc === undefined) throw new Error("run with --v8-flags=--expose-gc");
const count = Number(Deno.args[0] ?? 200_000);
let wall = 1_700_000_000_000;
const store = new Store(new HybridClock("n1", () => wall), () => wall);
const heap = () => {
  gc();
  gc();
  return Deno.memoryUsage().heapUsed;
};
const value = new TextEncoder().encode("x".repeat(100));
const base = heap();
const keys = Array.from({ length: count }, () => `session/${crypto.randomUUID()}`);
const withKeys = heap();
for (const [i, key] of keys.entries()) {
  store.write({ op: "put", key, value, contentType: "text/plain" }, i);
  store.write({ op: "delete", key }, undefined);
}
const withTombstones = heap();
wall += 3_600_000;
const storedBy = wall - 600_000;
let purged = 0;
for (let old = store.oldTombstones(storedBy, 1000); old.length > 0;) {
  purged += store.purge(old, storedBy).length;
  old = store.oldTombstones(storedBy, 1000);
}
const after = heap();
console.log(JSON.stringify({
  keys: keys.length, // read here: the key strings stay alive until the last heap reading
  purged,
  keyStringBytes: Math.round((withKeys - base) / count * 10) / 10,
  tombstoneBytes: Math.round((withTombstones - withKeys) / count * 10) / 10,
  afterPurgeBytes: Math.round((after - withKeys) / count * 10) / 10,
}));
