import { assert, assertEquals, assertMatch } from "@std/assert";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { formatVersion } from "../../shared/version.ts";
import type { WireEntry } from "../../shared/wire.ts";
import { createNodeApp, type NodeApp } from "./node_app.ts";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import { openEngine } from "../engine/open_engine.ts";

const at = (wall: number) => formatVersion(wall, 0, "px");
const put = (k: string, wall: number): WireEntry => ({ k, v: btoa("x"), ver: at(wall), h: 0 });

async function post(app: NodeApp, path: string, body: string): Promise<Record<string, unknown>> {
  const res = await app.request(path, { method: "POST", body });
  assertEquals(res.status, 200, await res.clone().text());
  return await res.json();
}

const votes = (body: Record<string, unknown>) =>
  (body.results as { ok: boolean; promised?: string }[]).map((r) => [r.ok, r.promised]);

Deno.test("node routes: promises on missing keys are folded (/metrics counts them), and an ingest below the floor keeps it", async () => {
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", now: () => 0 });
  try {
    // Age 0: each prepare call folds the promises two calls old.
    const app = createNodeApp({ engine, limits: DEFAULT_LIMITS, promiseAgeMs: 0 });
    for (let i = 0; i < 20; i++) {
      const ops = [{ key: `gone${i}`, ballot: at(1_000 + i) }];
      assertEquals(votes(await post(app, "/internal/prepare", JSON.stringify({ ops }))), [[
        true,
        undefined,
      ]]);
    }
    const metrics = await (await app.request("/metrics")).text();
    const open = Number(/ringkv_node_open_promises\{node="n1"\} (\d+)/.exec(metrics)?.[1]);
    assert(open <= 2, `${open} open promises after 20 missing keys`);
    assertMatch(metrics, /ringkv_node_promises_folded_total\{node="n1"\} 18\n/);
    // Anti-entropy's ingest of gone0 at 500, below gone0's folded promise at 1000 (and the floor).
    await post(app, "/internal/ingest", JSON.stringify(put("gone0", 500)) + "\n");
    const late = await post(
      app,
      "/internal/accept",
      JSON.stringify({ entries: [put("gone0", 900)] }),
    );
    assertEquals(votes(late), [[false, at(1_017)]]);
  } finally {
    await engine.close();
  }
});
