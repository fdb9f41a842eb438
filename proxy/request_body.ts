/**
 * Reading client request bodies with a size cap: `Content-Length` is checked before
 * anything is read, and a body without one is cut off as soon as it passes the cap, so
 * an oversized request costs at most `max` bytes of memory. A body that does not arrive
 * within the timeout is answered 408, so a trickling client cannot hold a request for ever.
 *
 * @module
 */
import { type ErrorCode, RingkvError } from "../shared/errors.ts";
import { DEFAULT_LIMITS } from "../shared/limits.ts";
import { concatBytes } from "../shared/bytes.ts";

/** The body as bytes; throws `tooLarge` (413) past `max` bytes, 408 past `timeoutMs`, 400 on a bad header. */
export async function readBody(
  req: Request,
  max: number,
  tooLarge: ErrorCode,
  what: string,
  timeoutMs: number = DEFAULT_LIMITS.bodyTimeoutMs!,
): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null) {
    if (!/^\d+$/.test(declared.trim())) {
      throw new RingkvError(
        "invalid_header",
        `Cannot read ${what}: Content-Length "${declared}" is not a number`,
      );
    }
    if (Number(declared) > max) throw overLimit(tooLarge, what, `${declared} bytes`, max);
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
        throw overLimit(tooLarge, what, `more than ${max} bytes`, max);
      }
      chunks.push(value);
    }
  } catch (err) {
    if (err instanceof RingkvError) throw err;
    if (timedOut) throw bodyTimeout(what, timeoutMs);
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

function overLimit(code: ErrorCode, what: string, size: string, max: number): RingkvError {
  const flag = code === "value_too_large" ? "--max-value-bytes" : "--max-batch-bytes";
  return new RingkvError(
    code,
    `Cannot accept ${what}: it is ${size}, the limit is ${max} (${flag})`,
  );
}

/** UTF-8 text of bytes, or undefined when they are not valid UTF-8. */
export function utf8Text(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return undefined;
  }
}
