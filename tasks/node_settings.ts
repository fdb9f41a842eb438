/**
 * The memory settings every launcher gives a data node: `deno task node` (deno.json),
 * `deno task cluster`, `deno task bench` and the compiled `ringkv-node` (V8 flags only), so
 * the RSS per key the bench prints is what an operator gets. Why each one, with numbers:
 * docs/performance.md ("Memory and restart"); for operators: docs/operations.md ("Memory").
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { NODE_ENV, NODE_V8_FLAGS } from "./node_settings.ts";
 * const args = ["run", NODE_V8_FLAGS, "node/main.ts"];
 * assert(args[1]!.includes("--expose-gc") && NODE_ENV.MALLOC_MMAP_THRESHOLD_ !== "");
 * ```
 */

/**
 * `--expose-gc` lets GcHint (node/engine/gc_hint.ts) compact the heap after bulk work;
 * `--heap-growing-percent=50` lets the old generation grow 1.5x between full GCs instead of
 * up to 4x, so a bulk load leaves less garbage (and fewer dead ArrayBuffers) behind.
 */
export const NODE_V8_FLAGS = "--v8-flags=--expose-gc,--heap-growing-percent=50";

/**
 * glibc malloc: buffers of 64 KiB and more (request body reads, log lines, snapshot chunks)
 * get their own mapping that goes back to the OS when freed, instead of growing the main
 * heap, which glibc keeps once anything near its top is still in use.
 */
export const NODE_ENV: Readonly<Record<string, string>> = { MALLOC_MMAP_THRESHOLD_: "65536" };
