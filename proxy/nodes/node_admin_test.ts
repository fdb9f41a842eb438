import { assert, assertEquals, assertRejects } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import type { ClusterMap } from "../../shared/wire.ts";
import { checkProof, NodeAdmin } from "./node_admin.ts";
import { newChallenge, secretProof } from "../../shared/node_proof.ts";
import { stalledBody } from "../../tests/doubles/stalled_body.ts";
import { overRequests } from "../../tests/doubles/node_fetch.ts";

const map: ClusterMap = { epoch: 5, replicas: 1, vnodes: 8, nodes: [], rebalancing: null };

function recording(answer: (req: Request) => Response | Promise<Response>) {
  const seen: Request[] = [];
  const fetch = overRequests(async (req) => {
    seen.push(req.clone());
    return await answer(req);
  });
  return { seen, fetch };
}

Deno.test("NodeAdmin sends the cluster secret and the epoch on internal calls", async () => {
  const { seen, fetch } = recording(() => Response.json({ dropped: 3 }));
  const admin = new NodeAdmin({ fetch, timeoutMs: 1000, clusterSecret: "s3" });
  assertEquals(await admin.drop("http://n1", [{ start: 0, end: 10 }], 7), 3);
  assertEquals(seen[0]!.url, "http://n1/internal/drop");
  assertEquals(seen[0]!.headers.get("authorization"), "Bearer s3");
  assertEquals(seen[0]!.headers.get("x-ringkv-epoch"), "7");
  assertEquals(await seen[0]!.json(), { ranges: [[0, 10]] });
});

Deno.test("NodeAdmin never sends the cluster secret to /health; challengedHealth() sends a fresh challenge and follows no redirect", async () => {
  const { seen, fetch } = recording((req) => {
    const challenge = new URL(req.url).searchParams.get("challenge");
    const body = { status: "ok", id: "n1", epoch: 0, keys: 0 };
    return Response.json(challenge === null ? body : { ...body, proof: null });
  });
  const admin = new NodeAdmin({ fetch, timeoutMs: 1000, clusterSecret: "s3" });
  assertEquals((await admin.health("http://n1")).id, "n1");
  assertEquals(await admin.starting("http://n1"), false);
  const first = await admin.challengedHealth("http://n1");
  const second = await admin.challengedHealth("http://n1");
  assertEquals([first.health.id, first.secret, second.secret], ["n1", "none", "none"]);
  assertEquals(seen.length, 4);
  assertEquals(seen.map((r) => r.headers.get("authorization")), [null, null, null, null]);
  const challenges = seen.slice(2).map((r) => new URL(r.url).searchParams.get("challenge"));
  for (const c of challenges) assert(/^[0-9a-f]{32}$/.test(c ?? ""), String(c));
  assert(challenges[0] !== challenges[1], "a fresh challenge per call");
  assertEquals(seen.slice(2).map((r) => r.redirect), ["manual", "manual"]);
});

Deno.test("checkProof() judges a node's answer to a challenge against this proxy's secret", async () => {
  const challenge = newChallenge();
  const right = await secretProof("s3", challenge);
  const other = await secretProof("another", challenge);
  const cases: [string | undefined, unknown, string][] = [
    ["s3", right, "same"],
    ["s3", other, "other"],
    ["s3", await secretProof("s3", newChallenge()), "other"],
    ["s3", right.toUpperCase(), "other"],
    ["s3", right + "0", "other"],
    ["s3", "", "other"],
    ["s3", null, "none"],
    ["s3", undefined, "unanswered"],
    ["s3", 42, "unanswered"],
    [undefined, null, "same"],
    [undefined, undefined, "same"],
    [undefined, right, "unwanted"],
  ];
  for (const [ours, proof, want] of cases) {
    assertEquals(await checkProof(ours, challenge, proof), want, `${ours} ${proof}`);
  }
});

Deno.test("NodeAdmin.putMap() returns the node's newer map from a 409 stale_epoch", async () => {
  const newer = { ...map, epoch: 9 };
  const { fetch } = recording(() =>
    Response.json({ error: { code: "stale_epoch", message: "old", epoch: 9, map: newer } }, {
      status: 409,
    })
  );
  const admin = new NodeAdmin({ fetch, timeoutMs: 1000 });
  assertEquals(await admin.putMap("http://n1", map), { stored: false, map: newer });
});

Deno.test("NodeAdmin.getMap() is null on 404; errors say which node refused", async () => {
  const admin = new NodeAdmin({
    fetch: (url) =>
      Promise.resolve(
        url.startsWith("http://a")
          ? Response.json({ error: { code: "not_found", message: "none" } }, { status: 404 })
          : Response.json({ error: { code: "unauthorized", message: "no" } }, { status: 401 }),
      ),
    timeoutMs: 1000,
  });
  assertEquals(await admin.getMap("http://a"), null);
  const err = await assertRejects(() => admin.getMap("http://b"), RingkvError, "http://b");
  assertEquals(err.code, "bad_gateway");
});

