import { assertEquals } from "@std/assert";
import { foldRest, REST, restOf } from "./rounds.ts";

Deno.test("restOf() is every other process of the run once, named by its target", () => {
  const ring = [{ name: "n1", pid: 11 }, { name: "n2", pid: 12 }];
  const all = {
    node: ring.slice(0, 1),
    proxy: [{ name: "proxy0", pid: 20 }, ...ring],
    cluster: [{ name: "r1", pid: 31 }, { name: "proxy0", pid: 30 }],
  };
  assertEquals(restOf(all, all.node), [
    { name: "proxy/proxy0", pid: 20 },
    { name: "proxy/n2", pid: 12 },
    { name: "cluster/r1", pid: 31 },
    { name: "cluster/proxy0", pid: 30 },
  ]);
  assertEquals(restOf(all, [...all.proxy, ...all.cluster]), []);
});

Deno.test("foldRest() sums the other processes into one entry, with no main thread", () => {
  const use = {
    perRequest: { n1: 10, "proxy/n2": 3, "cluster/r1": 2 },
    cores: { n1: 0.5, "proxy/n2": 0.25, "cluster/r1": 0.125 },
    mainCores: { n1: 0.5, "proxy/n2": 0.25, "cluster/r1": 0.125 },
  };
  const rest = [{ name: "proxy/n2", pid: 12 }, { name: "cluster/r1", pid: 31 }];
  assertEquals(foldRest(use, rest), {
    perRequest: { n1: 10, [REST]: 5 },
    cores: { n1: 0.5, [REST]: 0.375 },
    mainCores: { n1: 0.5 },
  });
  assertEquals(foldRest(use, []), use);
});
