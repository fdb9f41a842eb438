import { assert, assertEquals } from "@std/assert";
import type { WatchItem } from "./watch_apply.ts";
import { type GroupOptions, WatchGroup, WatchGroups } from "./watch_group.ts";
import type { WatchEvent } from "./watch_merge.ts";

const OPTS: GroupOptions = {
  eventData: (e) => JSON.stringify({ key: e.key, version: e.version }),
  keepaliveMs: 60_000,
  maxUnreadBytes: 1 << 20,
};

/** A watch source the test feeds by hand; it records when it started and stopped. */
class HandSource {
  readonly #queue: WatchItem[] = [];
  readonly #wakes = new Set<() => void>();
  started = 0;
  stopped = 0;
  /** Called when the group asks for the item after `item` (it has taken `item`). */
  taken: (item: WatchItem) => void = () => {};

  /** The source to give a group. */
  readonly source = (signal: AbortSignal): AsyncGenerator<WatchItem> => this.#run(signal);

  /** Yields a change of `key` (id = key) once the group asks for the next item. */
  change(key: string): void {
    const event: WatchEvent = { key, version: `v-${key}`, value: null };
    this.push({ kind: "changes", changes: [{ event, id: `id-${key}` }] });
  }

  /** Items not yet taken by the group. */
  get queued(): number {
    return this.#queue.length;
  }

  push(item: WatchItem): void {
    this.#queue.push(item);
    for (const wake of this.#wakes) wake();
  }

  async *#run(signal: AbortSignal): AsyncGenerator<WatchItem> {
    this.started++;
    let wake = () => {};
    const onAbort = () => wake();
    signal.addEventListener("abort", onAbort);
    this.#wakes.add(onAbort);
    try {
      while (!signal.aborted) {
        const item = this.#queue.shift();
        if (item !== undefined) {
          yield item;
          this.taken(item);
          continue;
        }
        await new Promise<void>((resolve) => wake = resolve);
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
      this.#wakes.delete(onAbort);
      this.stopped++;
    }
  }
}

/** Reads a member's text until `until` holds (bounded by a deadline) or it ends. */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  seen: { text: string },
  until: (text: string) => boolean,
): Promise<void> {
  const decoder = new TextDecoder();
  const deadline = Date.now() + 10_000;
  while (!until(seen.text)) {
    assert(Date.now() < deadline, `waited for more; got ${seen.text}`);
    const { value, done } = await reader.read();
    if (done) return;
    seen.text += decoder.decode(value);
  }
}

