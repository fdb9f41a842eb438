/**
 * The query of a single-key write: a PUT takes `ttl` and nothing else, a DELETE nothing. Any other
 * parameter is a 400, so that a misspelt one (`TTL`, `tll`) or one of another store's API (etcd
 * v2's `prevExist` or `recursive`) is not silently ignored: a key meant to expire would not.
 * Reads ignore other parameters (cache-busting ones are common there); docs/api.md.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals, assertThrows } from "@std/assert";
 * import { writeQuery } from "./write_query.ts";
 * assertEquals(writeQuery(new URLSearchParams("ttl=30"), "put", "k"), "30");
 * assertThrows(() => writeQuery(new URLSearchParams("TTL=30"), "put", "k"), Error, "did you mean ttl?");
 * assertThrows(() => writeQuery(new URLSearchParams("recursive=true"), "delete", "k"), Error, "takes none");
 * ```
 */
import { RingkvError } from "../../shared/errors.ts";
import { ttlParam } from "../../shared/expiry.ts";

/** The `ttl` of a PUT (null when absent); 400 for any other parameter, or one on a DELETE. */
export function writeQuery(
  params: URLSearchParams,
  op: "put" | "delete",
  key: string,
): string | null {
  for (const name of params.keys()) {
    if (op === "put" && name === "ttl") continue;
    const near = name.toLowerCase() === "ttl" || name === "tll" ? "; did you mean ttl?" : "";
    throw new RingkvError(
      "bad_request",
      op === "put"
        ? `Cannot store key "${key}": the query has parameter ${
          JSON.stringify(name)
        }, and a PUT takes only ttl${near}`
        : `Cannot delete key "${key}": the query has parameter ${
          JSON.stringify(name)
        }, and a DELETE takes none (POST /kv deletes several keys)`,
    );
  }
  return op === "put" ? ttlParam(params, key) : null;
}
