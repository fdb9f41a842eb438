/**
 * The proxy's own copy of the cluster map, so a restarted proxy resumes where it was.
 * {@link createFileMapStore} is the only code of the proxy that touches files;
 * {@link createMemoryMapStore} stands in for it in tests.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { createMemoryMapStore } from "./map_store.ts";
 * const store = createMemoryMapStore();
 * await store.save({ epoch: 1, replicas: 1, vnodes: 8, nodes: [], rebalancing: null });
 * assert((await store.load())?.epoch === 1);
 * ```
 */
import { join } from "@std/path";
import type { ClusterMap } from "../../shared/wire.ts";

/** Where the proxy keeps its cluster map. */
export interface MapStore {
  /** The stored map, or null when there is none. */
  load(): Promise<ClusterMap | null>;
  /** Replaces the stored map atomically: after a crash, either the old or the new one. */
  save(map: ClusterMap): Promise<void>;
}

/** The stored map file cannot be read (damaged, or not a cluster map). */
export class MapFileError extends Error {
  override name = "MapFileError";
}

/** Name of the map file inside the proxy's data directory. */
export const MAP_FILE = "cluster.json";

/** A map store in memory (tests); `initial` is what `load` first returns. */
export function createMemoryMapStore(initial: ClusterMap | null = null): MapStore {
  let text = initial === null ? null : JSON.stringify(initial);
  return {
    load: () => Promise.resolve(text === null ? null : JSON.parse(text) as ClusterMap),
    save: (map) => {
      text = JSON.stringify(map);
      return Promise.resolve();
    },
  };
}

async function fsyncPath(path: string): Promise<void> {
  const file = await Deno.open(path, { read: true });
  try {
    await file.sync();
  } finally {
    file.close();
  }
}

function checkMap(path: string, value: unknown): ClusterMap {
  const map = value as ClusterMap;
  if (
    typeof map !== "object" || map === null || !Number.isInteger(map.epoch) ||
    !Array.isArray(map.nodes)
  ) {
    throw new MapFileError(`Cannot read the cluster map ${path}: it is not a cluster map`);
  }
  return map;
}

/**
 * The map as `<dir>/cluster.json`, written to a temporary file, fsync'd, renamed over
 * the old one, and the directory fsync'd.
 */
export function createFileMapStore(dir: string): MapStore {
  const path = join(dir, MAP_FILE);
  const temp = join(dir, MAP_FILE + ".tmp");
  return {
    async load() {
      let text: string;
      try {
        text = await Deno.readTextFile(path);
      } catch (err) {
        if (err instanceof Deno.errors.NotFound) return null;
        throw err;
      }
      try {
        return checkMap(path, JSON.parse(text));
      } catch (err) {
        if (!(err instanceof SyntaxError)) throw err;
        throw new MapFileError(`Cannot read the cluster map ${path}: ${err.message}`);
      }
    },
    async save(map) {
      await Deno.mkdir(dir, { recursive: true });
      const file = await Deno.open(temp, { write: true, create: true, truncate: true });
      try {
        const bytes = new TextEncoder().encode(JSON.stringify(map, null, 2) + "\n");
        for (let done = 0; done < bytes.length;) done += await file.write(bytes.subarray(done));
        await file.sync();
      } finally {
        file.close();
      }
      await Deno.rename(temp, path);
      await fsyncPath(dir);
    },
  };
}
