/**
 * The acceptor's durable promise watermark as a small atomic file in the data directory
 * (`acceptor.json`, written with temp file + fsync + rename + directory fsync).
 *
 * @module
 */
import { formatVersion, isVersion, type Version } from "../../shared/version.ts";
import type { NodeEngine } from "../engine/engine.ts";
import type { FloorStore } from "./acceptor.ts";
import { createDenoDisk } from "../storage/disk.ts";
import { UnreadableFileError } from "../storage/recovery.ts";

/** The file name of the watermark. */
export const FLOOR_FILE = "acceptor.json";

/** A {@link FloorStore} over `dir`; a damaged file stops the node rather than forget promises. */
export async function diskFloorStore(dir: string): Promise<FloorStore> {
  const disk = await createDenoDisk(dir);
  return {
    persistent: true,
    async load(): Promise<Version | null> {
      const bytes = await disk.read(FLOOR_FILE).catch((err) => {
        // A failing disk (EIO), named like the snapshot and the log; a missing file reads null.
        throw err instanceof Error ? new UnreadableFileError(FLOOR_FILE, err) : err;
      });
      if (bytes === null) return null;
      const floor = parseFloor(bytes, dir);
      if (typeof floor !== "string" || !isVersion(floor)) {
        throw new Error(`Cannot read ${FLOOR_FILE} in ${dir}: no valid "floor" version`);
      }
      return floor;
    },
    save: (floor) =>
      disk.writeAtomic(FLOOR_FILE, new TextEncoder().encode(JSON.stringify({ floor }) + "\n")),
  };
}

function parseFloor(bytes: Uint8Array, dir: string): unknown {
  try {
    return (JSON.parse(new TextDecoder().decode(bytes)) as { floor?: unknown })?.floor;
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    throw new Error(`Cannot read ${FLOOR_FILE} in ${dir}: it is not JSON (${err.message})`);
  }
}

/**
 * Writes the watermark of a new data directory (its birth, which promises nothing) when there is
 * none and the node holds nothing yet, so that from then on a missing file beside data means a
 * lost one. Before, a node that got keys by a range copy before its first vote took the file for
 * lost at that vote (the acceptor opens at its first round): every added node warned "no
 * acceptor.json beside the data" and refused ballots up to a second ahead (found by QA).
 */
export async function firstWatermark(
  store: FloorStore,
  engine: Pick<NodeEngine, "stats" | "createdAt">,
): Promise<void> {
  if ((await store.load()) !== null) return;
  const { keys, tombstones } = engine.stats();
  if (keys + tombstones > 0) return; // data without its watermark: the acceptor says so
  await store.save(formatVersion(engine.createdAt, 0, "0"));
}
