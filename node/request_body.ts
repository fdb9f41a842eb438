/**
 * Bounded reading of request bodies: the declared `Content-Length` is checked before
 * anything is read, and the bytes actually read are capped while the body streams, so
 * a client can never make the node buffer more than the limit; a body that does not arrive
 * within the timeout is answered 408.
 *
 * @module
 */
import { RingkvError } from "../shared/errors.ts";
import { DEFAULT_LIMITS } from "../shared/limits.ts";
import { concatBytes } from "../shared/bytes.ts";

/** Builds the error for a body that is over the limit (`size` may be a lower bound). */
export type TooLarge = (size: number, limit: number) => RingkvError;

const decoder = new TextDecoder("utf-8", { fatal: true });

/** Reads at most `limit` bytes of the body; throws `tooLarge(...)` past it, 408 past `timeoutMs`. */
export async function readBodyLimited(
  req: Request,
  limit: number,
  tooLarge: TooLarge,
  timeoutMs: number = DEFAULT_LIMITS.bodyTimeoutMs!,
): Promise<Uint8Array> {
  const declared = req.headers.get("content-length");
  if (declared !== null) {
    if (!/^\d+$/.test(declared.trim())) {
      throw new RingkvError("invalid_header", `Cannot read Content-Length "${declared}"`);
    }
    if (Number(declared) > limit) throw tooLarge(Number(declared), limit);
  }
  if (req.body === null) return new Uint8Array(0);
  const reader = req.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  const deadline = { passed: false };
  // A client trickling its body must not hold the request (and its memory) for ever.
  const timer = setTimeout(() => {
    deadline.passed = true;
    reader.cancel().catch(() => {});
  }, timeoutMs);
  try {
    for (;;) {
      const chunk = await readChunk(reader, deadline, timeoutMs);
      if (chunk === undefined) break;
      total += chunk.length;
      if (total > limit) {
        await reader.cancel().catch(() => {});
        throw tooLarge(total, limit);
      }
      chunks.push(chunk);
    }
  } finally {
    clearTimeout(timer);
  }
  return concatBytes(chunks);
}

async function readChunk(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  deadline: { passed: boolean },
  timeoutMs: number,
): Promise<Uint8Array | undefined> {
  let result: ReadableStreamReadResult<Uint8Array>;
  try {
    result = await reader.read();
  } catch (err) {
    if (deadline.passed) throw bodyTimeout(timeoutMs);
    // A client that hangs up mid-body: nothing to answer, but it must not look like a bug.
    throw new RingkvError("bad_request", `Cannot read the request body: ${String(err)}`);
  }
  if (deadline.passed) throw bodyTimeout(timeoutMs);
  return result.done ? undefined : result.value;
}

function bodyTimeout(timeoutMs: number): RingkvError {
  return new RingkvError(
    "request_timeout",
    `Cannot read the request body: it did not arrive within ${timeoutMs} ms`,
  );
}

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
  timeoutMs?: number,
): Promise<unknown> {
  const bytes = await readBodyLimited(
    req,
    limit,
    (size, max) =>
      new RingkvError(
        "batch_too_large",
        `Cannot accept ${what}: the body is ${size}+ bytes, the limit is ${max}`,
      ),
    timeoutMs,
  );
  return parseJson(decodeText(bytes, what), what);
}

/** Whether a value is a plain JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
