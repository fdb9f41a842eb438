import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import {
  caseName,
  type CaseResult,
  type CaseSpec,
  formatCpu,
  formatRatios,
  formatTable,
  formatWatched,
  median,
  medianRun,
  ratioRows,
  spreadPercent,
  WATCH_LOAD,
} from "./table.ts";

function result(rps: number, p99Ms = 2) {
  return { requests: rps, seconds: 1, rps, p50Ms: 1, p99Ms, maxMs: 9, non2xx: 0, socketErrors: 0 };
}

/** A case measured in rounds: requests/s (and p99s) of each round. */
function measured(spec: CaseSpec, rps: number[], p99s: number[] = rps.map(() => 2)): CaseResult {
  const runs = rps.map((r, i) => result(r, p99s[i]));
  return { ...spec, runs, result: medianRun(runs) };
}

const RUN: CaseResult[] = [
  measured({ target: "bare", op: "GET", valueBytes: 100 }, [100_000, 90_000, 95_000]),
  measured({ target: "hono", op: "GET", valueBytes: 100 }, [80_000, 70_000, 75_000]),
  measured({ target: "node", op: "GET", valueBytes: 100 }, [76_000, 56_000, 75_000]),
  measured({ target: "nginx", op: "GET", valueBytes: 100 }, [30_000, 30_000, 30_000], [4, 4, 4]),
  measured({ target: "proxy", op: "GET", valueBytes: 100 }, [40_000, 27_000, 33_000], [7, 4, 5]),
  measured({ target: "proxy", op: "PUT", valueBytes: 100 }, [20_000, 20_000, 20_000]),
  measured({ target: "etcd", op: "GET", valueBytes: 100 }, [8_000, 7_000, 7_500]),
  measured({ target: "cluster", op: "GET", valueBytes: 100 }, [16_000, 15_400, 15_750]),
];

function row(name: string) {
  const found = ratioRows(RUN).find((r) => r.name === name);
  assert(found, `no ratio "${name}" in ${ratioRows(RUN).map((r) => r.name).join(", ")}`);
  return found;
}

Deno.test("ratioRows() pairs the runs of each round and reports median, min and max", () => {
  const proxy = row("proxy GET 100 B / nginx GET 100 B");
  assertAlmostEquals(proxy.median, 1.1, 1e-9); // rounds: 1.333, 0.9, 1.1
  assertAlmostEquals(proxy.min, 0.9, 1e-9);
  assertAlmostEquals(proxy.max, 40 / 30, 1e-9);
  assertEquals(proxy.rounds, 3);
  assertEquals(proxy.met, true); // goal >= 1.0, by the median
  const p99 = row("proxy GET 100 B p99 / nginx GET 100 B p99");
  assertAlmostEquals(p99.median, 1.25, 1e-9); // 1.75, 1.0, 1.25
  assertEquals(p99.met, true); // <= 1.5
});

Deno.test("ratioRows() judges node against the Hono Map node and ringkv against etcd", () => {
  const node = row("node GET 100 B / Hono Map node GET 100 B");
  assertAlmostEquals(node.median, 0.95, 1e-9); // 0.95, 0.8, 1.0
  assertAlmostEquals(node.min, 0.8, 1e-9);
  assertEquals(node.met, true);
  const etcd = row("ringkv 3-replica GET 100 B / etcd 3-member GET 100 B");
  assertAlmostEquals(etcd.median, 2.1, 1e-9); // 2.0, 2.2, 2.1
  assertEquals(etcd.goal, { atLeast: 2.0 });
  assertEquals(etcd.met, true);
  const bare = row("node GET 100 B / bare Deno.serve GET 100 B");
  assertEquals(bare.goal, undefined);
  assertEquals(bare.met, undefined);
});

