/**
 * The proxy's node `fetch` ({@link NodeFetch}: a URL and an init) over a handler of
 * `Request`s, for doubles that answer in process (node apps, recording fakes).
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { overRequests } from "./node_fetch.ts";
 * const fetch = overRequests((req) => new Response(req.method));
 * assertEquals(await (await fetch("http://n1.test/health", {})).text(), "GET");
 * ```
 */
import type { NodeFetch } from "../../proxy/nodes/node_client.ts";

/** A {@link NodeFetch} that hands `handle` the `Request` fetch would send. */
export function overRequests(handle: (req: Request) => Response | Promise<Response>): NodeFetch {
  return async (url, init) => await handle(new Request(url, init));
}
