/**
 * One read of each node's change log per proxy, shared by every watch stream: a poller per
 * node keeps the newest changes (all prefixes) in a bounded buffer, and a stream's read is
 * answered from it when its position is inside the buffer; a stream behind it, or on another
 * log (boot), reads the node directly. So a write costs the nodes one read per proxy, not
 * one per watcher, and an idle watcher costs nothing per write. A node's poller stops once
 * no stream has read from it for one round, and its buffer is then dropped.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import type { WireChange } from "../../node/http/change_routes.ts";
import type { NodeRef } from "../nodes/node_client.ts";
import type { ChangeFeed, ChangePage } from "./change_feed.ts";
import { PageStore } from "./page_store.ts";
import { VersionAnswers } from "./version_answers.ts";

type PageQuery = Parameters<ChangeFeed["page"]>[2];

/** Changes each node's buffer keeps. */
const KEEP = 20_000;
/**
 * Bytes of page text each node's buffer keeps at most (docs/security.md, the watch's memory):
 * its {@link KEEP} changes of the bench's 100-byte values take ~5.2 MB, so the count still
 * decides there; large values are held by bytes. A stream behind the buffer reads the node.
 */
export const KEEP_BYTES = 16 << 20;
/** Changes one poll of a node asks for. */
const PAGE_LIMIT = 1000;

/**
 * How long a node's poller waits after a page that brought changes before it polls again,
 * in ms: what a change may wait, beyond its poll, before it reaches the streams. Each poll
 * costs the proxy a `fetch`, its JSON and a merge turn per stream whatever the page holds; the
 * groups write a turn's events at once (proxy/http/watch_route.ts `WATCH_FLUSH_MS`, 0), so
 * this is most of an event's added latency (docs/api.md "Watching changes").
 */
export const POLL_GATHER_MS = 16;

/**
 * How long a poller gathers, `ms` on average, at most 1.5 × `ms`: to a shared tick of the
 * clock, so that the pollers of all nodes poll in step and a stream merges their pages of
 * one moment together (a write's copies then meet at once: few keys wait in each cursor).
 */
