/**
 * What a bench run measures: its cases in order (each next to its reference, so a round
 * measures both within seconds), the tools a reference needs beyond wrk and Deno, and the
 * choice of cases from `--only` and the tools installed. Pure.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { planCases } from "./cases.ts";
 * const plan = planCases(["nginx", "proxy"], new Set(["nginx"]));
 * assertEquals(plan.cases.every((c) => c.target === "proxy"), true);
 * assertEquals(plan.skipped.length, 1);
 * ```
 */
import { ConfigError } from "../../shared/config.ts";
import { type CaseSpec, type Target, WATCH_LOAD } from "./table.ts";

/** Every target, in the order of the cases. */
export const TARGETS: readonly Target[] = [
  "bare",
  "floor",
  "hono",
  "node",
  "nginx",
  "proxy",
  "etcd",
  "cluster",
  "watch",
];

/** The cases of a round, in order: references next to what they are compared with. */
export const CASES: readonly CaseSpec[] = [
  { target: "bare", op: "GET", valueBytes: 100 },
  { target: "floor", op: "GET", valueBytes: 100 },
  { target: "hono", op: "GET", valueBytes: 100 },
  { target: "node", op: "GET", valueBytes: 100 },
  { target: "node", op: "PUT", valueBytes: 100 },
  { target: "nginx", op: "GET", valueBytes: 100 },
  { target: "proxy", op: "GET", valueBytes: 100 },
  { target: "nginx", op: "PUT", valueBytes: 100 },
  { target: "proxy", op: "PUT", valueBytes: 100 },
  { target: "nginx", op: "MIX", valueBytes: 100 },
  { target: "proxy", op: "MIX", valueBytes: 100 },
  { target: "nginx", op: "GET", valueBytes: 4096 },
  { target: "proxy", op: "GET", valueBytes: 4096 },
  { target: "proxy", op: "PUT", valueBytes: 4096 },
  { target: "etcd", op: "GET", valueBytes: 100 },
  { target: "cluster", op: "GET", valueBytes: 100 },
  { target: "etcd", op: "PUT", valueBytes: 100 },
  { target: "cluster", op: "PUT", valueBytes: 100 },
  // Its own 3-replica cluster: no watcher, then watchers reading every change under the prefix.
  { target: "watch", op: "PUT", valueBytes: 100 },
  { target: "watch", op: "PUT", valueBytes: 100, watchers: WATCH_LOAD },
];

/** A program a reference needs: how to probe for it and the Debian package that has it. */
export interface Tool {
  cmd: string;
  versionFlag: string;
  pkg: string;
}

/** The tools of the references that need one beyond wrk and Deno. */
export const TOOLS: Partial<Record<Target, Tool>> = {
  nginx: { cmd: "nginx", versionFlag: "-v", pkg: "nginx" },
  // `etcd -v` is not a version flag: an unknown one, at best; never start a server to probe.
  etcd: { cmd: "etcd", versionFlag: "--version", pkg: "etcd-server" },
};

/** The targets `--only` names (every target when empty); throws on an unknown name. */
export function onlyTargets(only: readonly string[]): Target[] {
  for (const name of only) {
    if (!(TARGETS as readonly string[]).includes(name)) {
      throw new ConfigError(
        `Cannot run --only ${name}: no such target (targets: ${TARGETS.join(", ")})`,
      );
    }
  }
  return TARGETS.filter((t) => only.length === 0 || only.includes(t));
}

/**
 * The cases of `targets`, without those whose tool is in `missing` (by command name), and
 * one line for each reference left out, saying how to install its tool.
 */
export function planCases(
  targets: readonly Target[],
  missing: ReadonlySet<string>,
): { cases: CaseSpec[]; skipped: string[] } {
  const skipped: string[] = [];
  const runs = targets.filter((t) => {
    const tool = TOOLS[t];
    if (tool === undefined || !missing.has(tool.cmd)) return true;
    skipped.push(
      `Skipping the ${t} reference: ${tool.cmd} is not installed ` +
        `(apt-get install ${tool.pkg}).`,
    );
    return false;
  });
  return { cases: CASES.filter((c) => runs.includes(c.target)), skipped };
}
