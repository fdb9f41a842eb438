import { assertEquals } from "@std/assert";
import { GcHint } from "./gc_hint.ts";

Deno.test("GcHint starts a last-resort (compacting) major GC after 32 MiB of writes and a quiet pause, not before", async () => {
  const calls: unknown[] = [];
  const hint = new GcHint((options) => calls.push(options), 10);
  try {
    hint.wrote(1 << 20);
    await new Promise((r) => setTimeout(r, 30));
    assertEquals(calls.length, 0);
    hint.wrote(32 << 20);
    const deadline = Date.now() + 5000;
    while (calls.length === 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 5));
    }
    assertEquals(calls, [{ type: "major", execution: "async", flavor: "last-resort" }]);
  } finally {
    hint.stop();
  }
});

Deno.test("GcHint does nothing when the runtime has no gc", () => {
  const hint = new GcHint(undefined, 10);
  hint.now();
  hint.wrote(64 << 20);
  hint.stop();
});
