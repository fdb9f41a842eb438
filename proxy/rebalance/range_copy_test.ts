import { assert, assertEquals } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import type { Range } from "../../shared/ring.ts";
import type { NodeInfo } from "../../shared/wire.ts";
import { initialMap, planAdd, planRemove, toCleanup } from "../cluster/map_transitions.ts";
import type { NodeAdmin } from "../nodes/node_admin.ts";
import { TEST_VNODES } from "../../tests/doubles/test_cluster.ts";
import { dropMoves } from "./range_copy.ts";

const NODES: NodeInfo[] = ["n1", "n2", "n3", "n4"].map((id) => ({
  id,
  url: `http://${id}.test`,
  weight: 1,
  incarnation: `inc-${id}`,
}));

/**
 * A NodeAdmin whose drops are recorded; `refusing` URLs answer with another data directory,
 * `later` URLs with a later cluster map.
 */
function dropsTo(refusing: string[] = [], later: string[] = []) {
  const calls: { id: string; incarnation?: string }[] = [];
  const admin = {
    drop(url: string, _ranges: readonly Range[], epoch: number, incarnation?: string) {
      calls.push({ id: new URL(url).hostname.split(".")[0]!, incarnation });
      if (refusing.includes(url)) {
        return Promise.reject(new RingkvError("node_recovering", `${url}: another incarnation`));
      }
      if (later.includes(url)) {
        const held = `epoch ${epoch}: this node has the cluster map of epoch ${epoch + 1}`;
        return Promise.reject(new RingkvError("stale_epoch", held));
      }
      return Promise.resolve(1);
    },
  } as unknown as NodeAdmin;
  return { admin, calls };
}

Deno.test("dropMoves() sends each old owner the incarnation the map records, the leaving node's too", async () => {
  const cleanup = toCleanup(planRemove(initialMap(NODES, 1, TEST_VNODES), "n2", 0, 0), 0);
  const { admin, calls } = dropsTo();
  await dropMoves(cleanup, { admin, epoch: cleanup.epoch });
  assertEquals(calls, [{ id: "n2", incarnation: "inc-n2" }]);
});

Deno.test("dropMoves() goes on past a staying node that runs on another data directory: it holds none of the ranges", async () => {
  const three = initialMap(NODES.slice(0, 3), 1, TEST_VNODES);
  const cleanup = toCleanup(planAdd(three, NODES[3]!, 0, 0), 0);
  const { admin, calls } = dropsTo(["http://n3.test"]);
  const logged: Record<string, unknown>[] = [];
  await dropMoves(cleanup, { admin, epoch: cleanup.epoch, log: (o) => logged.push(o) });
  assert(calls.some((c) => c.id === "n3"), "n3 was asked");
  assert(calls.every((c) => c.incarnation === `inc-${c.id}`));
  assert(logged.some((o) => o.node === "n3" && o.msg !== "ranges dropped"));
});

Deno.test("dropMoves(): a leaving node on a later map is logged at info as a cleanup another proxy finished, not as a failed drop", async () => {
  const cleanup = toCleanup(planRemove(initialMap(NODES, 1, TEST_VNODES), "n2", 0, 0), 0);
  const { admin } = dropsTo([], ["http://n2.test"]);
  const logged: Record<string, unknown>[] = [];
  await dropMoves(cleanup, { admin, epoch: cleanup.epoch, log: (o) => logged.push(o) });
  assertEquals(logged.map((o) => [o.level, o.node]), [["info", "n2"]]);
  assert(!logged.some((o) => o.msg === "leaving node did not drop its ranges"));
});