Deno.test("NodeAdmin turns an unreachable node or a timeout into node_unavailable", async () => {
  const down = new NodeAdmin({
    fetch: () => Promise.reject(new TypeError("refused")),
    timeoutMs: 50,
  });
  const err = await assertRejects(() => down.health("http://gone"), RingkvError, "http://gone");
  assertEquals(err.code, "node_unavailable");
  const hang = new NodeAdmin({
    fetch: (_url, { signal }) =>
      new Promise((_, reject) => signal!.addEventListener("abort", () => reject(signal!.reason))),
    timeoutMs: 20,
  });
  assertEquals(
    (await assertRejects(() => hang.health("http://slow"), RingkvError)).code,
    "node_unavailable",
  );
});

Deno.test("NodeAdmin's node_unavailable says why fetch failed (its cause)", async () => {
  // Deno's fetch says "fetch failed" and keeps the reason (an untrusted certificate, a TLS
  // port called over http) in its cause; GET /cluster and the proxy's start show this text.
  const cause = new Error("client error (Connect): invalid peer certificate: UnknownIssuer");
  const admin = new NodeAdmin({
    fetch: () => Promise.reject(new TypeError("fetch failed", { cause })),
    timeoutMs: 50,
  });
  for (const call of [() => admin.health("https://n1"), () => admin.getMap("https://n1")]) {
    const err = await assertRejects(call, RingkvError, "invalid peer certificate: UnknownIssuer");
    assertEquals(err.code, "node_unavailable");
  }
});

Deno.test("NodeAdmin.scan() yields whole lines however the stream is cut", async () => {
  const text = '{"k":"a"}\n{"k":"bb"}\n\n{"k":"ccc"}';
  const parts = [text.slice(0, 5), text.slice(5, 14), text.slice(14)];
  const { seen, fetch } = recording(() =>
    new Response(
      new ReadableStream({
        start(c) {
          for (const p of parts) c.enqueue(new TextEncoder().encode(p));
          c.close();
        },
      }),
    )
  );
  const admin = new NodeAdmin({ fetch, timeoutMs: 1000 });
  const lines = await Array.fromAsync(
    admin.scan("http://n1", [{ start: 0, end: 5 }, { start: 9, end: 4294967296 }], 2),
  );
  assertEquals(lines, ['{"k":"a"}', '{"k":"bb"}', '{"k":"ccc"}']);
  assert(seen[0]!.url.endsWith("/internal/scan?ranges=0-5,9-4294967296"));
});

Deno.test("NodeAdmin.scan() reports a node's stale_epoch refusal", async () => {
  const { fetch } = recording(() =>
    Response.json({ error: { code: "stale_epoch", message: "newer", epoch: 4 } }, { status: 409 })
  );
  const admin = new NodeAdmin({ fetch, timeoutMs: 1000 });
  const err = await assertRejects(
    () => Array.fromAsync(admin.scan("http://n1", [], 2)),
    RingkvError,
  );
  assertEquals([err.code, err.extra.node, err.extra.epoch], ["stale_epoch", "http://n1", 4]);
});

/** A 200 whose body sends `first` (if any), then fails as a connection cut mid-body does. */
function breaking(first?: string): Response {
  return new Response(
    new ReadableStream<Uint8Array>({
      start(c) {
        if (first !== undefined) c.enqueue(new TextEncoder().encode(first));
      },
      pull(c) {
        c.error(new TypeError("error reading a body from connection: connection reset"));
      },
    }),
    { status: 200 },
  );
}

Deno.test("NodeAdmin.scan() turns a body that breaks mid-stream into node_unavailable naming the node", async () => {
  const admin = new NodeAdmin({
    fetch: () => Promise.resolve(breaking('{"k":"a"}\n')),
    timeoutMs: 1000,
  });
  const lines: string[] = [];
  const err = await assertRejects(async () => {
    for await (const line of admin.scan("http://n1", [], 2)) lines.push(line);
  }, RingkvError);
  assertEquals(lines, ['{"k":"a"}']);
  assertEquals([err.code, err.extra.node], ["node_unavailable", "http://n1"]);
  assert(err.message.includes("connection reset"), err.message);
});

