import { assert, assertAlmostEquals, assertEquals } from "@std/assert";
import {
  caseName,
  type CaseResult,
  formatTable,
  formatTargets,
  medianRun,
  spreadPercent,
  targetChecks,
} from "./table.ts";

function result(rps: number, p99Ms = 2) {
  return { requests: rps, seconds: 1, rps, p50Ms: 1, p99Ms, maxMs: 9, non2xx: 0, socketErrors: 0 };
}

const RUN: CaseResult[] = [
  { target: "bare", op: "GET", valueBytes: 100, result: result(100_000) },
  { target: "node", op: "GET", valueBytes: 100, result: result(80_000) },
  { target: "nginx", op: "GET", valueBytes: 100, result: result(30_000, 4) },
  { target: "proxy", op: "GET", valueBytes: 100, result: result(40_000, 7) },
  { target: "proxy", op: "PUT", valueBytes: 100, result: result(20_000) },
  { target: "nginx", op: "GET", valueBytes: 4096, result: result(20_000) },
  { target: "proxy", op: "GET", valueBytes: 4096, result: result(30_000) },
];

Deno.test("targetChecks() takes each ratio from cases of the same run", () => {
  const checks = targetChecks(RUN);
  assertEquals(checks.map((c) => c.met), [true, false, false, false]);
  assertAlmostEquals(checks[0]!.value, 40 / 30, 1e-9); // proxy GET / nginx GET
  assertAlmostEquals(checks[1]!.value, 7 / 4, 1e-9); // p99 ratio
  assertAlmostEquals(checks[2]!.value, 0.5, 1e-9); // PUT / GET
  assertAlmostEquals(checks[3]!.value, 0.8, 1e-9); // node / bare
});

Deno.test("targetChecks() leaves out targets whose cases were not run", () => {
  const checks = targetChecks(RUN.filter((c) => c.target !== "bare"));
  assertEquals(checks.length, 3);
  assert(!checks.some((c) => c.name.includes("bare")));
});

Deno.test("formatTable() compares each case with nginx at the same op and size", () => {
  const lines = formatTable(RUN).split("\n");
  assertEquals(lines.length, 2 + RUN.length);
  const proxy4k = lines.find((l) => l.startsWith("| proxy GET 4 KiB |"))!;
  assert(proxy4k.includes("| 1.50 |"), proxy4k); // 30,000 / 20,000
  const proxyPut = lines.find((l) => l.startsWith("| proxy PUT 100 B |"))!;
  assert(proxyPut.includes("| - | 0.20 |"), proxyPut); // no nginx PUT measured; vs bare 0.2
});

Deno.test("medianRun() picks the run with the middle requests/s, its latencies with it", () => {
  const runs = [result(300, 30), result(100, 10), result(200, 20)];
  assertEquals(medianRun(runs).p99Ms, 20);
  assertEquals(medianRun([result(100, 1), result(200, 2)]).rps, 100);
});

Deno.test("spreadPercent() is (max - min) / median of the runs, and NaN for one run", () => {
  const c: CaseResult = {
    target: "proxy",
    op: "GET",
    valueBytes: 100,
    result: result(200),
    rpsRuns: [180, 200, 220],
  };
  assertAlmostEquals(spreadPercent(c), 20, 1e-9);
  assert(Number.isNaN(spreadPercent({ ...c, rpsRuns: [200] })));
  const row = formatTable([c]).split("\n")[2]!;
  assert(row.startsWith("| proxy GET 100 B | 200 | 20 |"), row);
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
});

Deno.test("formatTargets() says MET or NOT MET with the goal", () => {
  const text = formatTargets(targetChecks(RUN));
  assert(text.startsWith("MET "));
  assert(text.includes("NOT MET  proxy durable PUT / proxy GET (req/s): 0.50 (goal >= 0.7)"));
});
