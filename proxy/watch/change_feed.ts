/**
 * The proxy's calls to nodes' change feeds (`/internal/changes`, `/internal/changes/at`),
 * with `fetch` and a timeout that covers the node's wait for a change. A node on a newer cluster
 * map answers {@link StaleEpochError}; any other failure is `node_unavailable`.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import { EPOCH_HEADER } from "../../shared/wire.ts";
import type { WireChange } from "../../node/http/change_routes.ts";
import {
  type NodeRef,
  type NodeTransport,
  sendToNode,
  StaleEpochError,
} from "../nodes/node_client.ts";

/** A page of a node's change log. */
export interface ChangePage {
  boot: string;
  first: number;
  last: number;
  gone?: true;
  changes?: WireChange[];
  /** The node's answer as it came (what a shared buffer keeps instead of the objects). */
  text?: string;
}

/** What the feed needs. */
export interface ChangeFeedDeps extends NodeTransport {
  clusterSecret?: string;
  timeoutMs: number;
}

/** Calls nodes' change feeds. */
export class ChangeFeed {
  /** Creates the feed client. */
  constructor(private readonly deps: ChangeFeedDeps) {}

  /** Changes after `after` (none: only the log's position), waiting up to `waitMs` for one. */
  async page(
    node: NodeRef,
    epoch: number,
    q: { boot?: string; after?: number; prefix: string; waitMs: number; limit: number },
  ): Promise<ChangePage> {
    const params = new URLSearchParams({ prefix: q.prefix, wait: String(q.waitMs) });
    params.set("limit", String(q.limit));
    if (q.boot !== undefined) params.set("boot", q.boot);
    if (q.after !== undefined) params.set("after", String(q.after));
    const text = await this.#callText(
      node,
      epoch,
      `/internal/changes?${params}`,
      undefined,
      q.waitMs,
    );
    const page = JSON.parse(text) as ChangePage;
    page.text = text;
    return page;
  }

  /** The versions `keys` had at position `at` of the node's log `boot`. */
  async versionsAt(
    node: NodeRef,
    epoch: number,
    boot: string,
    at: number,
    keys: string[],
  ): Promise<Record<string, string | null> | undefined> {
    const body = JSON.stringify({ boot, at, keys });
    const answer = await this.#call<{ gone?: true; versions?: Record<string, string | null> }>(
      node,
      epoch,
      "/internal/changes/at",
      body,
      0,
    );
    return answer.gone ? undefined : answer.versions;
  }

  async #call<T>(
    node: NodeRef,
    epoch: number,
    path: string,
    body: string | undefined,
    waitMs: number,
  ): Promise<T> {
    return JSON.parse(await this.#callText(node, epoch, path, body, waitMs)) as T;
  }

  /** The text of a 200 answer to a call of `path`. */
  async #callText(
    node: NodeRef,
    epoch: number,
    path: string,
    body: string | undefined,
    waitMs: number,
  ): Promise<string> {
    const headers: Record<string, string> = { [EPOCH_HEADER]: String(epoch) };
    if (this.deps.clusterSecret) headers.authorization = `Bearer ${this.deps.clusterSecret}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    const method = body === undefined ? "GET" : "POST";
    const timeoutMs = this.deps.timeoutMs + waitMs;
    let answer;
    try {
      answer = await sendToNode(this.deps, {
        method,
        url: node.url + path,
        headers,
        timeoutMs,
        body,
      });
    } catch (err) {
      if (!(err instanceof TypeError || err instanceof DOMException)) throw err;
      throw new RingkvError(
        "node_unavailable",
        `Cannot read the changes of node ${node.id} at ${node.url}: ${String(err)}`,
      );
    }
    // Kept apart from a node that is down: the watch loads the newer map and goes on.
    if (answer.status === 409) {
      const stale = staleEpoch(node, answer.text);
      if (stale !== undefined) throw stale;
    }
    if (answer.status !== 200) {
      throw new RingkvError(
        "node_unavailable",
        `Cannot read the changes of node ${node.id} at ${node.url}: status ${answer.status} ${
          answer.text.slice(0, 200)
        }`,
      );
    }
    return answer.text;
  }
}

/** The refusal in a 409 body when it says `stale_epoch`. */
function staleEpoch(node: NodeRef, text: string): StaleEpochError | undefined {
  let body: { error?: { code?: string }; epoch?: number };
  try {
    body = JSON.parse(text);
  } catch (err) {
    if (!(err instanceof SyntaxError)) throw err;
    return undefined;
  }
  if (body?.error?.code !== "stale_epoch") return undefined;
  return new StaleEpochError(node, typeof body.epoch === "number" ? body.epoch : undefined);
}
