/**
 * The small JSON files beside the log (cluster.json, map_vote.json): read on demand, written
 * atomically one at a time, each save timed as a disk wait (disk_waits.ts). A failing disk is
 * a 503 naming the file; a failed save also makes the node read-only (write_guard.ts).
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
 * import { DiskWaits } from "./disk_waits.ts";
 * import { JsonFiles } from "./json_files.ts";
 * const files = new JsonFiles(createFakeDisk(), new DiskWaits(), { failed: () => {} });
 * await files.save("cluster.json", { epoch: 1 }, "the cluster map");
 * assertEquals(await files.load("cluster.json", "the cluster map"), { epoch: 1 });
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import type { Disk } from "../storage/disk.ts";
import type { DiskWaits } from "./disk_waits.ts";
import type { WriteGuard } from "./write_guard.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Loads and saves one engine's JSON files. */
export class JsonFiles {
  #saving: Promise<void> = Promise.resolve();

  /** Files on `disk`, saves timed in `waits`, a failed one told to `guard`. */
  constructor(
    private readonly disk: Disk,
    private readonly waits: DiskWaits,
    private readonly guard: Pick<WriteGuard, "failed">,
  ) {}

  /** Settles once every save begun so far has (it never rejects). */
  get saved(): Promise<void> {
    return this.#saving;
  }

  /** The parsed `file` (null when there is none); `what` names it in errors. */
  async load(file: string, what: string): Promise<unknown> {
    try {
      const bytes = await this.disk.read(file);
      return bytes === null ? null : JSON.parse(decoder.decode(bytes));
    } catch (err) {
      // A failing disk (EIO) or a damaged file: 503 naming it, and the next request reads again.
      if (!(err instanceof Error) || err instanceof Deno.errors.NotFound) throw err;
      throw new RingkvError(
        "unavailable",
        `Cannot read ${what}: reading ${file} failed (${err.message})`,
      );
    }
  }

  /** Writes `value` to `file` atomically, after the saves before it. */
  save(file: string, value: unknown, what: string): Promise<void> {
    const bytes = encoder.encode(JSON.stringify(value, null, 2) + "\n");
    // One temp file per name: saves must not overlap.
    const saving = this.#saving
      .then(() => this.waits.track(file, () => this.disk.writeAtomic(file, bytes)))
      .catch((err) => {
        if (!(err instanceof Error)) throw err;
        this.guard.failed(`write ${file}`, err, false);
        throw new RingkvError("unavailable", `Cannot store ${what}: ${err.message}`);
      });
    this.#saving = saving.catch(() => {});
    return saving;
  }
}
