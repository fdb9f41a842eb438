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

Deno.test("interleave() puts a write's copies next to each other when the nodes logged it at different positions", () => {
  const at = (id: string, vers: string[]) => {
    const changes: WireChange[] = vers.map((ver, i) => ({
      s: i + 1,
      k: `k${ver}`,
      ver,
      prev: null,
      v: null,
    }));
    return { id, page: { boot: "b", first: 1, last: vers.length, changes } };
  };
  const merged = interleave([
    at("a", ["1", "2", "3", "4", "5"]),
    at("b", ["3", "4", "5"]),
    at("c", ["2", "3"]),
  ]);
  const vers = merged.map(({ change }) => change.ver);
  assertEquals(vers, ["1", "2", "2", "3", "3", "3", "4", "4", "5", "5"]);
});

Deno.test("interleave() keeps every change once and each node's in its log's order, whatever the versions", () => {
  let x = 11;
  const pick = (n: number) => (x = (x * 48271) % 2147483647) % n;
  for (let round = 0; round < 500; round++) {
    const pages = ["a", "b", "c", "d"].slice(0, 1 + pick(4)).map((id) => {
      const changes: WireChange[] = Array.from({ length: pick(12) }, (_, i) => ({
        s: i + 1,
        k: `k${pick(5)}`,
        ver: `v${pick(20)}`,
        prev: null,
        v: null,
      }));
      return { id, page: { boot: "b", first: 1, last: changes.length, changes } };
    });
    const merged = interleave(pages);
    for (const { id, page } of pages) {
      const mine = merged.filter((m) => m.id === id).map((m) => m.change);
      assertEquals(mine, page.changes, `round ${round}: node ${id}'s changes in its order`);
    }
    assertEquals(merged.length, pages.reduce((n, p) => n + p.page.changes.length, 0));
  }
});
