/**
 * What reading a request's body costs `Deno.serve`, by way of reading it: a bare server taking
 * `PUT`s of 100 B (`Content-Length` declared, as every client of the proxy and the proxy's calls
 * to nodes send), one fresh process per way and round, `wrk -t1 -c32 -d3s`, CPU µs per request
 * from /proc; the rounds interleave the ways.
 *
 *     deno run -A tasks/bench/body_floor.ts [ROUNDS]   # default 3; Linux, needs wrk
 *
 * Reading `req.body` makes a ReadableStream object that reading the body whole (`req.bytes()`,
 * one op) does not need (2026-12-08, 3 rounds on a loaded host: `req.bytes()` 19.3 µs,
 * readCappedBody 28.1, a bare reader loop 31.9). shared/capped_body.ts reads every body through
 * a reader all the same: a `req.bytes()` cannot be cancelled at the body's deadline.
 *
 * @module
 */
import { readCappedBody } from "../../shared/capped_body.ts";
import { RingkvError } from "../../shared/errors.ts";
import { SlotTimers } from "../../shared/slot_timers.ts";
import { compareWays } from "./serve_floor.ts";

const timers = new SlotTimers(10_000);
const tooLarge = (size: number) => new RingkvError("value_too_large", `${size} bytes`);

/** Each way of reading a body, by name; every way answers its length. */
export const WAYS: Record<string, (req: Request) => Promise<Uint8Array>> = {
  "req.bytes() (the floor)": (req) => req.bytes(),
  "readCappedBody (a reader, capped, timed)": (req) =>
    readCappedBody(req, 1 << 20, tooLarge, "it", timers),
  "req.body's reader, chunk by chunk": async (req) => {
    const reader = req.body!.getReader();
    const chunks: Uint8Array[] = [];
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      chunks.push(value);
    }
    return new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  },
};

function serve(name: string): void {
  const way = WAYS[name];
  if (way === undefined) throw new Error(`Cannot serve way "${name}": no such way`);
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`),
  }, async (req) => new Response(String((await way(req)).length)));
  Deno.addSignalListener("SIGINT", () => void server.shutdown());
}

if (import.meta.main) {
  if (Deno.args[0] === "serve") serve(Deno.args.slice(1).join(" "));
  else {
    const lua = `wrk.method = "PUT"\nwrk.body = string.rep("v", 100)\n`;
    await compareWays(new URL(import.meta.url), Object.keys(WAYS), lua, Number(Deno.args[0] ?? 3));
  }
}
