import { assertEquals } from "@std/assert";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { createNodeApp } from "../../node/http/node_app.ts";
import { openEngine } from "../../node/engine/open_engine.ts";
import type { WireChange } from "../../node/http/change_routes.ts";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import { keyNeedle, PageStore } from "./page_store.ts";
import { seededRandom as random } from "../../tests/doubles/seeded_random.ts";

// Pieces JSON escapes or that look like the needle: quote, backslash, '/', DEL, non-ASCII, astral…
const PIECES = [
  "a",
  '"',
  "\\",
  "/",
  "\u007f",
  "é",
  "😀",
  "k",
  ":",
  '"k":"',
  "\u2028",
  "\ufeff",
  "A",
];
const pick = <T>(r: () => number, a: T[]): T => a[Math.floor(r() * a.length)]!;
const keyOf = (r: () => number): string => {
  let k = "";
  for (let n = 1 + Math.floor(r() * 4); n > 0; n--) k += pick(r, PIECES);
  return k === "." || k === ".." ? k + "x" : k;
};

/** One batch of random puts and deletes (values and content types that hold the needle too). */
function randomOps(r: () => number, keys: string[]): unknown[] {
  const ops = [];
  for (let i = Math.floor(r() * 15); i > 0; i--) {
    const key = r() < 0.3 && keys.length > 0 ? pick(r, keys) : keyOf(r);
    keys.push(key);
    if (r() < 0.2) ops.push({ op: "delete", key });
    else {
      const value = new TextEncoder().encode(pick(r, ["", "x", "é😀", '"k":"a', keyOf(r)]));
      const contentType = r() < 0.5 ? "text/plain" : `x/"k":"${key}`;
      ops.push({ op: "put", key, value: value.toBase64(), contentType });
    }
  }
  return ops;
}

Deno.test("PageStore over a real node's change pages: a prefix read leaves out no change under the prefix", async () => {
  for (let seed = 1; seed <= 4; seed++) {
    const r = random(seed);
    const engine = await openEngine({ disk: createFakeDisk(), id: "n1", limits: DEFAULT_LIMITS });
    const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
    const [keys, store] = [[] as string[], new PageStore()];
    let [all, read] = [[] as WireChange[], 0];
    for (let round = 0; round < 25; round++) {
      const ops = randomOps(r, keys);
      if (ops.length > 0) {
        const res = await app.request("/internal/batch", {
          method: "POST",
          body: JSON.stringify({ ops }),
        });
        assertEquals(res.status, 200, await res.text());
      }
      const limit = 1 + Math.floor(r() * 10);
      const text = await (await app.request(`/internal/changes?after=${read}&limit=${limit}`))
        .text();
      const page = JSON.parse(text) as { changes: WireChange[] };
      store.push(page.changes, text);
      all.push(...page.changes);
      read = page.changes.at(-1)?.s ?? read;
      store.trim(40);
      all = all.slice(all.length - store.size);
      for (let q = 0; q < 20; q++) {
        const base = r() < 0.7 && keys.length > 0 ? pick(r, keys) : keyOf(r);
        const prefix = base.slice(0, Math.floor(r() * (base.length + 1)));
        const after = (all[0]?.s ?? read + 1) - 1 + Math.floor(r() * (all.length + 1));
        const got: WireChange[] = [];
        store.scan(after, (c) => void got.push(c), { prefix });
        const want = all.filter((c) => c.s > after && c.k.startsWith(prefix));
        const seen = got.filter((c) => c.k.startsWith(prefix));
        assertEquals(
          seen,
          want,
          `seed ${seed}, prefix ${JSON.stringify(prefix)} (${keyNeedle(prefix)})`,
        );
      }
    }
    await engine.close();
  }
});
