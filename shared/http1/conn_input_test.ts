import { assertEquals } from "@std/assert";
import { ConnInput, INITIAL_INPUT_BYTES, type Readable } from "./conn_input.ts";

/** A connection that hands out the given pieces, one per read, then ends. */
function pieces(...parts: string[]): Readable {
  const queue = parts.map((p) => new TextEncoder().encode(p));
  return {
    read(p: Uint8Array) {
      const next = queue.shift();
      if (next === undefined) return Promise.resolve(null);
      p.set(next);
      return Promise.resolve(next.byteLength);
    },
  };
}

Deno.test("ConnInput.readFresh() hands out chunks of their own size, not views of a 64 KiB buffer", async () => {
  const input = new ConnInput(pieces("a", "bc"), 1 << 20);
  const first = await input.readFresh(100_000);
  const second = await input.readFresh(100_000);
  // A client trickling a byte at a time must not pin a big buffer per byte it sends.
  assertEquals([first!.byteLength, first!.buffer.byteLength], [1, 1]);
  assertEquals(new TextDecoder().decode(second!), "bc");
  assertEquals(second!.buffer.byteLength, 2);
  assertEquals(await input.readFresh(10), null);
});

Deno.test("ConnInput.fill() grows the buffer up to its cap only, and shrink() gives it back", async () => {
  const big = "x".repeat(INITIAL_INPUT_BYTES);
  const input = new ConnInput(pieces(big, big, big), INITIAL_INPUT_BYTES * 2);
  assertEquals(await input.fill(), true);
  assertEquals(await input.fill(), true);
  assertEquals([input.buffered, input.buf.length], [
    INITIAL_INPUT_BYTES * 2,
    INITIAL_INPUT_BYTES * 2,
  ]);
  assertEquals(await input.fill(), false, "full at its cap: no more reads");
  input.skip(input.buffered);
  input.shrink();
  assertEquals(input.buf.length, INITIAL_INPUT_BYTES);
});
