/**
 * Watch groups: the streams of one prefix opened without a cursor share one running watch
 * stream (one merge of the nodes' change logs, one cursor per event), as etcd groups its
 * synced watchers. The group writes each item it yields as SSE once and hands the same bytes
 * to every member; a member gets the events written after it joined (the rest of a page written in slices). Each member has its own
 * unread-bytes bound (a slow one is cut off and leaves, the others go on) and its own end;
 * the group's stream stops when its last member leaves, and its end ends every member. Why a
 * member keeps a stream's guarantees: docs/api.md "Watching changes".
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import type { WatchChange, WatchItem } from "./watch_apply.ts";
import type { WatchEvent } from "./watch_merge.ts";
import { SLICE_MS, TurnBudget } from "./turn_budget.ts";

/** How a group writes and paces its members' bytes. */
export interface GroupOptions {
  /** The `data:` text of a change event. */
  eventData: (e: WatchEvent) => string;
  /** Interval of the keep-alive comment, in ms. */
  keepaliveMs: number;
  /** Unread output after which a member is cut off, in bytes. */
  maxUnreadBytes: number;
  /**
   * How long queued events wait for more before they go out, in ms (default 0: after the
   * turn): each write costs every member a chunk, whatever its size.
   */
  flushMs?: number;
  /** How long a page's SSE text holds the thread before the loop may turn, in ms ({@link SLICE_MS}). */
  sliceMs?: number;
}

/**
 * The items of one watch stream until `signal` aborts; it calls `started` once it has read
 * where it starts in the nodes' logs ({@link WatchGroup.started}).
 */
export type WatchSource = (
  signal: AbortSignal,
  started: () => void,
) => AsyncGenerator<WatchItem>;

const encoder = new TextEncoder();
/** Queued text past which a batch goes out at once: a member's unread bound is checked per chunk. */
const MAX_BATCH_CHARS = 64 * 1024;
/** What a member reads first: reconnect after 1 s, and a comment that it is open. */
const PREAMBLE = encoder.encode("retry: 1000\n: watching\n\n");
const CUTOFF = encoder.encode(
  sseFrame("cutoff", {
    reason: "the watcher did not read its events; resume with Last-Event-ID",
  }),
);

/** One running watch stream and the members reading it. */
export class WatchGroup {
  readonly #members = new Set<Member>();
  readonly #stop = new AbortController();
  #batch: string[] = [];
  #batchChars = 0;
  #flushTimer: ReturnType<typeof setTimeout> | undefined;
  readonly #keepalive: ReturnType<typeof setInterval>;
  #over = false;
  readonly #start = Promise.withResolvers<void>();

  /** Starts `source`; `ended` is called once when the group takes no more members. */
  constructor(
    source: WatchSource,
    private readonly opts: GroupOptions,
    private readonly ended: () => void = () => {},
  ) {
    this.#keepalive = setInterval(() => this.#send(": keepalive\n\n"), opts.keepaliveMs);
    // Nobody may wait for it (a running group's joins need not): no unhandled rejection.
    this.#start.promise.catch(() => {});
    void this.#pump(source(this.#stop.signal, this.#start.resolve));
  }

  /**
   * Resolves once the stream has read where it starts in the nodes' logs (a write logged after
   * that comes to every member then); rejects when the stream ended or failed before.
   */
  get started(): Promise<void> {
    return this.#start.promise;
  }

  /** Members reading now. */
  get size(): number {
    return this.#members.size;
  }

  /** False once the group ended or its last member left: it takes no member then. */
  get open(): boolean {
    return !this.#over;
  }

