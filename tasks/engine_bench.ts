/**
 * Measures the node storage engine (not a test): `deno run -A tasks/engine_bench.ts`.
 *
 * (a) PUT cost with 1 key stored vs 1,000,000 (disk I/O left out, to show the store's O(1));
 * (b) openEngine() time with 1,000,000 keys of 100 bytes, from the log only and from a
 *     snapshot (real files in a temp dir, real fsyncs);
 * (c) process RSS per key after writing 1,000,000 keys of 100 bytes (in a fresh process).
 *
 * @module
 */
import { createDenoDisk } from "../node/storage/disk.ts";
import type { NodeEngine, WriteOp } from "../node/engine/engine.ts";
import { openEngine } from "../node/engine/open_engine.ts";
import { nullDisk } from "./bench/null_disk.ts";

const KEYS = 1_000_000;
const BATCH = 1000;
const encoder = new TextEncoder();

function value(i: number): Uint8Array {
  return encoder.encode(`value-${i}-`.padEnd(100, "abcdefghij"));
}

async function load(engine: NodeEngine, count: number, from = 0): Promise<void> {
  for (let start = from; start < from + count; start += BATCH) {
    const ops: WriteOp[] = [];
    for (let i = start; i < Math.min(start + BATCH, from + count); i++) {
      ops.push({ op: "put", key: `key-${i}`, value: value(i), contentType: "text/plain" });
    }
    await engine.write(ops);
  }
}

/** Microseconds per sequential single-key PUT (new keys, then overwrites). */
async function putCost(engine: NodeEngine, label: string): Promise<void> {
  const n = 20_000;
  for (const kind of ["new", "overwrite"]) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) {
      const key = kind === "new" ? `bench-${label}-${i}` : `bench-${label}-${i % 100}`;
      await engine.write([{ op: "put", key, value: value(i), contentType: "text/plain" }]);
    }
    const us = ((performance.now() - t0) * 1000) / n;
    console.log(
      `(a) PUT ${kind.padEnd(9)} with ${label.padStart(9)} keys stored: ${us.toFixed(1)} µs`,
    );
  }
}

async function benchPut(): Promise<void> {
  const small = await openEngine({ disk: nullDisk(), id: "bench" });
  await load(small, 1);
  await putCost(small, "1");
  const big = await openEngine({ disk: nullDisk(), id: "bench" });
  await load(big, KEYS);
  await putCost(big, "1000000");
}

async function benchRestart(): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-engine-bench-" });
  try {
    const disk = await createDenoDisk(dir);
    // No snapshot.reserve: it would snapshot the growing store, and "log only" would not be.
    const engine = await openEngine({
      disk,
      id: "bench",
      snapshotEveryBytes: Infinity,
      reserveMinBytes: 0,
    });
    const t0 = performance.now();
    await load(engine, KEYS);
    const loadS = (performance.now() - t0) / 1000;
    console.log(`    loaded ${KEYS} keys in ${loadS.toFixed(1)} s (${BATCH} per write call)`);
    await disk.close();
    await timeOpen(dir, "log only");
    const reopened = await openEngine({ disk: await createDenoDisk(dir), reserveMinBytes: 0 });
    await reopened.close();
    await timeOpen(dir, "snapshot");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function timeOpen(dir: string, label: string): Promise<void> {
  const t0 = performance.now();
  const disk = await createDenoDisk(dir);
  const engine = await openEngine({ disk, reserveMinBytes: 0 });
  const s = (performance.now() - t0) / 1000;
  const { keys, walBytes, snapshotBytes } = engine.stats();
  const mb = (n: number) => (n / 1e6).toFixed(0);
  console.log(
    `(b) restart from ${label.padEnd(8)}: ${s.toFixed(2)} s for ${keys} keys ` +
      `(wal ${mb(walBytes)} MB, snapshot ${mb(snapshotBytes)} MB)`,
  );
  await disk.close();
}

async function benchRss(): Promise<void> {
  type Gc = (options?: { type: string; execution: string; flavor: string }) => void;
  const gc = (globalThis as { gc?: Gc }).gc;
  gc?.();
  const before = Deno.memoryUsage().rss;
  const engine = await openEngine({ disk: nullDisk(), id: "bench" });
  await load(engine, KEYS);
  const report = (label: string) => {
    const { rss, heapUsed, heapTotal } = Deno.memoryUsage();
    const per = (n: number) => (n / KEYS).toFixed(0);
    console.log(
      `(c) ${label}: RSS ${per(rss)} bytes/key (process total; growth ${per(rss - before)}), ` +
        `V8 heap used ${per(heapUsed)}, heap total ${per(heapTotal)}; keys=${engine.stats().keys}`,
    );
  };
  report("right after loading      ");
  // A full compacting GC: what the store itself holds, without the load's garbage.
  gc?.({ type: "major", execution: "sync", flavor: "last-resort" });
  report("after a compacting full GC");
}

if (Deno.args[0] === "rss") {
  await benchRss();
} else {
  await benchPut();
  await benchRestart();
  // A fresh process, so (a) and (b) leave nothing behind in its RSS.
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--expose-gc", import.meta.filename!, "rss"],
    stdout: "inherit",
    stderr: "inherit",
  });
  const { code } = await child.output();
  if (code !== 0) throw new Error(`Cannot measure RSS: the child exited with ${code}`);
}
