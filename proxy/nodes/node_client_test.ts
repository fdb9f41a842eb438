import { assertEquals, assertMatch, assertRejects } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import type { BatchOp } from "../../shared/wire.ts";
import { failureReason, NodeClient } from "./node_client.ts";
import { serveSelfSigned } from "../../tests/helpers/self_signed.ts";

const NODE = { id: "n1", url: "http://n1.test" };
const VER = "01a24bc5c827-0000-n1";
const OPS: BatchOp[] = [
  { op: "get", key: "a" },
  { op: "put", key: "w", value: "" },
  { op: "get", key: "b" },
];

/** A client whose node answers every call with `results`; the bodies it was sent. */
function clientAnswering(results: unknown[]) {
  const sent: unknown[] = [];
  const fetch = (_url: string, init: RequestInit) => {
    sent.push(JSON.parse(init.body as string));
    return Promise.resolve(Response.json({ results }));
  };
  return { client: new NodeClient({ fetch, timeoutMs: 1000 }), sent };
}

Deno.test("NodeClient.batch() sends its value budget and takes a read left unread after the first", async () => {
  const results = [{ status: 200, version: VER, text: "v" }, { status: 201, version: VER }, null];
  const { client, sent } = clientAnswering(results);
  assertEquals(await client.batch(NODE, 1, OPS, undefined, 4096), results);
  assertEquals(sent, [{ ops: OPS, textValues: true, valueBudget: 4096 }]);
});

Deno.test("NodeClient.batch() answers 502 for an unread first read, an unread write, or any unread without a budget", async () => {
  const read = { status: 200, version: VER, text: "v" };
  const write = { status: 201, version: VER };
  const broken = [
    [[null, write, read], 4096, "result 0, its first read, is unread"],
    [[read, null, read], 4096, "result 1 is not an object"],
    [[read, write, null], undefined, "result 2 is not an object"],
  ] as const;
  for (const [results, budget, why] of broken) {
    const call = clientAnswering([...results]).client.batch(NODE, 1, OPS, undefined, budget);
    const err = await assertRejects(() => call, RingkvError, why);
    assertEquals(err.code, "bad_gateway", why);
  }
});

Deno.test("failureReason() of an https node the proxy does not trust, or reached over http, says what to do", async () => {
  // QA: the proxy printed only rustls's "invalid peer certificate: UnknownIssuer".
  await using server = await serveSelfSigned(() => new Response("{}"));
  if (server === undefined) return; // no openssl here
  for (
    const [url, hint] of [
      [`https://127.0.0.1:${server.port}/health`, /UnknownIssuer.*the proxy's --ca FILE/],
      [`http://127.0.0.1:${server.port}/health`, /invalid HTTP version.*give its URL as https:/],
    ] as const
  ) {
    const err = await fetch(url).then(() => undefined, (e) => e);
    assertMatch(failureReason(err), hint);
  }
});

Deno.test("NodeClient.expired() answers 502 for a keys list whose entries are not {k, ver}", async () => {
  // Security review: the TTL reaper's timer would end the process on the TypeError.
  for (const keys of [[null], [{ k: "a" }], [{ k: 1, ver: VER }], "a"]) {
    const fetch = () => Promise.resolve(Response.json({ keys }));
    const client = new NodeClient({ fetch, timeoutMs: 1000 });
    const err = await assertRejects(() => client.expired(NODE, 1, 0, 10), RingkvError);
    assertEquals(err.code, "bad_gateway", JSON.stringify(keys));
  }
  const fetch = () => Promise.resolve(Response.json({ keys: [{ k: "a", ver: VER }] }));
  const ok = await new NodeClient({ fetch, timeoutMs: 1000 }).expired(NODE, 1, 0, 10);
  assertEquals(ok, [{ k: "a", ver: VER }]);
});