  /**
   * A new member's SSE bytes: the items the group yields from now on. `left` is called once
   * when the member's stream ends, whatever ends it; `gone` aborts when its client went away.
   */
  join(gone: AbortSignal, left: () => void): ReadableStream<Uint8Array> {
    if (this.#over) throw new Error("Cannot join a watch group: it has ended");
    // Items yielded before the join go to the members before it only.
    this.#flush();
    let member: Member | undefined;
    return new ReadableStream<Uint8Array>({
      start: (controller) => {
        const m = new Member(controller, this.opts.maxUnreadBytes, () => {
          this.#members.delete(m);
          left();
          if (this.#members.size === 0) this.#close();
        });
        member = m;
        this.#members.add(m);
        controller.enqueue(PREAMBLE);
        if (gone.aborted) m.close();
        else gone.addEventListener("abort", () => m.close(), { once: true });
      },
      cancel: () => member?.leave(),
    }, new ByteLengthQueuingStrategy({ highWaterMark: 64 * 1024 }));
  }

  /** Queues text for every member; the items of `flushMs` go out as one chunk. */
  #send(text: string): void {
    if (this.#over) return;
    this.#batch.push(text);
    this.#batchChars += text.length;
    if (this.#batchChars >= MAX_BATCH_CHARS) return this.#flush();
    this.#flushTimer ??= setTimeout(() => this.#flush(), this.opts.flushMs ?? 0);
  }

  /** Encodes the queued text once and hands the same bytes to every member. */
  #flush(): void {
    clearTimeout(this.#flushTimer);
    this.#flushTimer = undefined;
    if (this.#batch.length === 0) return;
    const bytes = encoder.encode(this.#batch.join(""));
    this.#batch = [];
    this.#batchChars = 0;
    for (const m of [...this.#members]) m.deliver(bytes);
  }

  async #pump(items: AsyncGenerator<WatchItem>): Promise<void> {
    try {
      for await (const item of items) {
        // A source that yields has started, whether or not it said so.
        this.#start.resolve();
        if (item.kind === "changes") await this.#sendAll(item.changes);
        else {
          const id = item.kind === "compacted" ? item.id : undefined;
          this.#send(sseFrame(item.kind, { reason: item.reason }, id));
        }
        if (item.kind === "reset" || this.#over) break;
      }
      this.#flush();
      this.#close();
      this.#start.reject(
        new RingkvError("unavailable", "Cannot watch: the stream ended before it started"),
      );
      for (const m of [...this.#members]) m.close();
    } catch (err) {
      this.#close();
      this.#start.reject(err);
      for (const m of [...this.#members]) m.fail(err);
    } finally {
      await items.return(undefined);
    }
  }

  /**
   * Queues one text per event (a batch past its bound goes out between two events), in slices:
   * what is queued goes out before the loop turns, and a member that joins then gets the rest.
   */
  async #sendAll(changes: readonly WatchChange[]): Promise<void> {
    const budget = new TurnBudget(this.opts.sliceMs ?? SLICE_MS);
    for (let i = 0; i < changes.length && !this.#over; i++) {
      if (i % 8 === 7 && budget.spent()) {
        this.#flush();
        await budget.yield();
        if (this.#over) return;
      }
      const c = changes[i]!;
      this.#send(`id: ${c.id}\ndata: ${this.opts.eventData(c.event)}\n\n`);
    }
  }

  /** Takes no more members and stops the stream (idempotent). */
  #close(): void {
    if (this.#over) return;
    this.#over = true;
    clearInterval(this.#keepalive);
    clearTimeout(this.#flushTimer);
    this.#stop.abort();
    this.ended();
  }
}

/** One member's end of a group: its own queue, bound and end. */
class Member {
  #done = false;
  /** The largest chunk sent: one event larger than the bound must still get through. */
  #largest = 0;

  constructor(
    private readonly controller: ReadableStreamDefaultController<Uint8Array>,
    private readonly maxUnread: number,
    private readonly gone: () => void,
  ) {}

  /**
   * Queues the group's bytes, or cuts the member off when it left too much unread: more than
   * its bound besides the largest chunk it was sent. By the bound alone, an event larger than
   * it (1 MiB of control characters is ~6 MiB of JSON) cut off every reader still reading it
   * when the next one came, and again after each resume (found while bounding the watch).
   */
  deliver(bytes: Uint8Array): void {
    if (this.#done) return;
    if (bytes.length > this.#largest) this.#largest = bytes.length;
    // Counted with `bytes`: the queue never holds more than the bound and the largest chunk.
    if ((this.controller.desiredSize ?? 0) - bytes.length < -(this.maxUnread + this.#largest)) {
      this.controller.enqueue(CUTOFF);
      this.close();
      return;
    }
    this.controller.enqueue(bytes);
  }

  /** Ends the member's stream after what it has queued. */
  close(): void {
    if (this.#done) return;
    this.controller.close();
    this.leave();
  }

  /** Ends the member's stream with the group's error. */
  fail(err: unknown): void {
    if (this.#done) return;
    this.controller.error(err);
    this.leave();
  }

  /** Leaves the group (the reader cancelled, or the stream ended). */
  leave(): void {
    if (this.#done) return;
    this.#done = true;
    this.gone();
  }
}

/** The live groups of a proxy's watch route, one per prefix. */
export class WatchGroups {
  readonly #live = new Map<string, WatchGroup>();

  constructor(
    private readonly sourceOf: (prefix: string) => WatchSource,
    private readonly opts: GroupOptions,
  ) {}

  /** The live group of `prefix`, started when there is none. */
  live(prefix: string): WatchGroup {
    const group = this.#live.get(prefix);
    if (group !== undefined && group.open) return group;
    const g: WatchGroup = new WatchGroup(this.sourceOf(prefix), this.opts, () => {
      if (this.#live.get(prefix) === g) this.#live.delete(prefix);
    });
    this.#live.set(prefix, g);
    return g;
  }

  /** The live group of `prefix`, if any (tests). */
  groupOf(prefix: string): WatchGroup | undefined {
    return this.#live.get(prefix);
  }
}

/** An SSE event frame with JSON data (and an id: the cursor a reconnect sends back). */
function sseFrame(event: string, data: unknown, id?: string): string {
  const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
  return id === undefined ? frame : `id: ${id}\n${frame}`;
}
