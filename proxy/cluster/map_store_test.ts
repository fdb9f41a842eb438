import { assertEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import type { ClusterMap } from "../../shared/wire.ts";
import { createFileMapStore, createMemoryMapStore, MAP_FILE, MapFileError } from "./map_store.ts";

const map: ClusterMap = {
  epoch: 3,
  replicas: 1,
  vnodes: 8,
  nodes: [{ id: "n1", url: "http://127.0.0.1:7001", weight: 1 }],
  rebalancing: null,
};

Deno.test("createFileMapStore() loads null, then what was saved, across instances", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const store = createFileMapStore(join(dir, "proxy"));
    assertEquals(await store.load(), null);
    await store.save(map);
    await store.save({ ...map, epoch: 4 });
    assertEquals(await createFileMapStore(join(dir, "proxy")).load(), { ...map, epoch: 4 });
    assertEquals([...Deno.readDirSync(join(dir, "proxy"))].map((e) => e.name), [MAP_FILE]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("createFileMapStore() refuses a damaged map file with a clear error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(dir, MAP_FILE), '{"epoch": 1, "nod');
    await assertRejects(() => createFileMapStore(dir).load(), MapFileError, MAP_FILE);
    await Deno.writeTextFile(join(dir, MAP_FILE), "[1, 2]");
    await assertRejects(() => createFileMapStore(dir).load(), MapFileError, "not a cluster map");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("createMemoryMapStore() hands out copies, not the saved object", async () => {
  const store = createMemoryMapStore(map);
  const loaded = (await store.load())!;
  loaded.epoch = 99;
  assertEquals((await store.load())!.epoch, 3);
});
