/**
 * Measures `POST /internal/digest`'s work on a node holding many entries (not a test):
 * `deno run -A tasks/digest_bench.ts [entries]` (default 250,000, 9 in 10 of them tombstones,
 * as a node keeps every key ever deleted or expired). Prints the time of the anti-entropy
 * sweep's digest of all of a replica set's 32 buckets in one call, and in calls of
 * {@link DIGEST_BUCKETS} (the slowest call, and all of them).
 *
 * @module
 */
import { nullDisk } from "./bench/null_disk.ts";
import { openEngine } from "../node/engine/open_engine.ts";
import { digestsOf } from "../node/http/digest_routes.ts";
import { hashKey, type Range, RING_SIZE } from "../shared/ring.ts";
import { formatVersion } from "../shared/version.ts";
import type { WireEntry } from "../shared/wire.ts";
import { DIGEST_BUCKETS } from "../proxy/replication/anti_entropy.ts";

/** 32 buckets of 32 arcs of 1/1024 of the ring: the whole ring, as a 3-node sweep cuts it. */
function buckets(): Range[][] {
  const arc = RING_SIZE / 1024;
  return Array.from({ length: 32 }, (_, b) =>
    Array.from({ length: 32 }, (_, r) => {
      const start = (b * 32 + r) * arc;
      return { start, end: start + arc };
    }));
}

async function main(count: number): Promise<void> {
  const engine = await openEngine({ disk: nullDisk(), id: "n1", log: () => {} });
  const wall = Date.now() - 3_600_000;
  for (let i = 0; i < count; i += 1000) {
    const batch: WireEntry[] = [];
    for (let j = i; j < Math.min(count, i + 1000); j++) {
      const k = `session/${crypto.randomUUID()}`.padEnd(44, "x");
      const live = j % 10 === 0;
      const ver = formatVersion(wall + j, 0, "p0a1b2c3d4e5f");
      batch.push({ k, v: live ? btoa("v".repeat(64)) : null, ver, h: await hashKey(k) });
    }
    await engine.ingest(batch);
  }
  const all = buckets();
  for (let round = 0; round < 3; round++) {
    let t = performance.now();
    await digestsOf(engine, all);
    const one = performance.now() - t;
    let slowest = 0;
    let total = 0;
    for (let i = 0; i < all.length; i += DIGEST_BUCKETS) {
      t = performance.now();
      await digestsOf(engine, all.slice(i, i + DIGEST_BUCKETS));
      const ms = performance.now() - t;
      slowest = Math.max(slowest, ms);
      total += ms;
    }
    console.log(
      `${count} entries: one call of 32 buckets ${one.toFixed(0)} ms; ` +
        `calls of ${DIGEST_BUCKETS}: slowest ${slowest.toFixed(0)} ms, all ${total.toFixed(0)} ms`,
    );
  }
  await engine.close();
}

if (import.meta.main) await main(Number(Deno.args[0] ?? 250_000));
