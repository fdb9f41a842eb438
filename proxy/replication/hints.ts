/**
 * Hinted handoff: acknowledged writes that a replica missed (it was down or did not
 * answer), kept per node up to a bound and offered again once the node answers. A
 * replay goes through the acceptor (`/internal/accept`), so it never overrides a newer
 * promise or version. Hints live in the proxy's memory: a proxy restart forgets them,
 * and quorum reads repair what is left (docs/replication.md).
 *
 * @module
 */
import type { WireEntry } from "../../shared/wire.ts";

/** Default bound on hints kept over all nodes. */
export const DEFAULT_MAX_HINTS = 100_000;

/** Missed writes per node, newest per key. */
export class Hints {
  readonly #byNode = new Map<string, Map<string, WireEntry>>();
  #size = 0;
  /** Hints not kept because the bound was reached (keys that stay under-replicated until read). */
  dropped = 0;

  /** `max`: most hints kept over all nodes. */
  constructor(private readonly max = DEFAULT_MAX_HINTS) {}

  /** Remembers that `node` missed `entry`. */
  add(node: string, entry: WireEntry): void {
    let map = this.#byNode.get(node);
    if (map === undefined) this.#byNode.set(node, map = new Map());
    const old = map.get(entry.k);
    if (old !== undefined) {
      if (old.ver < entry.ver) map.set(entry.k, entry);
      return;
    }
    if (this.#size >= this.max) {
      this.dropped++;
      return;
    }
    map.set(entry.k, entry);
    this.#size++;
  }

  /** Takes up to `limit` hints of `node` out (put them back with {@link add} on failure). */
  take(node: string, limit: number): WireEntry[] {
    const map = this.#byNode.get(node);
    if (map === undefined) return [];
    const out: WireEntry[] = [];
    for (const [key, entry] of map) {
      if (out.length >= limit) break;
      out.push(entry);
      map.delete(key);
    }
    this.#size -= out.length;
    if (map.size === 0) this.#byNode.delete(node);
    return out;
  }

  /** Hints waiting for `node`, or over all nodes. */
  count(node?: string): number {
    return node === undefined ? this.#size : this.#byNode.get(node)?.size ?? 0;
  }

  /** Forgets a node's hints (it left the cluster). */
  forget(node: string): void {
    this.#size -= this.#byNode.get(node)?.size ?? 0;
    this.#byNode.delete(node);
  }

  /** Forgets the hints of every node not in `members` (removed, or its add cancelled). */
  keepOnly(members: ReadonlySet<string>): void {
    for (const node of [...this.#byNode.keys()]) if (!members.has(node)) this.forget(node);
  }
}