/** Waits until `cond` holds (bounded). */
async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    assert(Date.now() < deadline, `timed out waiting until ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

Deno.test("WatchGroup: a member that joins mid-stream gets only the items yielded after it joined", async () => {
  const src = new HandSource();
  const group = new WatchGroup(src.source, OPTS);
  const stop = new AbortController();
  const first = group.join(stop.signal, () => {}).getReader();
  try {
    src.change("a");
    const one = { text: "" };
    await readUntil(first, one, (t) => t.includes("id: id-a"));
    const second = group.join(stop.signal, () => {}).getReader();
    src.change("b");
    await readUntil(first, one, (t) => t.includes("id: id-b"));
    const two = { text: "" };
    await readUntil(second, two, (t) => t.includes("id: id-b"));
    assert(two.text.startsWith("retry: 1000\n: watching\n\n"), two.text);
    assert(!two.text.includes("id-a"), two.text);
    assert(one.text.indexOf("id: id-a") < one.text.indexOf("id: id-b"), one.text);
    await second.cancel();
  } finally {
    await first.cancel();
  }
});

Deno.test("WatchGroup: a member that joins in the turn of an item (not yet written out) does not get it", async () => {
  const src = new HandSource();
  const group = new WatchGroup(src.source, OPTS);
  const stop = new AbortController();
  const first = group.join(stop.signal, () => {}).getReader();
  let second: ReadableStreamDefaultReader<Uint8Array> | undefined;
  src.taken = (item) => {
    if (item.kind === "changes" && item.changes[0]!.event.key === "a") {
      second = group.join(stop.signal, () => {}).getReader();
    }
  };
  try {
    src.change("a");
    src.change("b");
    const one = { text: "" };
    await readUntil(first, one, (t) => t.includes("id: id-b"));
    assert(one.text.includes("id: id-a"), one.text);
    const two = { text: "" };
    await readUntil(second!, two, (t) => t.includes("id: id-b"));
    assert(!two.text.includes("id-a"), two.text);
  } finally {
    await first.cancel();
    await second?.cancel();
  }
});

Deno.test("WatchGroup: two members get the same bytes, encoded once", async () => {
  const src = new HandSource();
  let encoded = 0;
  const opts = { ...OPTS, eventData: (e: WatchEvent) => (encoded++, OPTS.eventData(e)) };
  const group = new WatchGroup(src.source, opts);
  const stop = new AbortController();
  const readers = [group.join(stop.signal, () => {}), group.join(stop.signal, () => {})]
    .map((s) => s.getReader());
  try {
    for (const k of ["a", "b", "c"]) src.change(k);
    src.push({ kind: "compacted", reason: "r", id: "id-now" });
    const texts = [{ text: "" }, { text: "" }];
    for (let i = 0; i < 2; i++) {
      await readUntil(readers[i]!, texts[i]!, (t) => t.includes("event: compacted"));
    }
    assertEquals(texts[0]!.text, texts[1]!.text);
    assertEquals(encoded, 3, "each event's data written once for both members");
    assert(texts[0]!.text.includes('id: id-c\ndata: {"key":"c","version":"v-c"}\n\n'));
    // A compacted event carries the cursor of the present, which a reconnect sends back.
    assert(texts[0]!.text.includes('id: id-now\nevent: compacted\ndata: {"reason":"r"}\n\n'));
  } finally {
    for (const r of readers) await r.cancel();
  }
});

Deno.test("WatchGroup: a member that does not read is cut off alone; the others go on", async () => {
  const src = new HandSource();
  const group = new WatchGroup(src.source, { ...OPTS, maxUnreadBytes: 100_000 });
  const stop = new AbortController();
  let left = 0;
  const slow = group.join(stop.signal, () => left++).getReader();
  const fast = group.join(stop.signal, () => {}).getReader();
  try {
    const seen = { text: "" };
    // Each round's events go out as one chunk: 300 rounds of about 1 KiB each.
    const pad = "x".repeat(1000);
    for (let i = 0; i < 300 && left === 0; i++) {
      src.change(`${pad}${i}`);
      await readUntil(fast, seen, (t) => t.includes(`${pad}${i}"`));
    }
    assertEquals(left, 1, "the slow member left the group");
    assertEquals(group.size, 1);
    src.change("after");
    await readUntil(fast, seen, (t) => t.includes("id: id-after"));
    assert(!seen.text.includes("event: cutoff"), "the reading member was not cut off");
    const slowSeen = { text: "" };
    await readUntil(slow, slowSeen, () => false);
    assert(
      slowSeen.text.trimEnd().split("\n\n").at(-1)!.startsWith("event: cutoff\n"),
      "cutoff last",
    );
    assert(!slowSeen.text.includes("id-after"), "and nothing after it");
    assertEquals(src.stopped, 0, "the group's stream goes on");
  } finally {
    await fast.cancel();
    await slow.cancel();
  }
});

Deno.test("WatchGroups: the last member leaving stops the group's stream; the next join starts a new one", async () => {
  const src = new HandSource();
  const groups = new WatchGroups(() => src.source, OPTS);
  const stop = new AbortController();
  let open = 0;
  const a = groups.live("p/").join(stop.signal, () => open--);
  open++;
  const b = groups.live("p/").join(stop.signal, () => open--);
  open++;
  const other = groups.live("q/").join(stop.signal, () => {});
  assertEquals([src.started, groups.groupOf("p/")?.size], [2, 2], "one stream per prefix");
  await a.cancel();
  assertEquals([open, src.stopped], [1, 0]);
  await b.cancel();
  assertEquals(open, 0);
  assertEquals(groups.groupOf("p/"), undefined, "an empty group takes no member");
  await until(() => src.stopped === 1, "the group's stream stopped");
  const c = groups.live("p/").join(stop.signal, () => {});
  assertEquals(src.started, 3);
  await c.cancel();
  await other.cancel();
  await until(() => src.stopped === 3, "every stream stopped");
});

