import { assertEquals } from "@std/assert";
import type { WireChange } from "../../node/http/change_routes.ts";
import { interleave } from "./watch_apply.ts";

function page(id: string, keys: string[]) {
  const changes: WireChange[] = keys.map((k, i) => ({
    s: i + 1,
    k,
    ver: "v",
    prev: null,
    v: null,
  }));
  return { id, page: { boot: "b", first: 1, last: keys.length, changes } };
}

Deno.test("interleave() merges nodes' pages in step, each node's changes in its log's order", () => {
  const merged = interleave([
    page("a", ["k1", "k2", "k3", "k4"]),
    page("b", ["k1", "k2"]),
    page("c", []),
  ]);
  assertEquals(
    merged.map(({ id, change }) => `${id}:${change.k}`),
    ["a:k1", "b:k1", "a:k2", "a:k3", "b:k2", "a:k4"],
  );
});