export function gatherFor(ms: number, now = Date.now()): number {
  const toTick = ms - (now % ms);
  return toTick < ms / 2 ? toTick + ms : toTick;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** What a buffer answers about versions ({@link NodeBuffer.versionsAfter}). */
interface Versions {
  found: Map<string, string | null>;
  upTo?: number;
}

class NodeBuffer {
  boot = "";
  /** Sequence of the oldest change held. */
  first = 1;
  last = 0;
  /** The changes held, as the bytes of their pages (few objects outlive a poll). */
  readonly pages = new PageStore();
  epoch = 0;
  /** This numbering's head went below what the buffer had read (see {@link serve}). */
  wentBack = false;
  failed = true;
  demanded = true;
  running = false;
  /** Reads waiting at the head, by prefix: each wakes once a new change matches its prefix. */
  #waiters = new Map<string, Set<() => void>>();

  constructor(
    readonly node: NodeRef,
    private readonly feed: ChangeFeed,
    readonly waitMs: number,
    readonly gatherMs: number,
    readonly keepBytes: number,
    /** Called once the poller stopped, its changes dropped: the feed forgets the buffer. */
    private readonly stopped: (buffer: NodeBuffer) => void,
  ) {}

  /** Polls the node while streams read from this buffer. */
  async run(): Promise<void> {
    this.running = true;
    try {
      for (let idle = 0; idle < 2;) {
        // A read or a version question waiting on this buffer is demand too.
        idle = this.demanded || this.#waiters.size > 0 ? 0 : idle + 1;
        this.demanded = false;
        const fresh = await this.#round();
        // Under writes, let the next page gather: one poll and one merge turn per gatherMs
        // instead of one per change or two (docs/api.md).
        if (fresh > 0 && fresh < PAGE_LIMIT && this.gatherMs > 0) {
          await sleep(gatherFor(this.gatherMs));
        }
      }
    } finally {
      this.running = false;
      // No stream reads here: nothing is held for none (a later read starts a new buffer).
      this.boot = "";
      this.failed = true;
      this.pages.clear();
      this.#wakeAll();
      this.stopped(this);
    }
  }

  /** One poll of the node; the number of new changes it brought. */
  async #round(): Promise<number> {
    try {
      const known = this.boot !== "";
      const page = await this.feed.page(this.node, this.epoch, {
        ...(known ? { boot: this.boot, after: this.last } : {}),
        prefix: "",
        waitMs: known ? this.waitMs : 0,
        limit: PAGE_LIMIT,
      });
      this.failed = false;
      if (!known || page.gone || page.boot !== this.boot) {
        // The same numbering, its head below what it had: the log went back (a directory put
        // back from a backup). Positions past its head are the node's to judge from now on.
        if (known && page.boot === this.boot && page.last < this.last) this.wentBack = true;
        this.boot = page.boot;
        this.pages.clear();
        this.last = page.last;
        this.first = page.last + 1;
        this.#wakeAll();
      } else {
        const fresh = page.changes ?? [];
        // A fake feed gives no text: the same JSON, written here.
        const text = page.text ?? JSON.stringify({ changes: fresh });
        // A page longer than the cap is not held (nor encoded): neither is any before it.
        if (text.length > this.keepBytes) this.pages.clear();
        else this.pages.push(fresh, text);
        this.last = page.last;
        this.pages.trim(KEEP, this.keepBytes);
        this.first = this.pages.first ?? this.last + 1;
        this.#wakeMatching(fresh);
        return fresh.length;
      }
    } catch (err) {
      if (!(err instanceof RingkvError)) throw err;
      this.failed = true;
      this.#wakeAll();
      await sleep(500);
    }
    return 0;
  }

  /** The page for `q` from the buffer, or undefined when the buffer cannot answer it. */
  async serve(q: PageQuery): Promise<ChangePage | undefined> {
    this.demanded = true;
    const after = q.after;
    if (this.failed || after === undefined || q.boot !== this.boot || after < this.first - 1) {
      return undefined;
    }
    // At or past what the poller has read, a read that does not wait (a ring change's barrier
    // reading to a head it just took from the node) goes to the node: the buffer would keep
    // answering "nothing new" (the barrier spun 100,000 turns on it without yielding, then
    // counted the node as lost). So does a read past it once the log went back: the node says
    // that position is gone. A read that waits just past it (a stream that read the node
    // directly, a poll ahead) waits here for the poller, as before.
    if (after > this.last && this.wentBack) return undefined;
    if (after >= this.last && q.waitMs <= 0) return undefined;
    // At the head: wait for a change under the prefix (an idle watcher wakes for nothing else).
    if (this.running && q.waitMs > 0 && !this.#hasMatch(after, q.prefix)) {
      await this.#wait(q.prefix, q.waitMs);
      if (q.boot !== this.boot || after < this.first - 1) return undefined;
    }
    const changes: WireChange[] = [];
    let last = this.last;
    this.pages.scan(after, (c) => {
      if (!c.k.startsWith(q.prefix)) return;
      changes.push(c);
      if (changes.length < q.limit) return;
      last = c.s;
      return true;
    }, { prefix: q.prefix });
    return { boot: this.boot, first: this.first, last, changes };
  }

  /**
   * The version before the first change after `after` of each key the buffer has, and the
   * position it read to (`upTo`; undefined when the buffer cannot answer for `after`): a key
   * not found changed after `upTo`, if at all.
   */
  versionsAfter(boot: string, after: number, keys: readonly string[]): Versions {
    const found = new Map<string, string | null>();
    if (boot !== this.boot || after < this.first - 1) return { found };
    // Read up to the buffer's last, or `after` itself when the asker is ahead of the buffer
    // (it read the node directly): a later wake must not read changes at or before `after`.
    const upTo = Math.max(after, this.last);
    const wanted = new Set(keys);
    if (wanted.size === 0) return { found, upTo };
    this.pages.scan(after, (c) => {
      if (wanted.delete(c.k)) found.set(c.k, c.prev);
      return wanted.size === 0;
    }, { keys: wanted });
    return { found, upTo };
  }

  /**
   * Waits up to `ms` for `keys`, which did not change up to `upTo` (from
   * {@link versionsAfter}), to change in this buffer; the versions it then answers. A write
   * reaches every replica at once, so its change is usually in the others' logs a poll or two
   * later: answered here, not asked of the node. Each wake reads only the pages that came since
   * the last. Returns at once when the buffer cannot answer (another log, or not polling).
   */
  async awaitVersions(boot: string, upTo: number, keys: readonly string[], ms: number) {
    const found = new Map<string, string | null>();
    const deadline = performance.now() + ms;
    let left = [...keys];
    for (let i = 0; i < 100 && left.length > 0; i++) {
      const wait = deadline - performance.now();
      if (wait <= 0 || !this.running || this.failed || boot !== this.boot) break;
      this.demanded = true;
      await this.#wait("", wait);
      const later = this.versionsAfter(boot, upTo, left);
      if (later.upTo === undefined) break;
      upTo = later.upTo;
      for (const [k, v] of later.found) found.set(k, v);
      left = left.filter((k) => !found.has(k));
    }
    return found;
  }

  #hasMatch(after: number, prefix: string): boolean {
    let found = false;
    this.pages.scan(after, (c) => found = c.k.startsWith(prefix), { backwards: true, prefix });
    return found;
  }

  /**
   * Resolves once a change under `prefix` arrives, the log is another or unreadable, the
   * poller stops, or `ms` pass: one timer per read, not one per round of the poller.
   */
  #wait(prefix: string, ms: number): Promise<void> {
    return new Promise((resolve) => {
      let waiting = this.#waiters.get(prefix);
      if (waiting === undefined) this.#waiters.set(prefix, waiting = new Set());
      const done = () => {
        clearTimeout(timer);
        waiting.delete(done);
        if (waiting.size === 0 && this.#waiters.get(prefix) === waiting) {
          this.#waiters.delete(prefix);
        }
        resolve();
      };
      const timer = setTimeout(done, ms);
      waiting.add(done);
    });
  }

  /** Wakes the reads whose prefix one of `fresh` (the round's new changes) matches. */
  #wakeMatching(fresh: readonly WireChange[]): void {
    if (fresh.length === 0) return;
    // Each distinct prefix is checked once per round, however many streams wait on it.
    for (const [prefix, waiting] of [...this.#waiters]) {
      if (prefix !== "" && !fresh.some((c) => c.k.startsWith(prefix))) continue;
      for (const wake of [...waiting]) wake();
    }
  }

  #wakeAll(): void {
    for (const waiting of [...this.#waiters.values()]) {
      for (const wake of [...waiting]) wake();
    }
  }
}

