import { assertEquals } from "@std/assert";
import { lostWrites, type ProxiedOp, shares } from "./fault_stats.ts";
import type { Operation } from "./linearizability.ts";

const put = (value: string, start: number, end: number, ok = true): Operation => ({
  key: "k",
  client: 0,
  call: { op: "put", value },
  result: ok ? { status: 200, version: `v-${value}` } : { status: "unknown" },
  start,
  end,
});
const read = (value: string | null): Operation => ({
  key: "k",
  client: -1,
  call: { op: "get" },
  result: value === null ? { status: 404 } : { status: 200, value },
  start: 100,
  end: 101,
});

Deno.test("lostWrites() finds the last acknowledged write missing from the final read", () => {
  const history = [put("a", 0, 1), put("b", 2, 3)];
  assertEquals(lostWrites(history, [read("b")]), []);
  assertEquals(lostWrites(history, [read("a")]), ["k: wrote b, read a"]);
  assertEquals(lostWrites(history, [read(null)]), ["k: wrote b, read null"]);
});

Deno.test("lostWrites() accepts any outcome when a later write's answer is unknown or overlaps", () => {
  assertEquals(lostWrites([put("a", 0, 1), put("b", 2, 3, false)], [read("a")]), []);
  assertEquals(lostWrites([put("a", 0, 5), put("b", 2, 3)], [read("a")]), []);
});

Deno.test("shares() counts a majority proxy's requests only after the grace of a fault", () => {
  const op = (proxy: string, start: number, ok: boolean): ProxiedOp => ({
    ...put("x", start, start + 1, ok),
    proxy,
  });
  const ops = [op("p1", 10, false), op("p1", 30, true), op("p2", 30, false), op("p1", 90, false)];
  const got = shares(ops, [{ start: 0, end: 50, majority: ["p1"] }], 20);
  assertEquals(got.all, { requests: 4, indefinite: 3 });
  assertEquals(got.majority, { requests: 1, indefinite: 0 });
  assertEquals(got.calm, { requests: 1, indefinite: 1 });
});
