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

/**
 * The 413 for a body over the cap: `size` is its declared length (`exact`), or the bytes
 * read when the cap was passed (a lower bound).
 */
export type TooLarge = (size: number, exact: boolean) => RingkvError;

/** The body's bytes; throws `tooLarge` past `max` bytes, 408 past `timeoutMs`, 400 on a bad length. */
export async function readCappedBody(
  req: Request,
  max: number,
  tooLarge: TooLarge,
  what: string,
  timeoutMs: number,
): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null) {
    if (!/^\d+$/.test(declared.trim())) {
      throw new RingkvError(
        "invalid_header",
        `Cannot read ${what}: Content-Length "${declared}" is not a number`,
      );
    }
    if (Number(declared) > max) throw tooLarge(Number(declared), true);
  }
  if (req.body === null) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  let timedOut = false;
  // A client trickling its body must not hold the request (and its memory) for ever.
  const timer = setTimeout(() => {
    timedOut = true;
    reader.cancel().catch(() => {});
  }, timeoutMs);
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (timedOut) throw bodyTimeout(what, timeoutMs);
      if (done) break;
      total += value.byteLength;
      if (total > max) {
        reader.cancel().catch(() => {});
        throw tooLarge(total, false);
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof RingkvError) throw err;
    if (timedOut) throw bodyTimeout(what, timeoutMs);
    // A client that hangs up mid-body: nothing to answer, but it must not look like a bug.
    throw new RingkvError("bad_request", `Cannot read ${what}: the connection failed (${err})`);
  } finally {
    clearTimeout(timer);
  }
  return concatBytes(chunks);
}

function bodyTimeout(what: string, timeoutMs: number): RingkvError {
  return new RingkvError(
    "request_timeout",
    `Cannot read ${what}: the body did not arrive within ${timeoutMs} ms (--body-timeout-ms)`,
  );
}
