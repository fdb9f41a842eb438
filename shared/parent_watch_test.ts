import { assertEquals } from "@std/assert";
import { parentGone, watchedParent } from "./parent_watch.ts";

Deno.test("watchedParent() reads a pid from RINGKV_PARENT_PID, and no watch without one", () => {
  assertEquals(watchedParent({ RINGKV_PARENT_PID: "17" }), 17);
  assertEquals(watchedParent({}), undefined);
  assertEquals(watchedParent({ RINGKV_PARENT_PID: "" }), undefined);
  assertEquals(watchedParent({ RINGKV_PARENT_PID: "0" }), undefined);
  assertEquals(watchedParent({ RINGKV_PARENT_PID: "1x" }), undefined);
});

Deno.test("parentGone() resolves once the parent pid changes, not before", async () => {
  // The watch's own timer does not hold the process open (a server's listener does): this does.
  const alive = setInterval(() => {}, 1_000);
  let ppid = 100;
  let resolved = false;
  const gone = parentGone(100, { readPpid: () => ppid, everyMs: 5 }).then(() => resolved = true);
  await new Promise((r) => setTimeout(r, 30));
  assertEquals(resolved, false);
  ppid = 1; // reparented to init
  await gone;
  clearInterval(alive);
  assertEquals(resolved, true);
});

Deno.test("parentGone() resolves at once when the parent ended before the watch began", async () => {
  await parentGone(100, { readPpid: () => 1, everyMs: 60_000 });
});
