import { assertEquals, assertThrows } from "@std/assert";
import { cutOff, droppedPackets, hostRules } from "./nft_rules.ts";

const ADDR = { p1: "10.9.0.11", p2: "10.9.0.12", n1: "10.9.0.21", n2: "10.9.0.22", c: "10.9.0.2" };
const SPLIT = [["p1", "n1"], ["p2", "n2"]];

function rulesOf(script: string, chain: string): string[] {
  const lines = script.split(`chain ${chain} {`)[1]!.split("\n").map((l) => l.trim());
  return lines.slice(2, lines.indexOf("}"));
}

Deno.test("cutOff() lists the hosts of the other groups, and none for a host in no group", () => {
  assertEquals(cutOff("p1", SPLIT), ["p2", "n2"]);
  assertEquals(cutOff("n2", SPLIT), ["p1", "n1"]);
  assertEquals(cutOff("c", SPLIT), []);
  assertEquals(cutOff("p1"), []);
});

Deno.test("hostRules() cuts a partitioned host off both ways, by address, on the bridge only", () => {
  const script = hostRules("p1", { partition: SPLIT }, ADDR);
  assertEquals(rulesOf(script, "input"), [
    'iifname "eth0" ip saddr { 10.9.0.12, 10.9.0.22 } counter drop',
  ]);
  assertEquals(rulesOf(script, "output"), [
    'oifname "eth0" ip daddr { 10.9.0.12, 10.9.0.22 } counter drop',
  ]);
  assertEquals(rulesOf(hostRules("c", { partition: SPLIT }, ADDR), "input"), []);
});

Deno.test("hostRules() drops one direction only, on the sender", () => {
  const faults = { drops: [{ from: "n1", to: "p1" }] };
  assertEquals(rulesOf(hostRules("n1", faults, ADDR), "output"), [
    'oifname "eth0" ip daddr { 10.9.0.11 } counter drop',
  ]);
  assertEquals(rulesOf(hostRules("n1", faults, ADDR), "input"), []);
  assertEquals(rulesOf(hostRules("p1", faults, ADDR), "output"), []);
});

Deno.test("hostRules() drops a share of packets at random each way, and refuses a bad share", () => {
  const script = hostRules("n2", { loss: { n2: 10 } }, ADDR);
  assertEquals(rulesOf(script, "input"), [
    'iifname "eth0" numgen random mod 100 < 10 counter drop',
  ]);
  assertEquals(rulesOf(script, "output"), [
    'oifname "eth0" numgen random mod 100 < 10 counter drop',
  ]);
  assertEquals(rulesOf(hostRules("n1", { loss: { n2: 10 } }, ADDR), "input"), []);
  assertThrows(() => hostRules("n2", { loss: { n2: 101 } }, ADDR), Error, "0-100");
});

Deno.test("hostRules() replaces the earlier table, and healing leaves empty chains", () => {
  const script = hostRules("p1", {}, ADDR);
  assertEquals(script.split("\n").slice(0, 2), [
    "add table inet nemesis",
    "delete table inet nemesis",
  ]);
  assertEquals([rulesOf(script, "input"), rulesOf(script, "output")], [[], []]);
});

Deno.test("hostRules() refuses a host it has no address for", () => {
  assertThrows(() => hostRules("p1", { partition: [["p1"], ["zz"]] }, ADDR), Error, '"zz"');
});

Deno.test("droppedPackets() sums the counters of the drop rules of a listing", () => {
  const listing = `table inet nemesis {
	chain input {
		type filter hook input priority filter; policy accept;
		iifname "eth0" ip saddr { 10.9.0.12 } counter packets 7 bytes 420 drop
	}
	chain output {
		oifname "eth0" numgen random mod 100 < 10 counter packets 5 bytes 300 drop
	}
}`;
  assertEquals(droppedPackets(listing), 12);
  assertEquals(droppedPackets("table inet nemesis {\n}"), 0);
});
