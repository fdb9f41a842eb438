/**
 * Request bodies as streams read from the connection on demand: nothing is read before the
 * handler asks (a refused body is never read), a Content-Length body stops at its length,
 * and a chunked body is decoded with every size and line bounded. A framing error ends the
 * stream and marks the connection as unusable: the server answers 400 and closes it.
 *
 * @module
 */
import { RingkvError } from "../errors.ts";
import type { ConnInput } from "./conn_input.ts";

/** Longest chunk-size line (with extensions) and trailer section of a chunked body. */
const MAX_CHUNK_LINE = 1024;
const MAX_TRAILER_BYTES = 16 * 1024;

/** How reading a request's body went; the server decides from it whether to keep the connection. */
export interface BodyState {
  /** The body was read to its end: the next request starts right after it. */
  done: boolean;
  /** The body's framing was broken (or the client left): answered 400, connection closed. */
  failed: RingkvError | null;
  /** The body was pulled at least once (a 100 Continue went out first when asked for). */
  started: boolean;
}

/** A stream of the request body; `beforeFirstRead` runs once (it sends 100 Continue). */
export function bodyStream(
  input: ConnInput,
  framing: { contentLength: number | null; chunked: boolean },
  state: BodyState,
  beforeFirstRead: () => Promise<void>,
): ReadableStream<Uint8Array> {
  const next = framing.chunked ? chunkedReader(input) : lengthReader(input, framing.contentLength!);
  // Set when the handler gave up on the body (a 408 or 413): a read still in progress then
  // ends quietly; it must not turn the handler's answer into a 400.
  let canceled = false;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        if (!state.started) {
          state.started = true;
          await beforeFirstRead();
        }
        const chunk = await next();
        if (canceled) return;
        if (chunk === null) {
          state.done = true;
          controller.close();
        } else {
          controller.enqueue(chunk);
        }
      } catch (err) {
        if (canceled) return;
        state.failed = err instanceof RingkvError ? err : broken(`the connection failed (${err})`);
        controller.error(state.failed);
      }
    },
    cancel() {
      canceled = true;
    },
  }, { highWaterMark: 0 });
}

function lengthReader(input: ConnInput, length: number): () => Promise<Uint8Array | null> {
  let left = length;
  return async () => {
    if (left === 0) return null;
    const chunk = input.buffered > 0 ? input.take(left) : await input.readFresh(left);
    if (chunk === null) throw broken(`the connection closed with ${left} bytes of the body unsent`);
    left -= chunk.byteLength;
    return chunk;
  };
}

function chunkedReader(input: ConnInput): () => Promise<Uint8Array | null> {
  let left = 0; // bytes of the current chunk not yet returned
  let finished = false;
  return async () => {
    if (finished) return null;
    if (left === 0) {
      left = chunkSize(await readLine(input, MAX_CHUNK_LINE));
      if (left === 0) {
        await readTrailers(input);
        finished = true;
        return null;
      }
    }
    if (input.buffered === 0 && !(await input.fill())) {
      throw broken("the connection closed in the middle of a chunk");
    }
    const chunk = input.take(left);
    left -= chunk.byteLength;
    if (left === 0 && (await readLine(input, 0)) !== "") throw broken("a chunk overran its size");
    return chunk;
  };
}

function chunkSize(line: string): number {
  const size = line.split(";", 1)[0]!.trim();
  if (!/^[0-9a-fA-F]{1,12}$/.test(size)) {
    throw broken(`the chunk size "${size.slice(0, 20)}" is not hex`);
  }
  return parseInt(size, 16);
}

async function readTrailers(input: ConnInput): Promise<void> {
  let total = 0;
  for (;;) {
    const line = await readLine(input, MAX_CHUNK_LINE);
    if (line === "") return;
    total += line.length + 2;
    if (total > MAX_TRAILER_BYTES) throw broken("the chunked trailer section is too long");
  }
}

/** One CRLF-ended line of at most `max` characters, without its CRLF. */
async function readLine(input: ConnInput, max: number): Promise<string> {
  for (;;) {
    const lf = input.buf.subarray(input.start, input.end).indexOf(10);
    if (lf !== -1) {
      if (lf > max + 1 || lf === 0 || input.buf[input.start + lf - 1] !== 13) {
        throw broken("a chunked body line is malformed or too long");
      }
      let line = "";
      for (let i = 0; i < lf - 1; i++) line += String.fromCharCode(input.buf[input.start + i]!);
      input.skip(lf + 1);
      return line;
    }
    if (input.buffered > max + 1) throw broken("a chunked body line is too long");
    if (!(await input.fill())) {
      throw broken("the connection closed in the middle of a chunked body");
    }
  }
}

function broken(what: string): RingkvError {
  return new RingkvError("bad_request", `Cannot read the request body: ${what}`);
}