Deno.test("WatchGroup: a reset ends every member, after the events before it", async () => {
  const src = new HandSource();
  const groups = new WatchGroups(() => src.source, OPTS);
  const stop = new AbortController();
  let left = 0;
  const readers = [0, 1].map(() => groups.live("").join(stop.signal, () => left++).getReader());
  src.change("a");
  src.push({ kind: "reset", reason: "too many keys wait" });
  for (const r of readers) {
    const seen = { text: "" };
    await readUntil(r, seen, () => false); // to the end of the stream
    assert(seen.text.includes("id: id-a"), seen.text);
    assert(seen.text.endsWith('event: reset\ndata: {"reason":"too many keys wait"}\n\n'));
  }
  assertEquals(left, 2);
  assertEquals(groups.groupOf(""), undefined);
  await until(() => src.stopped === 1, "the group's stream stopped");
});

Deno.test("WatchGroup: a member whose client went away leaves", async () => {
  const src = new HandSource();
  const group = new WatchGroup(src.source, OPTS);
  const gone = new AbortController();
  let left = 0;
  const reader = group.join(gone.signal, () => left++).getReader();
  gone.abort();
  assertEquals([left, group.size, group.open], [1, 0, false]);
  const seen = { text: "" };
  await readUntil(reader, seen, () => false);
  assertEquals(seen.text, "retry: 1000\n: watching\n\n");
  await until(() => src.stopped === 1, "the group's stream stopped");
});

Deno.test("WatchGroup with flushMs writes the items of its window as one chunk, a lone one after the window", async () => {
  const src = new HandSource();
  const flushMs = 1000;
  const group = new WatchGroup(src.source, { ...OPTS, flushMs });
  const stop = new AbortController();
  const reader = group.join(stop.signal, () => {}).getReader();
  const decoder = new TextDecoder();
  try {
    assertEquals(decoder.decode((await reader.read()).value), "retry: 1000\n: watching\n\n");
    // b comes a turn after a was taken, within a's window: both in one chunk.
    src.taken = (item) => {
      if (item.kind === "changes" && item.changes[0]!.event.key === "a") {
        setTimeout(() => src.change("b"), 0);
      }
    };
    let sent = Date.now();
    src.change("a");
    const chunk = decoder.decode((await reader.read()).value);
    let took = Date.now() - sent;
    assert(chunk.includes("id: id-a") && chunk.includes("id: id-b"), chunk);
    // Timers never fire early; late only by how loaded the machine is.
    assert(took >= flushMs - 20 && took < flushMs + 5000, `the chunk came after ${took} ms`);
    sent = Date.now();
    src.change("c");
    const lone = decoder.decode((await reader.read()).value);
    took = Date.now() - sent;
    assertEquals(lone, 'id: id-c\ndata: {"key":"c","version":"v-c"}\n\n');
    assert(took >= flushMs - 20 && took < flushMs + 5000, `a lone event came after ${took} ms`);
  } finally {
    await reader.cancel();
  }
  await until(() => src.stopped === 1, "the group's stream stopped");
});

Deno.test("WatchGroup: an event larger than the unread bound reaches a member still reading it, and the next ones too", async () => {
  const big = "x".repeat(300_000); // past the bound below, as 1 MiB of control characters is
  const eventData = (e: WatchEvent) =>
    JSON.stringify({ key: e.key, pad: e.key === "big" ? big : "" });
  const src = new HandSource();
  const group = new WatchGroup(src.source, { ...OPTS, eventData, maxUnreadBytes: 100_000 });
  const stop = new AbortController();
  const reader = group.join(stop.signal, () => {}).getReader();
  try {
    src.change("big");
    await until(() => src.queued === 0, "the big event was taken");
    // The member has not read it yet when the next events come.
    for (let i = 0; i < 5; i++) src.change(`small${i}`);
    await until(() => src.queued === 0, "the small events were taken");
    await new Promise((r) => setTimeout(r, 50));
    const seen = { text: "" };
    await readUntil(reader, seen, (t) => t.includes("id: id-small4") || t.includes("cutoff"));
    assert(!seen.text.includes("event: cutoff"), "cut off while reading one large event");
    assert(seen.text.includes(big), "the large event came whole");
  } finally {
    stop.abort();
    await reader.cancel().catch(() => {});
  }
});

