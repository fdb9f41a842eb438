/**
 * A probe for the rig (tasks/bench/cpu_rig.ts `PARSES=1`), preloaded into the proxy with
 * `deno run --preload tasks/bench/parse_count.ts` and `PARSE_COUNT_OUT=FILE`: counts the
 * `JSON.parse` of nodes' change pages (text starting `{"boot":`), telling a page's first parse
 * (the poll's) from a later one of the same page (a buffer read of a page no longer kept
 * parsed: proxy/watch/page_store.ts), and the `TextDecoder` decodes that yield such a page.
 * It patches the globals in the probed process only, so a base checkout is counted the same
 * way. Cumulative counts are sampled every {@link SAMPLE_MS} and written to FILE as JSON at
 * exit. Without the flag nothing of this runs.
 *
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { countsBetween } from "./parse_count.ts";
 * const s = [[0, 1, 1, 0, 0, 0, 0], [10, 5, 50, 2, 20, 3, 900]];
 * assertEquals(countsBetween(s, 0, 10).reparsedChanges, 20);
 * ```
 *
 * @module
 */

/** The probe's sampling period, in ms. */
export const SAMPLE_MS = 50;

/** Page parses and decodes over a window. */
export interface ParseCounts {
  /** First parses of pages (polls) and their changes. */
  polls: number;
  polledChanges: number;
  /** Later parses of pages already parsed once, and their changes. */
  reparses: number;
  reparsedChanges: number;
  /** Decodes whose text is a change page, and their bytes. */
  decodes: number;
  decodedBytes: number;
}

type Sample = readonly number[];

/** The counts between the last samples at or before `from` and `to` (wall ms). */
export function countsBetween(samples: readonly Sample[], from: number, to: number): ParseCounts {
  const at = (t: number) => samples.findLast((s) => s[0]! <= t) ?? [t, 0, 0, 0, 0, 0, 0];
  const [a, b] = [at(from), at(to)];
  const d = (i: number) => b[i]! - a[i]!;
  return {
    polls: d(1),
    polledChanges: d(2),
    reparses: d(3),
    reparsedChanges: d(4),
    decodes: d(5),
    decodedBytes: d(6),
  };
}

/** One line of the rig's output, per change polled. */
export function parseLine(c: ParseCounts): string {
  const per = (n: number) => (n / Math.max(1, c.polledChanges)).toFixed(3);
  return `proxy change pages: ${c.polls} polls (${c.polledChanges} changes); re-parsed ${c.reparses} pages (${c.reparsedChanges} changes, ${
    per(c.reparsedChanges)
  } per change polled); decoded ${c.decodes} pages (${(c.decodedBytes / 1e6).toFixed(1)} MB, ${
    per(c.decodedBytes)
  } B per change polled)`;
}

/** Patches `JSON.parse` and `TextDecoder.prototype.decode`, and samples the counts. */
function startProbe(out: string): void {
  const n = [0, 0, 0, 0, 0, 0];
  // Each page's head (boot, first, last) names it: first parse or later one.
  const seen = new Set<string>();
  const parse = JSON.parse;
  JSON.parse = function (text: string, reviver?: Parameters<typeof parse>[1]) {
    const value = parse(text, reviver);
    if (typeof text === "string" && text.startsWith('{"boot":')) {
      const changes = (value as { changes?: unknown[] }).changes?.length ?? 0;
      const head = text.slice(0, text.indexOf('"changes"'));
      if (changes > 0 && seen.has(head)) {
        n[2]!++;
        n[3]! += changes;
      } else if (changes > 0) {
        seen.add(head);
        if (seen.size > 100_000) seen.delete(seen.values().next().value!);
        n[0]!++;
        n[1]! += changes;
      }
    }
    return value;
  };
  const decode = TextDecoder.prototype.decode;
  TextDecoder.prototype.decode = function (...args: Parameters<typeof decode>) {
    const text = decode.apply(this, args);
    if (text.startsWith('{"boot":')) {
      n[4]!++;
      n[5]! += text.length;
    }
    return text;
  };
  const samples: number[][] = [];
  const tick = () => {
    if (samples.length < 1_000_000) samples.push([Date.now(), ...n]);
    Deno.unrefTimer(setTimeout(tick, SAMPLE_MS));
  };
  tick();
  globalThis.addEventListener("unload", () => {
    samples.push([Date.now(), ...n]);
    Deno.writeTextFileSync(out, JSON.stringify(samples));
  });
}

const out = Deno.env.get("PARSE_COUNT_OUT");
if (out) startProbe(out);
