/**
 * What the proxy's shared node buffer (proxy/watch/shared_feed.ts of the checkout at ROOT)
 * leaves to the garbage collector, alone in one process: a fake node log growing by RATE
 * changes/s (100 B values, each change's JSON made when read, as a node writes it), polled
 * through `SharedFeed` by one busy reader (prefix "") and one idle one (prefix "zz") for SECONDS.
 * The run is a child with V8's `--trace-gc-nvp`; prints, per change, the CPU, the scavenges'
 * pause and the bytes promoted and copied in the young generation. Run it for two checkouts:
 *
 *     ROOT=/tmp/old deno run -A tasks/bench/buffer_gc.ts
 *
 * @module
 */
import process from "node:process";

const root = Deno.env.get("ROOT") ?? new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const RATE = Number(Deno.env.get("RATE") ?? 3000);
const SECONDS = Number(Deno.env.get("SECONDS") ?? 10);

/** The JSON of change `s`, as a node's change page holds it. */
function changeJson(s: number): string {
  const k = `k${String((s * 7919) % 100000).padStart(6, "0")}`;
  const ver = (n: number) => `0190000000${String(n).padStart(8, "0")}-0000-p1`;
  const v = btoa("v".repeat(100));
  return JSON.stringify({ s, k, ver: ver(s), prev: ver(s - 1), v, t: "application/octet-stream" });
}

/** The child: the buffer under a busy and an idle reader; prints its CPU per change. */
async function child(): Promise<void> {
  const { SharedFeed } = await import(`${root}/proxy/watch/shared_feed.ts`);
  let seq = 0;
  const feed = {
    page(_n: unknown, _e: number, q: { after?: number; limit: number; prefix: string }) {
      const after = q.after ?? seq;
      const items: string[] = [];
      for (let i = after + 1; i <= seq && items.length < q.limit; i++) items.push(changeJson(i));
      const last = after + items.length;
      const text = `{"boot":"b","first":1,"last":${last},"changes":[${items.join(",")}]}`;
      const page = JSON.parse(text);
      page.text = text;
      page.changes = page.changes.filter((c: { k: string }) => c.k.startsWith(q.prefix));
      return new Promise((r) => setTimeout(() => r(page), 1));
    },
    versionsAt: () => Promise.resolve({}),
  };
  const shared = new SharedFeed(feed, 50, 0, 16);
  let stop = false;
  const grow = setInterval(() => seq += RATE / 100, 10);
  const reader = async (prefix: string) => {
    let after = seq;
    for (let reads = 0; !stop && reads < 1e7; reads++) {
      const q = { boot: "b", after, prefix, waitMs: 50, limit: 500 };
      after = (await shared.page({ id: "n1", url: "http://n1" }, 1, q)).last;
    }
  };
  const t0 = process.cpuUsage();
  const readers = [reader(""), reader("zz")];
  await new Promise((r) => setTimeout(r, SECONDS * 1000));
  stop = true;
  clearInterval(grow);
  await Promise.all(readers);
  const used = process.cpuUsage(t0);
  console.log(`RESULT ${seq} ${(used.user + used.system) / seq}`);
}

/** Runs the child and sums its collections. */
async function main(): Promise<void> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", "--v8-flags=--trace-gc,--trace-gc-nvp", import.meta.filename!, "--child"],
    env: { ROOT: root },
    stderr: "inherit",
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const result = /RESULT (\d+) ([\d.]+)/.exec(text);
  if (!out.success || result === null) throw new Error(`buffer_gc: the child failed: ${text}`);
  const changes = Number(result[1]);
  const s = { n: 0, ms: 0, promoted: 0, survived: 0 };
  for (const m of text.matchAll(/GC: (\{[^\n]*\})/g)) {
    const gc = JSON.parse(m[1]!);
    if (gc.gc !== "s") continue;
    s.n++;
    s.ms += gc.pause;
    s.promoted += gc.promoted;
    s.survived += gc.new_space_survived;
  }
  console.log(
    `${root}: ${changes} changes, CPU ${Number(result[2]).toFixed(2)} µs per change; ${s.n} ` +
      `scavenges, pause ${(s.ms * 1000 / changes).toFixed(2)} µs, promoted ${
        (s.promoted / changes).toFixed(0)
      } B and survived ${(s.survived / changes).toFixed(0)} B per change`,
  );
}

if (Deno.args.includes("--child")) await child();
else await main();