/** How long a version question waits for the node's buffer to answer it, in ms. */
export const VERSIONS_GATHER_MS = 50;

type VersionMap = Record<string, string | null>;

/**
 * A {@link ChangeFeed} whose reads at the head of a node's log are shared, and whose
 * questions about versions at a position are asked once for all streams (the answer for a
 * node's log, position and key never changes).
 */
export class SharedFeed {
  readonly #buffers = new Map<string, NodeBuffer>();
  readonly #answers = new VersionAnswers();
  readonly #forming = new Map<
    string,
    { keys: Set<string>; answer: Promise<VersionMap | undefined> }
  >();

  /**
   * Wraps `feed`; `waitMs` is how long each shared read waits at the node, `gatherMs` how
   * long a version question waits for the answer to show up in the node's buffer before it
   * is asked of the node (docs/api.md: the latency a new key's first event may take),
   * `pollGatherMs` how long a node's poller lets changes gather after a page that had some.
   */
  constructor(
    private readonly feed: ChangeFeed,
    private readonly waitMs = 5000,
    private readonly gatherMs = VERSIONS_GATHER_MS,
    private readonly pollGatherMs = POLL_GATHER_MS,
    private readonly keepBytes = KEEP_BYTES,
  ) {}

  /** Nodes with a buffer (each dropped once its poller stops). */
  get buffers(): number {
    return this.#buffers.size;
  }

