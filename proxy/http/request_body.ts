/**
 * Reading client request bodies with a size cap (shared/capped_body.ts), with the proxy's
 * 413 messages; a cap a flag sets is named with its flag (the batch and admin caps are fixed).
 *
 * @module
 */
import { type ErrorCode, RingkvError } from "../../shared/errors.ts";
import { readCappedBody } from "../../shared/capped_body.ts";
import type { SlotTimers } from "../../shared/slot_timers.ts";

/**
 * The body as bytes; throws `tooLarge` (413) past `max` bytes, 408 past `timeout` (ms, or the
 * route's shared {@link SlotTimers}), 400 on a bad header.
 */
export function readBody(
  req: Request,
  max: number,
  tooLarge: ErrorCode,
  what: string,
  timeout: number | SlotTimers,
): Promise<Uint8Array> {
  // Only the value cap has a flag; naming a flag that does not exist sends users astray.
  const flag = tooLarge === "value_too_large" ? " (--max-value-bytes)" : "";
  const refusal = (size: number, exact: boolean) =>
    new RingkvError(
      tooLarge,
      `Cannot accept ${what}: it is ${exact ? size : `more than ${max}`} bytes, ` +
        `the limit is ${max}${flag}`,
    );
  return readCappedBody(req, max, refusal, what, timeout);
}

/** UTF-8 text of bytes, or undefined when they are not valid UTF-8. */
export function utf8Text(bytes: Uint8Array): string | undefined {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return undefined;
  }
}
