/**
 * Only `/kv/{key}` has ETags, so only its routes evaluate `If-Match` and `If-None-Match`. Any
 * other route refuses them (400 `invalid_header`) instead of ignoring them: RFC 9110 forbids
 * performing a method whose precondition does not hold, and `POST /kv` would otherwise apply a
 * batch its client meant to be conditional. etcd and Consul offer no ETag conditions on ranges or
 * lists either (a transaction's compare, `?cas=` per key): a client that sends one to a listing
 * gets told, not a 200 that looks like the condition held.
 *
 * @module
 */
import type { MiddlewareHandler } from "hono";
import { RingkvError } from "../../shared/errors.ts";

const IF_MATCH = "if-match";
const IF_NONE_MATCH = "if-none-match";

/** Refuses `If-Match` and `If-None-Match` on every path but `/kv/{key}`. */
export function refuseConditions(): MiddlewareHandler {
  return (c, next) => {
    const { headers } = c.req.raw;
    const given = headers.has(IF_MATCH)
      ? IF_MATCH
      : headers.has(IF_NONE_MATCH)
      ? IF_NONE_MATCH
      : undefined;
    if (given === undefined || c.req.path.startsWith("/kv/")) return next();
    throw new RingkvError("invalid_header", conditionRefusal(c.req.method, c.req.path, given));
  };
}

/** Why `header` cannot be used on `method path`, and where such a condition goes. */
export function conditionRefusal(method: string, path: string, header: string): string {
  const name = header === IF_MATCH ? "If-Match" : "If-None-Match";
  const where = method === "POST" && path === "/kv"
    ? "POST /kv has no per-key conditions; for a compare-and-set use PUT or DELETE /kv/{key} " +
      "with If-Match or If-None-Match: *"
    : "only /kv/{key} answers ETags to compare it with; leave it out here";
  return `Cannot use ${name} on ${method} ${path}: ${where}`;
}