  /** Bytes of page text the buffers hold (each at most `keepBytes`). */
  get heldBytes(): number {
    let n = 0;
    for (const buffer of this.#buffers.values()) n += buffer.pages.bytes;
    return n;
  }

  /** How many nodes' pollers are running (each stops once no stream reads from it). */
  get polling(): number {
    let n = 0;
    for (const buffer of this.#buffers.values()) if (buffer.running) n++;
    return n;
  }

  /** As {@link ChangeFeed.page}, from the shared buffer when it can. */
  async page(node: NodeRef, epoch: number, q: PageQuery): Promise<ChangePage> {
    const key = `${node.id} ${node.url}`;
    let buffer = this.#buffers.get(key);
    if (buffer === undefined) {
      buffer = new NodeBuffer(
        node,
        this.feed,
        this.waitMs,
        this.pollGatherMs,
        this.keepBytes,
        (b) => {
          if (this.#buffers.get(key) === b) this.#buffers.delete(key);
          this.#answers.forget(node.id);
        },
      );
      this.#buffers.set(key, buffer);
    }
    buffer.epoch = Math.max(buffer.epoch, epoch);
    buffer.demanded = true;
    if (!buffer.running) void buffer.run();
    return await buffer.serve(q) ?? await this.feed.page(node, epoch, q);
  }

  /** As {@link ChangeFeed.versionsAt}; questions asked in the same turn go out as one. */
  async versionsAt(
    node: NodeRef,
    epoch: number,
    boot: string,
    at: number,
    keys: string[],
  ): Promise<VersionMap | undefined> {
    const id = `${node.id} ${boot} ${at}`;
    const known = this.#answers.get(id) ?? new Map<string, string | null>();
    const had = known.size;
    // A key changed after `at` in the buffer: its `prev` there is the answer, no question.
    const buffer = this.#buffers.get(`${node.id} ${node.url}`);
    const now = buffer?.versionsAfter(boot, at, keys);
    for (const [k, v] of now?.found ?? []) known.set(k, v);
    let missing = keys.filter((k) => !known.has(k));
    if (missing.length > 0 && now?.upTo !== undefined && this.gatherMs > 0) {
      const later = await buffer!.awaitVersions(boot, now.upTo, missing, this.gatherMs);
      for (const [k, v] of later) known.set(k, v);
      missing = missing.filter((k) => !known.has(k));
    }
    if (missing.length > 0) {
      // One batch per map epoch too: a node refuses an older epoch than its own (stale_epoch),
      // and a stream on the newer map must not get that refusal for a stream still on the older
      // one that asked first (review: the newer stream then stalled or said compacted).
      const forming = `${id} ${epoch}`;
      let batch = this.#forming.get(forming);
      if (batch === undefined) {
        const keys = new Set<string>();
        const answer = new Promise<void>((r) => setTimeout(r, 0)).then(() => {
          this.#forming.delete(forming);
          return this.feed.versionsAt(node, epoch, boot, at, [...keys]);
        });
        batch = { keys, answer };
        this.#forming.set(forming, batch);
      }
      for (const k of missing) batch.keys.add(k);
      const got = await batch.answer;
      if (got === undefined) return undefined;
      for (const [k, v] of Object.entries(got)) known.set(k, v);
      this.#answers.remember(id, known);
    } else if (known.size > had && this.#answers.get(id) === known) {
      // Answers the buffer added to a remembered position count against the bound too.
      this.#answers.remember(id, known);
    }
    return Object.fromEntries(keys.map((k) => [k, known.get(k) ?? null]));
  }

  /** Bytes of remembered version answers (bounded: proxy/watch/version_answers.ts). */
  get answerBytes(): number {
    return this.#answers.bytes;
  }
}