Deno.test("NodeAdmin.scan() turns a node that stops sending (idle timeout) into node_unavailable", async () => {
  // A SIGSTOPped node: the head came, the body never goes on; only the abort ends the wait.
  const fetch = overRequests((req) =>
    new Response(
      new ReadableStream<Uint8Array>({
        start(c) {
          req.signal.addEventListener("abort", () => c.error(req.signal.reason));
        },
      }),
    )
  );
  const admin = new NodeAdmin({ fetch, timeoutMs: 20 });
  const err = await assertRejects(
    () => Array.fromAsync(admin.scan("http://n1", [], 2)),
    RingkvError,
  );
  assertEquals([err.code, err.extra.node], ["node_unavailable", "http://n1"]);
});

Deno.test("NodeAdmin's JSON calls turn a broken or non-JSON body into a RingkvError naming the node", async () => {
  const broken = new NodeAdmin({ fetch: () => Promise.resolve(breaking()), timeoutMs: 1000 });
  const calls = [
    () => broken.health("http://n1"),
    () => broken.getMap("http://n1"),
    () => broken.drop("http://n1", [], 2),
    () => broken.digest("http://n1", [], 2),
    () => broken.ingest("http://n1", ['{"k":"a"}'], 2),
  ];
  for (const call of calls) {
    const err = await assertRejects(call, RingkvError);
    assertEquals([err.code, err.extra.node], ["node_unavailable", "http://n1"]);
  }
  const garbled = new NodeAdmin({
    fetch: () => Promise.resolve(new Response("<html>", { status: 200 })),
    timeoutMs: 1000,
  });
  const err = await assertRejects(() => garbled.drop("http://n1", [], 2), RingkvError);
  assertEquals([err.code, err.extra.node], ["bad_gateway", "http://n1"]);
});

Deno.test("NodeAdmin.scanEntries() parses each line; a line that is no entry is bad_gateway naming the node", async () => {
  const text = '{"k":"a","v":null,"ver":"000000000001-0000-p","h":1}\n<html>\n';
  const admin = new NodeAdmin({
    fetch: () => Promise.resolve(new Response(text)),
    timeoutMs: 1000,
  });
  const keys: string[] = [];
  const err = await assertRejects(async () => {
    for await (const e of admin.scanEntries("http://n1", [], 2)) keys.push(e.k);
  }, RingkvError);
  assertEquals(keys, ["a"]);
  assertEquals([err.code, err.extra.node], ["bad_gateway", "http://n1"]);
});

Deno.test("NodeAdmin: a /health or map body that is not JSON is a 502, one that stalls a 503, naming the node", async () => {
  const garbled = new NodeAdmin({
    fetch: () => Promise.resolve(new Response("<html>oops</html>")),
    timeoutMs: 1000,
  });
  for (const call of [() => garbled.health("http://g"), () => garbled.getMap("http://g")]) {
    const err = await assertRejects(call, RingkvError, "http://g");
    assertEquals(err.code, "bad_gateway");
  }
  const stalled = new NodeAdmin({
    fetch: overRequests(stalledBody),
    timeoutMs: 20,
  });
  for (const call of [() => stalled.health("http://s"), () => stalled.getMap("http://s")]) {
    const err = await assertRejects(call, RingkvError, "http://s");
    assertEquals(err.code, "node_unavailable");
  }
  const stalledDrop = () => stalled.drop("http://s", [], 1);
  assertEquals((await assertRejects(stalledDrop, RingkvError)).code, "node_unavailable");
});

Deno.test("NodeAdmin: a node's map that is JSON but no map is a 502 naming the node, not a crash later", async () => {
  const malformed = [{ epoch: 1 }, { ...map, nodes: 3 }, {
    ...map,
    rebalancing: { kind: "add", nodeId: "n4", phase: "copying" },
  }];
  for (const bad of malformed) {
    const get = new NodeAdmin({
      fetch: recording(() => Response.json(bad)).fetch,
      timeoutMs: 1000,
    });
    const err = await assertRejects(() => get.getMap("http://n1"), RingkvError);
    assertEquals([err.code, err.message.includes("http://n1")], ["bad_gateway", true]);
    const stale = Response.json({ error: { code: "stale_epoch", message: "old", map: bad } }, {
      status: 409,
    });
    const put = new NodeAdmin({ fetch: recording(() => stale.clone()).fetch, timeoutMs: 1000 });
    // Its refusal stands (stale_epoch, as the node said) without the map it could not give.
    await assertRejects(() => put.putMap("http://n1", map), RingkvError);
    const vote = new NodeAdmin({
      fetch: recording(() => Response.json({ accepted: { ballot: "b", map: bad } })).fetch,
      timeoutMs: 1000,
    });
    const voted = vote.voteOnMap("http://n1", "prepare", { epoch: 2, ballot: "c", base: map });
    assertEquals((await assertRejects(() => voted, RingkvError)).code, "bad_gateway");
  }
});
