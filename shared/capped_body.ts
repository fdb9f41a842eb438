/**
 * Reading a request body with a size cap, for the proxy's and the nodes' routes: the
 * declared `Content-Length` is checked before anything is read, the bytes read are counted
 * while the body streams, so a client can never make a process buffer more than the cap,
 * and a body that does not arrive within the timeout is answered 408.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { readCappedBody } from "./capped_body.ts";
 * import { RingkvError } from "./errors.ts";
 * const req = new Request("http://x/", { method: "PUT", body: "hello" });
 * const tooLarge = (size: number) => new RingkvError("value_too_large", `${size} bytes`);
 * const bytes = await readCappedBody(req, 1024, tooLarge, "the value", 10_000);
 * assert(bytes.length === 5);
 * ```
 */
import { concatBytes } from "./bytes.ts";
import { RingkvError } from "./errors.ts";
import type { SlotTimers } from "./slot_timers.ts";

/**
 * The 413 for a body over the cap: `size` is its declared length (`exact`), or the bytes
 * read when the cap was passed (a lower bound).
 */
export type TooLarge = (size: number, exact: boolean) => RingkvError;

/**
 * The body's bytes; throws `tooLarge` past `max` bytes, 408 past the timeout, 400 on a bad
 * length. `timeout` is in ms (a timer of its own), or the {@link SlotTimers} of a hot route.
 */
export async function readCappedBody(
  req: Request,
  max: number,
  tooLarge: TooLarge,
  what: string,
  timeout: number | SlotTimers,
): Promise<Uint8Array> {
  checkDeclaredLength(req, max, tooLarge, what);
  if (req.body === null) return new Uint8Array(0);
  // Through a reader even when the length is declared: `req.bytes()` is ~4 µs cheaper per body
  // (tasks/bench/body_floor.ts) but cannot be cancelled, so a client trickling after its 408 kept
  // the read and its bytes, out of the in-flight count (review: 150 such clients held 645 MB
  // against 266 MB this way).
  const reader = req.body.getReader();
  const timeoutMs = typeof timeout === "number" ? timeout : timeout.timeoutMs;
  let timedOut = false;
  // A client trickling its body must not hold the request (and its memory) for ever.
  const onTimeout = () => {
    timedOut = true;
    reader.cancel().catch(() => {});
  };
  const timer = typeof timeout === "number" ? setTimeout(onTimeout, timeout) : undefined;
  const armed = typeof timeout === "number" ? undefined : timeout.start(onTimeout);
  try {
    const bytes = await readChunks(reader, max, tooLarge, () => timedOut);
    if (bytes === undefined) throw bodyTimeout(what, timeoutMs);
    return bytes;
  } catch (err) {
    if (err instanceof RingkvError) throw err;
    if (timedOut) throw bodyTimeout(what, timeoutMs);
    // A client that hangs up mid-body: nothing to answer, but it must not look like a bug.
    throw new RingkvError("bad_request", `Cannot read ${what}: the connection failed (${err})`);
  } finally {
    if (armed === undefined) clearTimeout(timer);
    else (timeout as SlotTimers).stop(armed);
  }
}

/** Refuses a declared `Content-Length` that is not a number (400) or is past `max` (413). */
function checkDeclaredLength(req: Request, max: number, tooLarge: TooLarge, what: string): void {
  const declared = req.headers.get("content-length");
  if (declared === null) return;
  if (!/^\d+$/.test(declared.trim())) {
    throw new RingkvError(
      "invalid_header",
      `Cannot read ${what}: Content-Length "${declared}" is not a number`,
    );
  }
  if (Number(declared) > max) throw tooLarge(Number(declared), true);
}

/**
 * The chunks of `reader` joined, at most `max` bytes (throws `tooLarge` past it), or undefined
 * once `timedOut()`. It reads to the end even when the declared length has arrived: Deno.serve
 * closes the connection after answering a request whose streamed body was not read to its end.
 */
async function readChunks(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  max: number,
  tooLarge: TooLarge,
  timedOut: () => boolean,
): Promise<Uint8Array | undefined> {
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (timedOut()) return undefined;
    if (done) break;
    total += value.byteLength;
    if (total > max) {
      reader.cancel().catch(() => {});
      throw tooLarge(total, false);
    }
    chunks.push(value);
  }
  return concatBytes(chunks);
}

function bodyTimeout(what: string, timeoutMs: number): RingkvError {
  return new RingkvError(
    "request_timeout",
    `Cannot read ${what}: the body did not arrive within ${timeoutMs} ms (--body-timeout-ms)`,
  );
}
