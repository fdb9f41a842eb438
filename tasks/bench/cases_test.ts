import { assert, assertEquals, assertThrows } from "@std/assert";
import { ConfigError } from "../../shared/config.ts";
import { CASES, onlyTargets, planCases, TARGETS } from "./cases.ts";
import { type CaseSpec, COMPARISONS, sameCase } from "./table.ts";

Deno.test("onlyTargets() is every target without --only, the named ones with it", () => {
  assertEquals(onlyTargets([]), [...TARGETS]);
  assertEquals(onlyTargets(["etcd", "cluster"]), ["etcd", "cluster"]);
  assertThrows(() => onlyTargets(["etc"]), ConfigError, "no such target");
});

Deno.test("planCases() skips just the reference whose tool is missing, saying how to install it", () => {
  const plan = planCases(TARGETS, new Set(["etcd"]));
  assert(!plan.cases.some((c) => c.target === "etcd"));
  assert(plan.cases.some((c) => c.target === "cluster"));
  assert(plan.cases.some((c) => c.target === "nginx"));
  assertEquals(plan.skipped, [
    "Skipping the etcd reference: etcd is not installed (apt-get install etcd-server).",
  ]);
  const noNginx = planCases(TARGETS, new Set(["nginx"]));
  assertEquals(noNginx.cases.length, CASES.length - 4);
  assert(noNginx.skipped[0]!.includes("apt-get install nginx"));
  assertEquals(planCases(TARGETS, new Set()).cases, [...CASES]);
});

Deno.test("planCases() keeps the cases' order and only the targets asked for", () => {
  const plan = planCases(["cluster", "etcd"], new Set());
  assertEquals(plan.cases.map((c) => `${c.target} ${c.op}`), [
    "etcd GET",
    "cluster GET",
    "etcd PUT",
    "cluster PUT",
  ]);
  assertEquals(planCases(["etcd"], new Set(["etcd"])).cases, []);
});

Deno.test("--only watch runs PUTs without watchers, then with 100 idle and 10 busy, needing no tool", () => {
  const plan = planCases(onlyTargets(["watch"]), new Set(["nginx", "etcd"]));
  assertEquals(plan.skipped, []);
  assertEquals(plan.cases, [
    { target: "watch", op: "PUT", valueBytes: 100 },
    { target: "watch", op: "PUT", valueBytes: 100, watchers: { idle: 100, busy: 10 } },
  ]);
});

Deno.test("every ratio the bench reports compares two cases a round measures", () => {
  const has = (s: CaseSpec) => CASES.some((c) => sameCase(c, s));
  for (const cmp of COMPARISONS) assert(has(cmp.a) && has(cmp.b), JSON.stringify(cmp));
});

Deno.test("each reference is measured right before what it is compared with", () => {
  const index = (s: CaseSpec) => CASES.findIndex((c) => sameCase(c, s));
  for (const cmp of COMPARISONS.filter((c) => c.goal !== undefined)) {
    assertEquals(Math.abs(index(cmp.a) - index(cmp.b)), 1, JSON.stringify(cmp));
  }
});
