/**
 * What streams behind the live pages cost the proxy's node buffer (proxy/watch/page_store.ts
 * of the checkout at ROOT), in-process: pages of 30 changes (100 B values, as a node writes
 * them) pushed one by one, and after each push READERS readers each read a page's worth,
 * 6–9 pages behind the head (a resumed cursor, several prefixes lagging together). Prints the
 * CPU per change pushed and, where the store counts them, the pages it parsed again.
 *
 *     ROOT=/tmp/old deno run -A tasks/bench/lagging_reads.ts
 *
 * @module
 */
const root = Deno.env.get("ROOT") ?? new URL("../..", import.meta.url).pathname.replace(/\/$/, "");
const READERS = Number(Deno.env.get("READERS") ?? 10);
const PAGES = 3000;
const PER_PAGE = 30;

interface Store {
  push(changes: unknown[], text: string): void;
  trim(keep: number): void;
  scan(after: number, visit: (c: { s: number }) => boolean | void): void;
  parses?: number;
}

const { PageStore } = await import(`${root}/proxy/watch/page_store.ts`) as {
  PageStore: new () => Store;
};
const ver = (n: number) => `0190000000${String(n).padStart(8, "0")}-0000-p1`;
const store = new PageStore();
let seq = 0;
const t0 = performance.now();
for (let p = 0; p < PAGES; p++) {
  const changes = Array.from({ length: PER_PAGE }, () => {
    seq++;
    const k = `k${String((seq * 7919) % 100000).padStart(6, "0")}`;
    const v = btoa("v".repeat(100));
    return { s: seq, k, ver: ver(seq), prev: ver(seq - 1), v, t: "application/octet-stream" };
  });
  store.push(changes, JSON.stringify({ boot: "b", first: 1, last: seq, changes }));
  store.trim(20_000);
  for (let r = 0; r < READERS; r++) {
    let n = 0;
    store.scan(seq - 7 * PER_PAGE - r * 3, () => ++n >= PER_PAGE);
  }
}
const us = (performance.now() - t0) * 1000 / seq;
console.log(
  `${root}: ${
    us.toFixed(2)
  } µs per change pushed with ${READERS} lagging readers; pages parsed again: ${
    store.parses ?? "not counted"
  } of ${PAGES}`,
);
