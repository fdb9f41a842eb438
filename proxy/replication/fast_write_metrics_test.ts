import { assertEquals, assertRejects } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import { render } from "../../shared/prom.ts";
import { formatVersion } from "../../shared/version.ts";
import type { BatchOp } from "../../shared/wire.ts";
import { StaleEpochError } from "../nodes/node_client.ts";
import { FAKE_NOW, FakeAcceptors, proposerOver } from "../../tests/doubles/fake_acceptors.ts";
import { parsePrometheus, sampleValue } from "../../tests/helpers/prom_parse.ts";
import { type Replicas, Replicated } from "./caspaxos.ts";
import { Hints } from "./hints.ts";
import { FAST_OUTCOMES } from "./fast_write.ts";
import { fastWriteMetrics } from "./fast_write_metrics.ts";

const IDS = ["n1", "n2", "n3"];
const OWNERS = IDS.map((id) => ({ id, url: `http://${id}.test` }));
const NOW = FAKE_NOW; // the clock of proposerOver()
const THEIRS = formatVersion(NOW + 60_000, 0, "pOther");

function setup() {
  const nodes = new FakeAcceptors(IDS);
  const hints = new Hints();
  const rep = proposerOver(nodes, { hints });
  return { nodes, hints, rep };
}

/** Every hint taken out, as replays would: an owner with hints pending takes no fast write. */
function replayed(hints: Hints): void {
  for (const id of IDS) hints.take(id, Infinity);
}

const R: Replicas = { owners: OWNERS, joining: [], key: "k", point: 7, epoch: 1 };
const put = (extra: Partial<BatchOp> = {}): BatchOp => ({
  op: "put",
  key: "k",
  value: "",
  ...extra,
});

/** The counters as /metrics would show them, by outcome. */
function scraped(rep: Replicated): Record<string, number> {
  const families = parsePrometheus(render(fastWriteMetrics(rep)));
  const out: Record<string, number> = {};
  for (const outcome of Object.keys(FAST_OUTCOMES)) {
    out[outcome] = sampleValue(families, "ringkv_proxy_fast_writes_total", { outcome });
  }
  out.paused = sampleValue(families, "ringkv_proxy_fast_writes_paused_total");
  out.keys = sampleValue(families, "ringkv_proxy_fast_write_keys");
  return out;
}

/** Runs `step` and returns the scraped counters that moved, with how much. */
async function moved(rep: Replicated, step: () => Promise<unknown>) {
  const before = scraped(rep);
  await step();
  const after = scraped(rep);
  return Object.fromEntries(
    Object.keys(after).filter((k) => after[k] !== before[k]).map((
      k,
    ) => [k, after[k]! - before[k]!]),
  );
}

const fails = (p: Promise<unknown>) => assertRejects(() => p, RingkvError);

Deno.test("fast-write counters: decided, condition, refused, stale, and the record's keys move", async () => {
  const { nodes, rep } = setup();
  assertEquals(await moved(rep, () => rep.run(R, put())), { keys: 1 });
  assertEquals(await moved(rep, () => rep.run(R, put())), { decided: 1 });
  // A failed condition on the record: a full round (which forgets, then remembers nothing).
  assertEquals(await moved(rep, () => rep.run(R, put({ ifNoneMatch: "*" }))), {
    condition: 1,
    keys: -1,
  });
  await rep.run(R, put());
  for (const id of IDS) nodes.slot(id, "k").promised = THEIRS;
  assertEquals(await moved(rep, () => rep.run(R, put())), { refused: 1 });
  for (const id of IDS) nodes.fault(id, "accept", "stale", 1);
  assertEquals(await moved(rep, () => fails(rep.run(R, put()))), { stale: 1, keys: -1 });
});

Deno.test("fast-write counters: each recovery outcome moves its own counter", async () => {
  const { nodes, hints, rep } = setup();
  await rep.run(R, put());
  // Stored on n2 only, its answer lost; n1 and n3 answer nothing: a read repairs it.
  nodes.fault("n1", "accept", "down", 1);
  nodes.fault("n2", "accept", "lost", 1);
  nodes.fault("n3", "accept", "down", 1);
  nodes.fault("n3", "read", "down", 1);
  assertEquals(await moved(rep, () => rep.run(R, put())), {
    recovered: 1,
    repaired: 1,
    keys: -1,
  });

  replayed(hints);
  await rep.run(R, put());
  nodes.slot("n1", "k").promised = formatVersion(NOW + 1000, 0, "pOther");
  nodes.fault("n2", "accept", "lost", 1);
  nodes.fault("n3", "accept", "down", 2);
  nodes.fault("n3", "prepare", "down", 1);
  nodes.fault("n3", "read", "down", 1);
  assertEquals(await moved(rep, () => fails(rep.run(R, put()))), {
    recovered: 1,
    ours: 1,
    restamped: 1,
    keys: -1,
  });

  nodes.faults.clear();
  replayed(hints);
  await rep.run(R, put());
  nodes.slot("n1", "k").promised = formatVersion(NOW + 2000, 0, "pOther");
  nodes.fault("n2", "accept", "down", 1);
  nodes.fault("n3", "prepare", "down"); // n3 holds the fast entry; the quorum is n1, n2
  nodes.fault("n3", "read", "down", 1);
  assertEquals(await moved(rep, () => rep.run(R, put())), { recovered: 1, older: 1, keys: -1 });
});

Deno.test("fast-write counters: newer and unconfirmed, the writer-id cap and the pause", async () => {
  const { nodes, hints, rep } = setup();
  await rep.run(R, put());
  nodes.slot("n1", "k").entry = { k: "k", v: "", ver: THEIRS, h: 7 };
  nodes.fault("n2", "accept", "down", 1);
  nodes.fault("n3", "prepare", "down", 1);
  assertEquals(await moved(rep, () => fails(rep.run(R, put()))), {
    recovered: 1,
    newer: 1,
    unconfirmed: 1,
    keys: -1,
  });

  const other: Replicas = { ...R, key: "c" };
  const putC = (): BatchOp => ({ op: "put", key: "c", value: "" });
  replayed(hints);
  for (let i = 0; i <= 19; i++) await rep.run(other, putC());
  assertEquals(await moved(rep, () => rep.run(other, putC())), { capped: 1 });
});

Deno.test("fast-write counters: past one failed fast write in 4, the skipped ones are counted", async () => {
  const { nodes, rep } = setup();
  let paused = 0;
  for (let i = 0; i < 300 && paused === 0; i++) {
    await rep.run(R, put());
    for (const id of IDS) nodes.slot(id, "k").promised = formatVersion(NOW + 10_000 + i, 0, "x");
    paused = (await moved(rep, () => rep.run(R, put()))).paused ?? 0;
  }
  assertEquals(paused, 1);
});

Deno.test("fast-write counters: a stale epoch during recovery is unconfirmed, not a retry", async () => {
  const { nodes, rep } = setup();
  await rep.run(R, put());
  nodes.fault("n1", "accept", "stale", 2);
  nodes.fault("n1", "prepare", "stale");
  nodes.slot("n3", "k").promised = THEIRS;
  const out = await moved(rep, async () => {
    const err = await assertRejects(() => rep.run(R, put()), RingkvError);
    assertEquals(err instanceof StaleEpochError, false);
  });
  assertEquals([out.recovered, out.unconfirmed], [1, 1]);
});
