/**
 * Request bodies as the node's routes read them: JSON within a size cap
 * (shared/capped_body.ts), strict UTF-8, `invalid_json` for what does not parse.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import { readCappedBody } from "../../shared/capped_body.ts";

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
  timeoutMs: number,
): Promise<unknown> {
  const tooLarge = (size: number, exact: boolean) =>
    new RingkvError(
      "batch_too_large",
      `Cannot accept ${what}: the body is ${size}${exact ? "" : "+"} bytes, the limit is ${limit}`,
    );
  const declared = req.headers.get("content-length");
  const bytes = declared !== null && /^\d{1,15}$/.test(declared) && Number(declared) <= limit
    ? await readDeclaredBody(req, limit, tooLarge, what, timeoutMs)
    : await readCappedBody(req, limit, tooLarge, what, timeoutMs);
  return parseJson(decodeText(bytes, what), what);
}

/**
 * A body whose declared length is within the cap, read in one native step: the HTTP server
 * holds a body to its Content-Length, and reading it as a stream cost a node call ~20 µs more
 * (docs/performance.md, "A node's CPU per batch call"). 408 past `timeoutMs`, as streamed.
 */
async function readDeclaredBody(
  req: Request,
  limit: number,
  tooLarge: (size: number, exact: boolean) => RingkvError,
  what: string,
  timeoutMs: number,
): Promise<Uint8Array> {
  if (req.body === null) return new Uint8Array(0);
  const reading = req.bytes();
  // After a 408 the read ends when the connection does; its failure is nobody's to answer.
  reading.catch(() => {});
  let timer: ReturnType<typeof setTimeout> | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(bodyTimeout(what, timeoutMs)), timeoutMs);
  });
  try {
    const bytes = await Promise.race([reading, deadline]);
    // In process (app.request) nothing holds a body to its declared length.
    if (bytes.length > limit) throw tooLarge(bytes.length, false);
    return bytes;
  } catch (err) {
    if (err instanceof RingkvError) throw err;
    throw new RingkvError("bad_request", `Cannot read ${what}: the connection failed (${err})`);
  } finally {
    clearTimeout(timer);
  }
}

function bodyTimeout(what: string, timeoutMs: number): RingkvError {
  return new RingkvError(
    "request_timeout",
    `Cannot read ${what}: the body did not arrive within ${timeoutMs} ms (--body-timeout-ms)`,
  );
}

/** A node route's JSON body, within its limits: the batch size cap and `--body-timeout-ms`. */
export function readRouteJson(
  req: Request,
  limits: { maxBatchBytes: number; bodyTimeoutMs: number },
  what: string,
): Promise<unknown> {
  return readJsonBody(req, limits.maxBatchBytes, what, limits.bodyTimeoutMs);
}

/** Whether a value is a plain JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
