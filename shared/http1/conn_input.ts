/**
 * What has been read from a connection and not yet used: one buffer per connection that
 * grows only up to a cap (a request head at its limit), so a client cannot make a
 * connection hold more than that however it sends its bytes.
 *
 * @module
 */

/** The smallest buffer a connection has; idle connections shrink back to it. */
export const INITIAL_INPUT_BYTES = 4096;

/** The read side a connection needs (a `Deno.Conn` has it). */
export interface Readable {
  read(p: Uint8Array): Promise<number | null>;
}

/** Buffered bytes of one connection: `buf[start, end)` are read and not yet consumed. */
export class ConnInput {
  buf = new Uint8Array(INITIAL_INPUT_BYTES);
  start = 0;
  end = 0;
  #scratch: Uint8Array | undefined;

  /** Creates the buffer of `conn`, never larger than `maxBytes`. */
  constructor(private readonly conn: Readable, private readonly maxBytes: number) {}

  /** Bytes read and not yet consumed. */
  get buffered(): number {
    return this.end - this.start;
  }

  /** Reads more into the buffer; false at end of stream, or when the buffer is full at its cap. */
  async fill(): Promise<boolean> {
    if (this.start === this.end) this.start = this.end = 0;
    if (this.end === this.buf.length) {
      if (this.start > 0) {
        this.buf.copyWithin(0, this.start, this.end);
        this.end -= this.start;
        this.start = 0;
      } else if (this.buf.length < this.maxBytes) {
        const bigger = new Uint8Array(Math.min(this.maxBytes, this.buf.length * 2));
        bigger.set(this.buf.subarray(0, this.end));
        this.buf = bigger;
      } else {
        return false;
      }
    }
    const n = await this.conn.read(this.buf.subarray(this.end));
    if (n === null) return false;
    this.end += n;
    return true;
  }

  /** Consumes up to `max` buffered bytes and returns a copy of them. */
  take(max: number): Uint8Array {
    const n = Math.min(max, this.buffered);
    const out = this.buf.slice(this.start, this.start + n);
    this.start += n;
    return out;
  }

  /** Consumes up to `max` buffered bytes without copying them. */
  skip(max: number): number {
    const n = Math.min(max, this.buffered);
    this.start += n;
    return n;
  }

  /**
   * Reads up to `max` bytes from the connection (nothing buffered); null at the end. The
   * bytes are copied out of one reused scratch buffer: a chunk handed on must be its own
   * size, or a client sending a byte at a time would pin 64 KiB per byte.
   */
  async readFresh(max: number): Promise<Uint8Array | null> {
    this.#scratch ??= new Uint8Array(64 * 1024);
    const n = await this.conn.read(this.#scratch.subarray(0, Math.min(max, this.#scratch.length)));
    return n === null ? null : this.#scratch.slice(0, n);
  }

  /** Drops a grown buffer once nothing is buffered, so idle connections cost little. */
  shrink(): void {
    this.#scratch = undefined;
    if (this.buffered === 0 && this.buf.length > INITIAL_INPUT_BYTES) {
      this.buf = new Uint8Array(INITIAL_INPUT_BYTES);
      this.start = this.end = 0;
    }
  }
}
