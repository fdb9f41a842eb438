import { assertEquals } from "@std/assert";
import { progressWriter } from "./kv_client.ts";

function fakeOut(terminal: boolean) {
  const chunks: string[] = [];
  const dec = new TextDecoder();
  return {
    chunks,
    isTerminal: () => terminal,
    writeSync(b: Uint8Array) {
      chunks.push(dec.decode(b));
      return b.length;
    },
  };
}

Deno.test("progressWriter.done() on a terminal draws the bar at 100 % and ends its line", () => {
  const out = fakeOut(true);
  const bar = progressWriter(out);
  bar.update({ phase: "copying", movedKeys: 3, totalKeys: 10 });
  bar.done();
  bar.end(); // a second close writes nothing
  const text = out.chunks.join("");
  const lines = text.split("\r\x1b[2K").filter((l) => l !== "");
  assertEquals(lines.at(-1), `[${"#".repeat(30)}] 100% 3/10 keys, done\n`);
  assertEquals(text.endsWith("\n"), true);
  assertEquals(text.split("\n").length, 2, "one newline, after the last redraw");
});

Deno.test("progressWriter.done() off a terminal prints the final line; with nothing shown, nothing", () => {
  const out = fakeOut(false);
  const bar = progressWriter(out);
  bar.done();
  assertEquals(out.chunks, []);
  bar.update({ phase: "cleanup", movedKeys: 4, totalKeys: 4 });
  bar.done();
  assertEquals(out.chunks, [
    `[${"#".repeat(30)}] 100% 4/4 keys, cleanup\n`,
    `[${"#".repeat(30)}] 100% 4/4 keys, done\n`,
  ]);
});
