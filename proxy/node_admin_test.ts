import { assert, assertEquals, assertRejects } from "@std/assert";
import { RingkvError } from "../shared/errors.ts";
import type { ClusterMap } from "../shared/wire.ts";
import { NodeAdmin } from "./node_admin.ts";

const map: ClusterMap = { epoch: 5, replicas: 1, vnodes: 8, nodes: [], rebalancing: null };

function recording(answer: (req: Request) => Response | Promise<Response>) {
  const seen: Request[] = [];
  const fetch = async (req: Request) => {
    seen.push(req.clone());
    return await answer(req);
  };
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
    fetch: (req) =>
      Promise.resolve(
        req.url.startsWith("http://a")
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
    fetch: (req) =>
      new Promise((_, reject) =>
        req.signal.addEventListener("abort", () => reject(req.signal.reason))
      ),
    timeoutMs: 20,
  });
  assertEquals(
    (await assertRejects(() => hang.health("http://slow"), RingkvError)).code,
    "node_unavailable",
  );
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

Deno.test("NodeAdmin: an answer whose body is cut off (a timeout mid-body) is a node_unavailable error, not a bare TimeoutError", async () => {
  const cutOff = () => {
    let sent = false;
    const body = new ReadableStream<Uint8Array>({
      pull(controller) {
        if (sent) {
          controller.error(
            new DOMException("The operation was aborted due to timeout", "TimeoutError"),
          );
        } else {
          sent = true;
          controller.enqueue(new TextEncoder().encode('{"epoch":'));
        }
      },
    });
    return new Response(body, { status: 200 });
  };
  const admin = new NodeAdmin({ fetch: () => Promise.resolve(cutOff()), timeoutMs: 1000 });
  const err = await assertRejects(() => admin.getMap("http://n1"), RingkvError, "timeout");
  assertEquals((err as RingkvError).code, "node_unavailable");
  const lines = admin.scan("http://n1", [{ start: 0, end: 10 }], 1);
  await assertRejects(() => lines.next(), RingkvError, "Cannot reach node http://n1");
});
