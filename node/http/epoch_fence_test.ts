import { assert, assertEquals } from "@std/assert";
import { DEFAULT_LIMITS } from "../../shared/limits.ts";
import { hashKey, RING_SIZE } from "../../shared/ring.ts";
import { formatVersion } from "../../shared/version.ts";
import { EPOCH_HEADER } from "../../shared/wire.ts";
import { createNodeApp } from "./node_app.ts";
import { createFakeDisk } from "../../tests/doubles/fake_disk.ts";
import { openEngine } from "../engine/open_engine.ts";

const b64 = (text: string) => new TextEncoder().encode(text).toBase64();

async function setup() {
  // Born at time 0, so the hand-written ballots below are not older than the directory.
  const engine = await openEngine({ disk: createFakeDisk(), id: "n1", now: () => 0 });
  const app = createNodeApp({ engine, limits: DEFAULT_LIMITS });
  const pushMap = async (epoch: number) => {
    const map = { epoch, replicas: 1, vnodes: 8, nodes: [], rebalancing: null };
    const res = await app.request("/internal/cluster", {
      method: "PUT",
      body: JSON.stringify(map),
    });
    assertEquals(res.status, 200);
    await res.body?.cancel();
  };
  await pushMap(1);
  return { app, engine, pushMap };
}

/**
 * A request routed by `epoch` whose body arrives only on `send()`; `reading` resolves once the
 * node has admitted it and waits for the body.
 */
function slowBody(path: string, method: string, epoch: number, text: string) {
  const reading = Promise.withResolvers<void>();
  const gate = Promise.withResolvers<void>();
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      reading.resolve();
      await gate.promise;
      controller.enqueue(new TextEncoder().encode(text));
      controller.close();
    },
  });
  const req = new Request(`http://n1.test${path}`, {
    method,
    body,
    headers: { [EPOCH_HEADER]: String(epoch) },
  });
  return { req, reading: reading.promise, send: () => gate.resolve() };
}

/** What each write route sends, and how the test reads back whether it applied. */
const WRITES = [
  {
    name: "POST /internal/batch (put)",
    path: "/internal/batch",
    method: "POST",
    body: JSON.stringify({ ops: [{ op: "put", key: "k", value: b64("late") }] }),
  },
  {
    name: "POST /internal/ingest",
    path: "/internal/ingest",
    method: "POST",
    body: JSON.stringify({ k: "k", v: b64("late"), t: "text/plain", ver: "0", h: 0 }) + "\n",
  },
  {
    name: "POST /internal/accept",
    path: "/internal/accept",
    method: "POST",
    body: "", // set per test: its ballot must be above the directory's birth
  },
  { name: "PUT /kv/k", path: "/kv/k", method: "PUT", body: "late" },
] as const;

for (const write of WRITES) {
  for (const [epoch, answered] of [[1, 409], [2, null]] as const) {
    const what = answered === 409
      ? "answers 409 stale_epoch and applies nothing"
      : "routed by the newer map applies";
    Deno.test(`${write.name} admitted before a newer map is pushed, its body after: ${what}`, async () => {
      const { app, engine, pushMap } = await setup();
      try {
        const ver = formatVersion(5_000, 0, "px");
        const text = write.path === "/internal/accept"
          ? JSON.stringify({ entries: [{ k: "k", v: b64("late"), t: "text/plain", ver, h: 0 }] })
          : write.path === "/internal/ingest"
          ? write.body.replace('"ver":"0"', `"ver":"${ver}"`)
          : write.body;
        const slow = slowBody(write.path, write.method, epoch, text);
        const answer = app.fetch(slow.req);
        await slow.reading; // admitted: epoch 1 is the node's map
        await pushMap(2);
        slow.send();
        const res = await answer;
        const body = await res.text();
        const held = await engine.get("k");
        if (answered === 409) {
          assertEquals([res.status, JSON.parse(body).error.code], [409, "stale_epoch"], body);
          assertEquals(JSON.parse(body).error.epoch, 2);
          assertEquals(held, undefined, "nothing was applied");
        } else {
          assert(res.status < 300, `${res.status} ${body}`);
          assertEquals(new TextDecoder().decode(held?.value ?? undefined), "late");
        }
      } finally {
        await engine.close();
      }
    });
  }
}

Deno.test("POST /internal/drop admitted before a newer map is pushed, its body after: 409 stale_epoch, nothing dropped", async () => {
  const { app, engine, pushMap } = await setup();
  try {
    await engine.write([{ op: "put", key: "k", value: new Uint8Array([1]), contentType: "a/b" }]);
    const ranges = JSON.stringify({ ranges: [[0, RING_SIZE]] });
    const slow = slowBody("/internal/drop", "POST", 1, ranges);
    const answer = app.fetch(slow.req);
    await slow.reading;
    await pushMap(2); // e.g. a next add that moves the range back here
    slow.send();
    const res = await answer;
    assertEquals([res.status, (await res.json()).error.code], [409, "stale_epoch"]);
    assertEquals((await engine.get("k"))?.hash, await hashKey("k"), "the entry is still there");
  } finally {
    await engine.close();
  }
});

Deno.test("POST /internal/prepare admitted before a newer map is pushed, its body after: 409 stale_epoch, no promise given", async () => {
  const { app, engine, pushMap } = await setup();
  try {
    const high = formatVersion(9_000, 0, "px");
    const slow = slowBody(
      "/internal/prepare",
      "POST",
      1,
      JSON.stringify({ ops: [{ key: "k", ballot: high }] }),
    );
    const answer = app.fetch(slow.req);
    await slow.reading;
    await pushMap(2);
    slow.send();
    const res = await answer;
    assertEquals([res.status, (await res.json()).error.code], [409, "stale_epoch"]);
    // Without the promise of `high`, an accept below it under the new map is taken.
    const low = formatVersion(5_000, 0, "px");
    const accepted = await app.request("/internal/accept", {
      method: "POST",
      headers: { [EPOCH_HEADER]: "2" },
      body: JSON.stringify({ entries: [{ k: "k", v: b64("v"), t: "a/b", ver: low, h: 0 }] }),
    });
    assertEquals((await accepted.json()).results, [{ ok: true }]);
  } finally {
    await engine.close();
  }
});
