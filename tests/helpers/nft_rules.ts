/**
 * Network faults as nftables rules, one script per host (network namespace): a partition
 * into groups, one-way drops by address and direction, and random loss. Pure: the
 * namespace harness (tests/helpers/netns.ts) feeds each script to `nft -f -` inside its
 * host. Rules match only the host's bridge interface (`eth0`), so loopback traffic inside
 * a host (a node behind its relay) is never touched. Every drop rule counts what it drops, so
 * a run can show its faults were in force ({@link droppedPackets}).
 *
 * @module
 * @example
 * ```ts
 * import { hostRules } from "./nft_rules.ts";
 * const script = hostRules("n1", { partition: [["n1"], ["n2"]] }, { n1: "10.0.0.1", n2: "10.0.0.2" });
 * console.log(script.includes("ip saddr { 10.0.0.2 } drop"));
 * ```
 */

/** The faults in force on the whole lab; an empty object heals everything. */
export interface Faults {
  /** Hosts of a group reach only hosts of their own group; hosts in no group reach all. */
  partition?: string[][];
  /** Packets sent by `from` to `to` are lost (requests land, answers do not: one direction). */
  drops?: { from: string; to: string }[];
  /** Percent (0-100) of the packets a host sends and receives that are lost. */
  loss?: Record<string, number>;
}

/** The interface a host is joined to the bridge by. */
export const LINK = "eth0";

/** Hosts that `host` may not exchange packets with under `partition`. */
export function cutOff(host: string, partition: readonly string[][] = []): string[] {
  const mine = partition.find((group) => group.includes(host));
  if (mine === undefined) return [];
  return partition.filter((g) => g !== mine).flat().filter((h) => h !== host);
}

function addressesOf(hosts: readonly string[], addresses: Record<string, string>): string[] {
  return hosts.map((h) => {
    const a = addresses[h];
    if (a === undefined) throw new Error(`Cannot write a rule for host "${h}": it has no address`);
    return a;
  });
}

/** Packets the drop rules of an `nft list ruleset` (or `list table`) output have dropped, summed. */
export function droppedPackets(listing: string): number {
  let total = 0;
  for (const m of listing.matchAll(/counter packets (\d+) bytes \d+ drop/g)) total += Number(m[1]);
  return total;
}

/** The `nft -f` script that puts `faults` in force on `host` (replacing any earlier rules). */
export function hostRules(host: string, faults: Faults, addresses: Record<string, string>): string {
  const input: string[] = [];
  const output: string[] = [];
  const cut = addressesOf(cutOff(host, faults.partition), addresses);
  if (cut.length > 0) {
    input.push(`iifname "${LINK}" ip saddr { ${cut.join(", ")} } counter drop`);
    output.push(`oifname "${LINK}" ip daddr { ${cut.join(", ")} } counter drop`);
  }
  const to = (faults.drops ?? []).filter((d) => d.from === host).map((d) => d.to);
  if (to.length > 0) {
    output.push(
      `oifname "${LINK}" ip daddr { ${addressesOf(to, addresses).join(", ")} } counter drop`,
    );
  }
  const loss = faults.loss?.[host] ?? 0;
  if (!Number.isInteger(loss) || loss < 0 || loss > 100) {
    throw new Error(`Cannot drop ${loss} % of ${host}'s packets: give an integer 0-100`);
  }
  if (loss > 0) {
    input.push(`iifname "${LINK}" numgen random mod 100 < ${loss} counter drop`);
    output.push(`oifname "${LINK}" numgen random mod 100 < ${loss} counter drop`);
  }
  const chain = (name: string, rules: string[]) =>
    `  chain ${name} {\n    type filter hook ${name} priority 0; policy accept;\n` +
    rules.map((r) => `    ${r}\n`).join("") + "  }\n";
  // "add" then "delete" makes the script work whether or not the table exists yet.
  return "add table inet nemesis\ndelete table inet nemesis\n" +
    `table inet nemesis {\n${chain("input", input)}${chain("output", output)}}\n`;
}