Deno.test("ratioRows() leaves out ratios whose cases were not both measured", () => {
  const rows = ratioRows(RUN.filter((c) => c.target !== "etcd"));
  assert(!rows.some((r) => r.name.includes("etcd")));
  assert(rows.some((r) => r.name.startsWith("proxy GET 100 B /")));
  assertEquals(ratioRows([]), []);
});

Deno.test("ratioRows() says NOT MET when the median misses the goal", () => {
  const slow = RUN.map((c) => c.target === "cluster" ? measured(c, [8_000, 21_000, 9_000]) : c);
  const etcd = ratioRows(slow).find((r) => r.name.startsWith("ringkv 3-replica GET"))!;
  assertAlmostEquals(etcd.median, 1.2, 1e-9); // 1.0, 3.0, 1.2: one good round is not enough
  assertEquals(etcd.met, false);
  const text = formatRatios([etcd]);
  assert(
    text.includes(
      "| ringkv 3-replica GET 100 B / etcd 3-member GET 100 B | 1.20 | 1.00–3.00 (3) |",
    ),
    text,
  );
  assert(text.includes("| >= 2.0 | NOT MET |"), text);
});

Deno.test("formatRatios() shows every ratio with its range and MET for a goal met", () => {
  const lines = formatRatios(ratioRows(RUN)).split("\n");
  assertEquals(lines.length, 2 + ratioRows(RUN).length);
  const proxy = lines.find((l) => l.startsWith("| proxy GET 100 B / nginx GET 100 B |"))!;
  assertEquals(
    proxy,
    "| proxy GET 100 B / nginx GET 100 B | 1.10 | 0.90–1.33 (3) | >= 1.0 | MET |",
  );
  const info = lines.find((l) => l.startsWith("| Hono Map node GET 100 B / bare"))!;
  assert(info.endsWith("|  |  |"), info);
});

Deno.test("formatTable() has one row per case with its median run and spread", () => {
  const lines = formatTable(RUN).split("\n");
  assertEquals(lines.length, 2 + RUN.length);
  const proxy = lines.find((l) => l.startsWith("| proxy GET 100 B |"))!;
  // Median run 33,000 (p99 5); spread (40,000 - 27,000) / 33,000.
  assertEquals(proxy, "| proxy GET 100 B | 33000 | 39 | 1.00 | 5.00 | 0 |");
});

Deno.test("medianRun() picks the run with the middle requests/s, its latencies with it", () => {
  const runs = [result(300, 30), result(100, 10), result(200, 20)];
  assertEquals(medianRun(runs).p99Ms, 20);
  assertEquals(medianRun([result(100, 1), result(200, 2)]).rps, 100);
});

Deno.test("median() takes the middle value, or the mean of the middle two", () => {
  assertEquals(median([3, 1, 2]), 2);
  assertEquals(median([4, 1, 3, 2]), 2.5);
});

Deno.test("spreadPercent() is (max - min) / median of the runs, and NaN for one run", () => {
  const c = measured({ target: "proxy", op: "GET", valueBytes: 100 }, [180, 200, 220]);
  assertAlmostEquals(spreadPercent(c), 20, 1e-9);
  assert(Number.isNaN(spreadPercent(measured(c, [200]))));
  const line = formatTable([c]).split("\n")[2]!;
  assert(line.startsWith("| proxy GET 100 B | 200 | 20 |"), line);
});

Deno.test("caseName() names the target, the mix and the value size", () => {
  assertEquals(
    caseName({ target: "bare", op: "GET", valueBytes: 100 }),
    "bare Deno.serve GET 100 B",
  );
  assertEquals(
    caseName({ target: "proxy", op: "MIX", valueBytes: 4096 }),
    "proxy 90/10 GET/PUT 4 KiB",
  );
  assertEquals(caseName({ target: "etcd", op: "PUT", valueBytes: 100 }), "etcd 3-member PUT 100 B");
  assertEquals(
    caseName({ target: "watch", op: "PUT", valueBytes: 100 }),
    "ringkv 3-replica PUT 100 B, no watcher",
  );
});

