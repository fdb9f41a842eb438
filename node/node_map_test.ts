import { assert, assertEquals } from "@std/assert";
import { DEFAULT_LIMITS } from "../shared/limits.ts";
import { createNodeApp } from "./http/node_app.ts";
import { createFakeDisk, IO_ERROR } from "../tests/doubles/fake_disk.ts";
import { openEngine } from "./engine/open_engine.ts";

Deno.test("a cluster map the disk cannot read (EIO) answers 503 naming cluster.json, and is read again once it can be", async () => {
  const disk = createFakeDisk();
  const engine = await openEngine({ disk, id: "n1", limits: DEFAULT_LIMITS });
  try {
    await engine.saveClusterMap({ epoch: 3, replicas: 1, vnodes: 8, nodes: [], rebalancing: null });
    disk.failReads("cluster.json", true);
    const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
    const refused = await app.request("/kv/a", { headers: { "x-ringkv-epoch": "3" } });
    const error = (await refused.json()).error;
    assertEquals([refused.status, error.code], [503, "unavailable"]);
    assert(error.message.includes("reading cluster.json failed"), error.message);
    assert(error.message.includes(IO_ERROR), error.message);
    disk.failReads("cluster.json", false);
    const again = await app.request("/kv/a", { headers: { "x-ringkv-epoch": "2" } });
    assertEquals(again.status, 409, "the stored map (epoch 3) is read now");
    await again.body?.cancel();
  } finally {
    await engine.close();
  }
});
