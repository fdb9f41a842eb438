/**
 * The node's one error answer: the JSON body of docs/internal-api.md, `Allow` on 405,
 * `WWW-Authenticate` on 401, the epoch and map also at the top of a `stale_epoch` body; an
 * unexpected error is logged and answered 500 `internal`.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import { wwwAuthenticate } from "../../shared/bearer.ts";
import { type NodeContext, rawPath } from "./node_context.ts";

/** The error answer of `err` to `req`. */
export function errorAnswer(err: Error, req: Request, ctx: NodeContext): Response {
  if (!(err instanceof RingkvError)) {
    const id = req.headers.get("x-request-id")?.slice(0, 4096);
    ctx.log({
      level: "error",
      msg: "unexpected error",
      id,
      path: rawPath(req.url),
      err: err.stack,
    });
    err = new RingkvError("internal", `Cannot serve the request: ${err.message}`);
  }
  const { code, message, extra, status } = err as RingkvError;
  const { map, ...inError } = extra;
  const body: Record<string, unknown> = { error: { ...inError, code, message } };
  // Proxies read these at the top level; the error object keeps the documented shape.
  if (code === "stale_epoch") Object.assign(body, { epoch: extra.epoch, map });
  const headers: Record<string, string> = { "content-type": "application/json" };
  if (code === "method_not_allowed") headers.allow = String(extra.allow);
  if (code === "unauthorized") headers["www-authenticate"] = wwwAuthenticate("cluster");
  return new Response(JSON.stringify(body), { status, headers });
}
