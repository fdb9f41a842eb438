import { assertEquals } from "@std/assert";
import { Hints } from "./hints.ts";

const entry = (k: string, ver: string) => ({ k, ver, v: "dg==", h: 1 });

Deno.test("Hints keeps the newest missed write per key and node, up to its bound", () => {
  const hints = new Hints(3);
  hints.add("n1", entry("a", "018c00000000-0000-p1"));
  hints.add("n1", entry("a", "018c00000000-0001-p1"));
  hints.add("n1", entry("a", "018c00000000-0000-p0"));
  hints.add("n2", entry("a", "018c00000000-0000-p1"));
  hints.add("n2", entry("b", "018c00000000-0000-p1"));
  hints.add("n3", entry("c", "018c00000000-0000-p1"));
  assertEquals([hints.count(), hints.count("n1"), hints.dropped], [3, 1, 1]);
  assertEquals(hints.take("n1", 10).map((e) => e.ver), ["018c00000000-0001-p1"]);
});

Deno.test("Hints.keepOnly() forgets the hints of nodes that left the map, freeing their room", () => {
  const hints = new Hints(2);
  hints.add("gone", entry("a", "018c00000000-0000-p1"));
  hints.add("n1", entry("b", "018c00000000-0000-p1"));
  hints.keepOnly(new Set(["n1", "n2"]));
  assertEquals([hints.count(), hints.count("gone"), hints.count("n1")], [1, 0, 1]);
  hints.add("n2", entry("c", "018c00000000-0000-p1"));
  assertEquals([hints.count("n2"), hints.dropped], [1, 0]);
});
