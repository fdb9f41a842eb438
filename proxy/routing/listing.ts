/**
 * Listing keys across nodes: every node's key-ordered page is merged, the newest version
 * of each key wins and tombstones are dropped, so a key held by two nodes during a
 * rebalancing is listed once and a deleted key never comes back. Pure: the pages come
 * from a function the caller passes.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { listLive } from "./listing.ts";
 * const pages: Record<string, { k: string; v: string | null; ver: string; h: number }[]> = {
 *   n1: [{ k: "a", v: "", ver: "1", h: 0 }, { k: "c", v: "", ver: "1", h: 0 }],
 *   n2: [{ k: "a", v: null, ver: "2", h: 0 }, { k: "b", v: "", ver: "1", h: 0 }],
 * };
 * const page = await listLive(["n1", "n2"], undefined, 10, (id) =>
 *   Promise.resolve({ entries: pages[id]!, more: false }), { maxPage: 1000 });
 * assert(page.entries.map((e) => e.k).join() === "b,c" && !page.more);
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import { isExpired } from "../../shared/expiry.ts";
import { checkKey } from "../../shared/keys.ts";
import type { WireEntry } from "../../shared/wire.ts";
import type { KeysPage } from "../nodes/node_client.ts";

/** Fetches one node's next page: up to `size` entries with keys strictly after `after`. */
export type FetchPage = (
  nodeId: string,
  after: string | undefined,
  size: number,
) => Promise<KeysPage>;

interface NodeState {
  nodeId: string;
  entries: WireEntry[];
  pos: number;
  more: boolean;
  /** The last key this node has given (or the starting cursor). */
  last: string | undefined;
}

/** A k-way merge of key-ordered node pages that hands out each live key once. */
export class ListMerge {
  readonly #nodes: NodeState[];
  /** The last key handed out or passed over (a tombstone, an expired key). */
  #passed: string | undefined;

  /** Starts a merge over `nodeIds`, after `after` (exclusive); keys expired by `now` are left out. */
  constructor(
    nodeIds: readonly string[],
    after: string | undefined,
    private readonly now: number = Date.now(),
  ) {
    this.#nodes = nodeIds.map((nodeId) => ({
      nodeId,
      entries: [],
      pos: 0,
      more: true,
      last: after,
    }));
  }

  /** The nodes whose next page is needed before more keys can be handed out. */
  wanted(): { nodeId: string; after: string | undefined }[] {
    return this.#nodes
      .filter((n) => n.more && n.pos >= n.entries.length)
      .map((n) => ({ nodeId: n.nodeId, after: n.last }));
  }

  /** Adds a node's page (the one {@link wanted} asked for). */
  feed(nodeId: string, page: KeysPage): void {
    const node = this.#nodes.find((n) => n.nodeId === nodeId);
    if (node === undefined) throw new Error(`Cannot feed node ${nodeId}: not part of this merge`);
    node.entries = page.entries;
    node.pos = 0;
    // A node that says "more" but gives nothing would stall the merge; take it at its word.
    node.more = page.more && page.entries.length > 0;
    if (page.entries.length > 0) node.last = page.entries[page.entries.length - 1]!.k;
  }

  /** Whether every node is exhausted and nothing is buffered. */
  get done(): boolean {
    return this.#nodes.every((n) => !n.more && n.pos >= n.entries.length);
  }

  /** Up to `max` live entries, in key order, that every node has been heard on. */
  take(max: number): WireEntry[] {
    const bound = this.#bound();
    const out: WireEntry[] = [];
    while (out.length < max) {
      const key = this.#smallestHead();
      if (key === undefined || (bound !== undefined && key > bound)) break;
      this.#passed = key;
      let best: WireEntry | undefined;
      for (const n of this.#nodes) {
        while (n.pos < n.entries.length && n.entries[n.pos]!.k === key) {
          const e = n.entries[n.pos++]!;
          if (best === undefined || e.ver > best.ver) best = e;
        }
      }
      if (best !== undefined && best.v !== null && !isExpired(best.t, this.now)) out.push(best);
    }
    return out;
  }

  /** The last key {@link take} handed out or passed over, else undefined. */
  get passed(): string | undefined {
    return this.#passed;
  }

  /** Keys up to this one are known on every node that has more to give. */
  #bound(): string | undefined {
    let bound: string | undefined;
    for (const n of this.#nodes) {
      if (n.more && n.last !== undefined && (bound === undefined || n.last < bound)) bound = n.last;
    }
    return bound;
  }

  #smallestHead(): string | undefined {
    let key: string | undefined;
    for (const n of this.#nodes) {
      const head = n.entries[n.pos];
      if (head !== undefined && (key === undefined || head.k < key)) key = head.k;
    }
    return key;
  }
}

/** How far one listing request reads: pages per node, and their growth. */
export interface ListScan {
  /** The largest page asked of a node (the nodes' `maxListLimit`). */
  maxPage: number;
  /** Rounds of pages before the request answers what it has (default 16). */
  maxRounds?: number;
}

/** Each round's pages are this many times the last (tombstones make short rounds). */
const PAGE_GROWTH = 8;

/**
 * Up to `limit` live entries after `after`, merged over `nodeIds`; `more` is false only
 * when every node is exhausted, and `passed` is the last key read, live or not (where a page
 * cut short goes on). Pages start at `limit` entries and grow while rounds come back short,
 * and the request stops after `maxRounds`: a range of deleted keys (tombstones are kept)
 * once took one round per tombstone for `limit=1` (security review: 20,000 of them, 19 s).
 */
export async function listLive(
  nodeIds: readonly string[],
  after: string | undefined,
  limit: number,
  fetchPage: FetchPage,
  scan: ListScan,
): Promise<{ entries: WireEntry[]; more: boolean; passed: string | undefined }> {
  const merge = new ListMerge(nodeIds, after);
  const entries: WireEntry[] = [];
  const rounds = scan.maxRounds ?? 16;
  let size = Math.min(limit, scan.maxPage);
  for (let round = 0; round < rounds && entries.length < limit && !merge.done; round++) {
    const wanted = merge.wanted();
    const pages = await Promise.all(wanted.map((w) => fetchPage(w.nodeId, w.after, size)));
    wanted.forEach((w, i) => merge.feed(w.nodeId, pages[i]!));
    entries.push(...merge.take(limit - entries.length));
    size = Math.min(size * PAGE_GROWTH, scan.maxPage);
  }
  return { entries, more: !merge.done, passed: merge.passed };
}

/** The opaque cursor for "after this key": base64url of its UTF-8. */
export function encodeCursor(key: string): string {
  return new TextEncoder().encode(key).toBase64({ alphabet: "base64url", omitPadding: true });
}

/**
 * The key a cursor stands for; 400 `invalid_cursor` when it is not one of ours. Every cursor
 * this API returns names a key, so a decoded text that is no key (too long, a control
 * character) is refused here: sent on to the nodes, it made a URL too long for them (502).
 */
export function decodeCursor(cursor: string, maxKeyBytes: number): string {
  let key: string;
  try {
    const bytes = Uint8Array.fromBase64(cursor, { alphabet: "base64url" });
    // ignoreBOM keeps a key's leading U+FEFF (the decoder drops it otherwise).
    key = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
    checkKey(key, maxKeyBytes);
  } catch {
    throw new RingkvError(
      "invalid_cursor",
      `Cannot continue the listing: cursor "${cursor.slice(0, 100)}" is not one this API returned`,
    );
  }
  return key;
}