Deno.test("ratioRows() judges PUTs with watchers against PUTs without, same cluster, >= 0.9", () => {
  const none = measured({ target: "watch", op: "PUT", valueBytes: 100 }, [4_000, 5_000, 4_500]);
  const spec: CaseSpec = { target: "watch", op: "PUT", valueBytes: 100, watchers: WATCH_LOAD };
  const watched = measured(spec, [3_800, 3_500, 4_500]);
  const rows = ratioRows([none, watched]);
  assertEquals(rows.length, 1);
  const r = rows[0]!;
  assertEquals(
    r.name,
    "ringkv 3-replica PUT 100 B, 100 idle + 10 busy watchers / " +
      "ringkv 3-replica PUT 100 B, no watcher",
  );
  assertAlmostEquals(r.median, 0.95, 1e-9); // 0.95, 0.7, 1.0
  assertAlmostEquals(r.min, 0.7, 1e-9);
  assertEquals(r.goal, { atLeast: 0.9 });
  assertEquals(r.met, true);
  // Without the watched case there is nothing to compare: the case without is not its own pair.
  assertEquals(ratioRows([none]), []);
});

Deno.test("formatWatched() shows what busy and idle watchers read against the writes", () => {
  const spec: CaseSpec = { target: "watch", op: "PUT", valueBytes: 100, watchers: WATCH_LOAD };
  const c = {
    ...measured(spec, [4_000, 2_000]),
    watched: [{ busyEventsPerSec: 3_960, idleEventsPerSec: 0 }, {
      busyEventsPerSec: 500,
      idleEventsPerSec: 3,
    }],
  };
  assertEquals(
    formatWatched([c, measured({ target: "watch", op: "PUT", valueBytes: 100 }, [1])]),
    "ringkv 3-replica PUT 100 B, 100 idle + 10 busy watchers: " +
      "3960/s per busy watcher (99 % of writes), idle 0/s; " +
      "500/s per busy watcher (25 % of writes), idle 3/s",
  );
  assertEquals(formatWatched(RUN), "");
});

Deno.test("formatCpu() shows each process's medians: µs per request, cores all threads / main thread, the host", () => {
  const use = (proxy: number, main: number) => ({
    perRequest: { w1: 60, proxy0: proxy, bench: 0.1 },
    cores: { w1: 0.2, proxy0: 0.9, bench: 0.001 },
    mainCores: { w1: 0.18, proxy0: main, bench: 0.001 },
    host: { busy: 1.6, cores: 2 },
  });
  const c = {
    ...measured({ target: "watch", op: "PUT", valueBytes: 100 }, [1, 2, 3]),
    cpu: [use(200, 0.9), use(180, 0.88), use(900, 0.5)],
  };
  assertEquals(
    formatCpu([c]),
    "ringkv 3-replica PUT 100 B, no watcher: w1 60 µs 0.20/0.18, proxy0 200 µs 0.90/0.88; " +
      "host 1.60 of 2 cores busy, 0.50 of them by other programs (main thread at its limit: proxy0)",
    "an idle process (here the bench) is left out",
  );
  const withWrk = { ...use(200, 0.5), perRequest: { wrk: 10 }, cores: { wrk: 0.3 } };
  assertEquals(
    formatCpu([{ ...c, cpu: [withWrk] }]),
    "ringkv 3-replica PUT 100 B, no watcher: wrk 10 µs 0.30; host 1.60 of 2 cores busy, " +
      "1.30 of them by other programs",
  );
  const idle = { ...c, cpu: [use(200, 0.5)] };
  assertEquals(
    formatCpu([idle]),
    "ringkv 3-replica PUT 100 B, no watcher: w1 60 µs 0.20/0.18, proxy0 200 µs 0.90/0.50; " +
      "host 1.60 of 2 cores busy, 0.50 of them by other programs",
  );
  assertEquals(formatCpu(RUN), "");
});