Deno.test("WatchGroup: a member that never reads is cut off near its bound even when the items come without a timer between them", async () => {
  const stop = new AbortController();
  const eventData = (e: WatchEvent) => JSON.stringify({ key: e.key, pad: "x".repeat(1024) });
  let produced = false; // the burst is over, or the group stopped it (its last member left)
  // A catch-up answered from a buffer: 20,000 events of ~1 KiB with no timer in between.
  async function* burst(signal: AbortSignal): AsyncGenerator<WatchItem> {
    try {
      // Pages of 500 events, one item each, as a stream yields them.
      for (let i = 0; i < 20_000 && !signal.aborted; i += 500) {
        await Promise.resolve();
        const changes = Array.from({ length: 500 }, (_, j) => ({
          event: { key: `k${i + j}`, version: "v", value: null },
          id: `id-${i + j}`,
        }));
        yield { kind: "changes", changes };
      }
    } finally {
      produced = true;
    }
    await new Promise<void>((r) => signal.addEventListener("abort", () => r(), { once: true }));
  }
  const group = new WatchGroup(burst, { ...OPTS, eventData, flushMs: 10 });
  const reader = group.join(stop.signal, () => {}).getReader();
  try {
    for (let i = 0; i < 1000 && !produced; i++) await new Promise((r) => setTimeout(r, 10));
    assert(produced, "the burst was yielded or stopped");
    await new Promise((r) => setTimeout(r, 50)); // past the 10 ms window: the batch is out
    let text = "";
    const decoder = new TextDecoder();
    // Its bound (1 MiB) plus one batch; one chunk of the whole burst would be ~21 MiB, not cut.
    while (!text.includes("event: cutoff") && text.length < 2 << 20) {
      const { value, done } = await reader.read();
      if (done) break;
      text += decoder.decode(value, { stream: true });
    }
    assert(text.includes("event: cutoff"), `no cutoff in the first ${text.length} bytes`);
    assert(text.length < 1.5 * (1 << 20), `${text.length} bytes left unread before the cutoff`);
  } finally {
    stop.abort();
    await reader.cancel().catch(() => {});
  }
});

Deno.test("WatchGroup writing a page in slices: a member gets every event once in order; one that joins between slices gets exactly the rest", async () => {
  const src = new HandSource();
  const group = new WatchGroup(src.source, { ...OPTS, sliceMs: 0 });
  const stop = new AbortController();
  const first = group.join(stop.signal, () => {}).getReader();
  let second: ReadableStreamDefaultReader<Uint8Array> | undefined;
  const keys = Array.from({ length: 200 }, (_, i) => `k${String(i).padStart(3, "0")}`);
  try {
    const changes = keys.map((key) => ({
      event: { key, version: `v-${key}`, value: null },
      id: `id-${key}`,
    }));
    // Due while the group writes the page: with slices of no time, the loop turns in between.
    setTimeout(() => second = group.join(stop.signal, () => {}).getReader(), 0);
    src.push({ kind: "changes", changes });
    const ids = (t: string) => [...t.matchAll(/^id: (\S+)$/gm)].map((m) => m[1]!);
    const one = { text: "" };
    await readUntil(first, one, (t) => t.includes("id: id-k199"));
    assertEquals(ids(one.text), keys.map((k) => `id-${k}`));
    assert(second !== undefined, "the timer ran before the page was written out");
    const two = { text: "" };
    await readUntil(second, two, (t) => t.includes("id: id-k199"));
    const got = ids(two.text);
    // Joined between two slices: a suffix, neither empty nor the whole page, nothing twice.
    assert(got.length > 0 && got.length < keys.length, `the second member got ${got.length}`);
    assertEquals(got, keys.slice(keys.length - got.length).map((k) => `id-${k}`));
  } finally {
    await first.cancel();
    await second?.cancel();
  }
});

Deno.test("WatchGroup.started resolves when its stream says it started, or at its first item, and rejects when the stream ends before", async () => {
  let start = () => {};
  const quiet = new HandSource(); // it reads the nodes' logs and yields nothing yet
  const said = new WatchGroup((signal, started) => {
    start = started;
    return quiet.source(signal);
  }, OPTS);
  const kept = said.join(new AbortController().signal, () => {});
  let resolved = false;
  void said.started.then(() => resolved = true);
  await new Promise((r) => setTimeout(r, 10));
  assertEquals(resolved, false, "not before the stream says so");
  start();
  await said.started;
  await kept.cancel();
  const src = new HandSource();
  const yielded = new WatchGroup(src.source, OPTS);
  const member = yielded.join(new AbortController().signal, () => {});
  src.change("a");
  await yielded.started;
  await member.cancel();
  const ended = new WatchGroup(async function* (): AsyncGenerator<WatchItem> {
    yield* [];
  }, OPTS);
  const err = await ended.started.then(() => undefined, (e) => e);
  assertEquals(err?.code, "unavailable");
});
