import { assert, assertEquals } from "@std/assert";
import { ProcessCluster } from "./helpers/process_cluster.ts";
import { openSse, type SseEvent, type SseReader } from "./helpers/sse.ts";
import {
  type Acked,
  assertOncePerKeyInOrder,
  changes,
  untilSeen,
  writes,
} from "./helpers/watch_writes.ts";

/** The change events of `events` as `id key version` lines. */
function lines(events: SseEvent[]): string[] {
  return events.filter((e) => e.event === "message").map((e) => {
    const c = JSON.parse(e.data);
    return `${e.id} ${c.key} ${c.version}`;
  });
}

Deno.test("watch: two streams of one prefix (one watch group) each see every write acknowledged after it opened exactly once, and a member's id resumes", async () => {
  const cluster = await ProcessCluster.create();
  const readers: SseReader[] = [];
  try {
    const proxy = await cluster.startAll(3, 3);
    const acked: Acked[] = [];
    const first = await openSse(`${proxy.url}/watch?prefix=w/`);
    readers.push(first);
    await writes(proxy.url, 0, 20, acked);
    const second = await openSse(`${proxy.url}/watch?prefix=w/`);
    readers.push(second);
    assertEquals([first.status, second.status], [200, 200]);
    const afterJoin = acked.length;
    await writes(proxy.url, 20, 40, acked);
    await untilSeen([first], acked, 20_000);
    await untilSeen([second], acked.slice(afterJoin), 20_000);
    await second.stop();
    assertOncePerKeyInOrder(changes(first.events), acked);
    assertOncePerKeyInOrder(changes(second.events), acked.slice(afterJoin));
    // One prefix, one sequence: the second stream's events, ids (cursors) included, are a
    // run of the first one's.
    const a = lines(first.events);
    const b = lines(second.events);
    assert(b.length > 0 && a.includes(b[0]!), "the second stream's first event is the first's");
    const from = a.indexOf(b[0]!);
    assertEquals(a.slice(from, from + b.length), b);

    // The member's last id is a cursor of the group's merge: a resume gets what came after.
    const cursor = second.lastId();
    assert(cursor !== undefined);
    const before = acked.length;
    await writes(proxy.url, 60, 20, acked);
    const resumed = await openSse(`${proxy.url}/watch?prefix=w/`, { "last-event-id": cursor });
    readers.push(resumed);
    await untilSeen([second, resumed], acked.slice(afterJoin), 20_000);
    await resumed.stop();
    const all = [...second.events, ...resumed.events];
    assertEquals(all.filter((e) => e.event !== "message"), [], "no compacted or reset events");
    assertOncePerKeyInOrder(changes(all), acked.slice(afterJoin));
    assert(
      changes(resumed.events).length >= acked.length - before,
      "the resumed stream got the writes made while the member was away",
    );
  } finally {
    for (const r of readers) await r.stop();
    await cluster.stop();
  }
});
