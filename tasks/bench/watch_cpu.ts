/**
 * CPU per event of the proxy's watch pipeline alone, in one process (no HTTP, no nodes): one
 * watch group (stream, merge, cursors, SSE text) over 3 replicas' change logs of N random
 * writes to 100,000 keys, each node's log in write order with neighbours swapped at random and
 * its pages cut at different lengths (as the nodes' polls are), read by 10 members. Prints the
 * CPU µs per event (process.cpuUsage), which the machine's load moves far less than the
 * bench's requests/s. Run it from two checkouts in turn:
 *
 *     deno run -A tasks/bench/watch_cpu.ts
 *     cd /tmp/old && ROOT=/tmp/old deno run -A --config deno.json /path/to/watch_cpu.ts
 *
 * N (default 20,000) sets the writes. SHARED=1 reads the logs as the proxy does, through its
 * shared feed (proxy/watch/shared_feed.ts: one poller per node, polls ~16 ms apart in step, each
 * page's JSON text parsed and kept), with an idle group of 100 members on a prefix nothing is
 * written under beside the busy one: the bench's watch load without HTTP (the run then takes
 * about as long in wall time as the polls need, ~13 s for 20,000 writes).
 *
 * @module
 */
import process from "node:process";
import type { WireChange } from "../../node/http/change_routes.ts";

const root = Deno.env.get("ROOT") ?? new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const N = Number(Deno.env.get("N") ?? 20_000);
const SHARED = Deno.env.get("SHARED") === "1";
const IDS = ["n1", "n2", "n3"];

/** A node's change as the feed serves it (the type only: the modules run are ROOT's). */
type Change = WireChange;

let seed = 12345;
const pick = (n: number) => (seed = (seed * 48271) % 2147483647) % n;

/** Each node's log of the same N writes, in slightly different orders. */
function makeLogs(): Map<string, Change[]> {
  const last = new Map<string, string>();
  const writes = Array.from({ length: N }, (_, i) => {
    const k = `k${String(pick(100_000)).padStart(6, "0")}`;
    const ver = `${(0x190000000000 + i).toString(16).padStart(12, "0")}-0000-p1`;
    const w = { k, ver, prev: last.get(k) ?? null };
    last.set(k, ver);
    return w;
  });
  const value = btoa("v".repeat(100));
  return new Map(IDS.map((id) => {
    const order = writes.slice();
    for (let i = 0; i + 1 < order.length; i++) {
      if (pick(10) < 3) [order[i], order[i + 1]] = [order[i + 1]!, order[i]!];
    }
    const t = "application/octet-stream";
    return [id, order.map((w, i) => ({ s: i + 1, ...w, v: value, t }))];
  }));
}

/** A change feed over `logs`: pages of about 25 changes; at the end, a read that never answers. */
function feedOf(logs: Map<string, Change[]>) {
  const index = new Map([...logs].map(([id, log]) => {
    const byKey = new Map<string, number[]>();
    for (const c of log) byKey.set(c.k, [...(byKey.get(c.k) ?? []), c.s]);
    return [id, byKey];
  }));
  return {
    page(n: { id: string }, _e: number, q: { after?: number; limit: number }) {
      const log = logs.get(n.id)!;
      if (q.after === undefined) return Promise.resolve({ boot: "b", first: 1, last: 0 });
      const changes = log.slice(q.after, q.after + Math.min(q.limit, 21 + pick(9)));
      if (changes.length === 0) return new Promise<never>(() => {});
      const page = { boot: "b", first: 1, last: q.after + changes.length, changes };
      if (!SHARED) return Promise.resolve(page);
      // As the proxy's ChangeFeed: the node's text, parsed, kept beside its objects.
      const text = JSON.stringify(page);
      return Promise.resolve({ ...JSON.parse(text), text });
    },
    versionsAt(n: { id: string }, _e: number, _b: string, at: number, keys: string[]) {
      const log = logs.get(n.id)!;
      const out: Record<string, string | null> = {};
      for (const k of keys) {
        const seqs = index.get(n.id)!.get(k) ?? [];
        const later = seqs.find((s) => s > at);
        const before = seqs.findLast((s) => s <= at);
        out[k] = later !== undefined
          ? log[later - 1]!.prev
          : before !== undefined
          ? log[before - 1]!.ver
          : null;
      }
      return Promise.resolve(out);
    },
  };
}

/** Reads a member until `n` events came; the CPU µs per event and bytes per event. */
async function measure(reader: ReadableStreamDefaultReader<Uint8Array>, n: number) {
  const decoder = new TextDecoder();
  const start = process.cpuUsage();
  const deadline = Date.now() + 120_000;
  let events = 0;
  let bytes = 0;
  let tail = "";
  while (events < n && Date.now() < deadline) {
    const { value, done } = await reader.read();
    if (done) break;
    bytes += value.length;
    const text = tail + decoder.decode(value, { stream: true });
    let end = 0;
    for (let at = text.indexOf("\nid: "); at >= 0; at = text.indexOf("\nid: ", at + 1)) {
      events++;
      end = at + 1;
    }
    tail = text.slice(end);
  }
  const used = process.cpuUsage(start);
  return { events, us: (used.user + used.system) / events, bytes: bytes / events };
}

const logs = makeLogs();
const { watchStream } = await import(`${root}/proxy/watch/watch_stream.ts`);
const { WatchGroup } = await import(`${root}/proxy/watch/watch_group.ts`);
const { eventJson, WATCH_FLUSH_MS } = await import(`${root}/proxy/http/watch_route.ts`);
const { hashKey } = await import(`${root}/shared/ring.ts`);
const cluster = await import(`${root}/tests/doubles/test_cluster.ts`);
// The proxy remembers the ring points of keys it wrote: so does this run.
const known = new Map<string, number>();
for (const c of logs.get("n1")!) if (!known.has(c.k)) known.set(c.k, await hashKey(c.k));
const points = { pointOf: (k: string) => known.get(k) };
const map = { ...cluster.stableMap(cluster.nodeInfos(3)), replicas: 3 };
const topology = new cluster.FakeTopology(await cluster.topologyOf(map));
const { SharedFeed } = await import(`${root}/proxy/watch/shared_feed.ts`);
const feed = SHARED ? new SharedFeed(feedOf(logs)) : feedOf(logs);
const deps = { topology, feed, waitMs: 5000, points };
const groupOptions = {
  eventData: (e: unknown) => JSON.stringify(eventJson(e)),
  keepaliveMs: 60_000,
  maxUnreadBytes: 64 << 20,
  flushMs: WATCH_FLUSH_MS, // each tree's own
};
const group = new WatchGroup(
  (signal: AbortSignal) => watchStream(deps, "", undefined, signal),
  groupOptions,
);
const stop = new AbortController();
const readers = Array.from({ length: 10 }, () => group.join(stop.signal, () => {}).getReader());
if (SHARED) {
  const idle = new WatchGroup(
    (signal: AbortSignal) => watchStream(deps, "idle/", undefined, signal),
    groupOptions,
  );
  for (let i = 0; i < 100; i++) readers.push(idle.join(stop.signal, () => {}).getReader());
}
for (const r of readers.slice(1)) {
  void (async () => {
    while (!(await r.read()).done);
  })();
}
const got = await measure(readers[0]!, N);
stop.abort();
await Promise.all(readers.map((r) => r.cancel()));
console.log(
  `${root}${SHARED ? " (shared feed)" : ""}: ${got.events} events, proxy watch CPU ${
    got.us.toFixed(1)
  } µs per event, ` +
    `${got.bytes.toFixed(0)} bytes per event`,
);
