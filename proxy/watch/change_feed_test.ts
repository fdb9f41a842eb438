import { assert, assertEquals, assertRejects } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import { StaleEpochError } from "../nodes/node_client.ts";
import { ChangeFeed } from "./change_feed.ts";

const node = { id: "n1", url: "http://n1.test" };
const q = { prefix: "", waitMs: 0, limit: 1 };

/** A feed whose node answers `status` with `body`. */
function feedAnswering(status: number, body: unknown): ChangeFeed {
  const fetch = () => Promise.resolve(Response.json(body, { status }));
  return new ChangeFeed({ fetch, timeoutMs: 1000 });
}

Deno.test("ChangeFeed.page() tells a node on a newer cluster map (409 stale_epoch) from one that is down", async () => {
  const stale = feedAnswering(409, { error: { code: "stale_epoch", message: "newer" }, epoch: 7 });
  const err = await assertRejects(() => stale.page(node, 3, q), StaleEpochError);
  assertEquals([err.node.url, err.nodeEpoch], [node.url, 7]);
  const down = feedAnswering(503, { error: { code: "unavailable", message: "disk" } });
  const other = await assertRejects(() => down.page(node, 3, q), RingkvError);
  assert(!(other instanceof StaleEpochError));
  assertEquals(other.code, "node_unavailable");
});
