import { assertEquals } from "@std/assert";
import { RingkvError } from "../../shared/errors.ts";
import { gather } from "./quorum.ts";

const nodes = ["up1", "up2", "down"].map((id) => ({ id, url: `http://${id}.test` }));

Deno.test("gather() calls a down replica in place of an up one that failed", async () => {
  const called: string[] = [];
  const got = await gather(nodes, 2, 2, (n) => {
    called.push(n.id);
    if (n.id === "up2") return Promise.reject(new RingkvError("node_unavailable", "gone"));
    return Promise.resolve(true);
  }, (v) => v);
  assertEquals([got.ok, called], [true, ["up1", "up2", "down"]]);
});

Deno.test("gather() does not call a down replica in place of an up one that refused", async () => {
  const called: string[] = [];
  const got = await gather(nodes, 2, 2, (n) => {
    called.push(n.id);
    return Promise.resolve(n.id !== "up2");
  }, (v) => v);
  assertEquals([got.ok, got.bad.length, called], [false, 1, ["up1", "up2"]]);
  assertEquals(got.skipped.map((n) => n.id), ["down"]);
});
