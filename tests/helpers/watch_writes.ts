/**
 * Acknowledged writes and the watch events they must come as, for the watch's end-to-end
 * tests: a writer that records each (key, version) a 2xx acknowledged, a poll until every
 * one came, and the checks "exactly once" and "per key in version order".
 *
 * @module
 */
import { assert, assertEquals } from "@std/assert";
import type { SseEvent, SseReader } from "./sse.ts";

/** A write the cluster acknowledged. */
export interface Acked {
  key: string;
  version: string;
}

/** A change event's data. */
export interface ChangeData {
  key: string;
  version: string;
  deleted?: boolean;
}

/** PUTs (every 7th: DELETEs) key `${prefix}k${i % keys}`; records it when acknowledged. */
export async function write(
  proxy: string,
  i: number,
  acked: Acked[],
  keys = 6,
  prefix = "w/",
): Promise<void> {
  const key = `${prefix}k${i % keys}`;
  const del = i % 7 === 6;
  const res = await fetch(`${proxy}/kv/${key}`, {
    method: del ? "DELETE" : "PUT",
    body: del ? undefined : `value ${i}`,
    signal: AbortSignal.timeout(10_000),
  });
  const etag = res.headers.get("etag");
  await res.body?.cancel();
  if ((res.status === 200 || res.status === 201 || res.status === 204) && etag !== null) {
    acked.push({ key, version: etag.slice(1, -1) });
  }
}

/** Writes `count` times from `from`, one after the other. */
export async function writes(proxy: string, from: number, count: number, acked: Acked[]) {
  for (let i = from; i < from + count; i++) await write(proxy, i, acked);
}

/** The change events (no comments, `compacted` or `reset`) of `events`. */
export function changes(events: SseEvent[]): ChangeData[] {
  return events.filter((e) => e.event === "message").map((e) => JSON.parse(e.data));
}

/** Polls until the readers have an event for every acknowledged write, or the deadline. */
export async function untilSeen(readers: SseReader[], acked: Acked[], ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  for (let i = 0; i < 10_000; i++) {
    const seen = new Set(changes(readers.flatMap((r) => r.events)).map((c) => c.version));
    if (acked.every((a) => seen.has(a.version))) return;
    if (Date.now() > deadline) return;
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Asserts each event comes once, per key in increasing version order, every acked one. */
export function assertOncePerKeyInOrder(got: ChangeData[], acked: Acked[]): void {
  const versions = got.map((c) => `${c.key} ${c.version}`);
  assertEquals(new Set(versions).size, versions.length, "no event twice");
  const seen = new Set(versions);
  const missing = acked.filter((a) => !seen.has(`${a.key} ${a.version}`));
  assertEquals(missing, [], "every acknowledged write came as an event");
  const lastOf = new Map<string, string>();
  for (const c of got) {
    assert((lastOf.get(c.key) ?? "") < c.version, `${c.key}: ${c.version} out of order`);
    lastOf.set(c.key, c.version);
  }
}
