/**
 * Request bodies as the node's routes read them: JSON within a size cap
 * (shared/capped_body.ts), strict UTF-8, `invalid_json` for what does not parse.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import { readCappedBody } from "../../shared/capped_body.ts";
import type { SlotTimers } from "../../shared/slot_timers.ts";

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Decodes UTF-8 strictly; invalid bytes are the client's `invalid_json`. */
export function decodeText(bytes: Uint8Array, what: string): string {
  try {
    return decoder.decode(bytes);
  } catch {
    throw new RingkvError("invalid_json", `Cannot read ${what}: it is not valid UTF-8`);
  }
}

/** Parses JSON text; a syntax error is the client's `invalid_json`. */
export function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new RingkvError(
      "invalid_json",
      `Cannot parse ${what} as JSON: ${(err as Error).message}`,
    );
  }
}

/** Reads a JSON body of at most `limit` bytes (413 `batch_too_large` past it). */
export async function readJsonBody(
  req: Request,
  limit: number,
  what: string,
  timeout: number | SlotTimers,
): Promise<unknown> {
  const bytes = await readCappedBody(
    req,
    limit,
    (size, exact) =>
      new RingkvError(
        "batch_too_large",
        `Cannot accept ${what}: the body is ${size}${
          exact ? "" : "+"
        } bytes, the limit is ${limit}`,
      ),
    what,
    timeout,
  );
  return parseJson(decodeText(bytes, what), what);
}

/**
 * A node route's JSON body, within its limits: the batch size cap, and `--body-timeout-ms`
 * from the app's shared body timers (one timer per slot, not per call).
 */
export function readRouteJson(
  req: Request,
  ctx: { limits: { maxBatchBytes: number }; bodyTimers: SlotTimers },
  what: string,
): Promise<unknown> {
  return readJsonBody(req, ctx.limits.maxBatchBytes, what, ctx.bodyTimers);
}

/** Whether a value is a plain JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
