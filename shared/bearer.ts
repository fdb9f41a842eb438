/**
 * The check of an `Authorization: Bearer <token>` header, with a 401 that says what was
 * wrong (nothing sent, not the Bearer form, the wrong token) and where the right token is
 * kept, never what it is.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { bearerRefusal } from "./bearer.ts";
 * assertEquals(bearerRefusal("Bearer s3cret", "s3cret", "admin"), undefined);
 * assertEquals(bearerRefusal("nope", "s3cret", "admin")?.status, 401);
 * ```
 */
import { RingkvError } from "./errors.ts";
import { sameSecret } from "./secret.ts";

/** Which token a route needs. */
export type TokenKind = "admin" | "client" | "cluster";

const NEEDS: Record<TokenKind, { what: string; token: string; where: string; realm: string }> = {
  admin: {
    realm: "ringkv-admin",
    what: "the admin API",
    token: "admin token",
    where: "the proxy's --admin-token or RINGKV_ADMIN_TOKEN; deno task cluster keeps it in " +
      "data/admin-token",
  },
  client: {
    realm: "ringkv",
    what: "/kv and /watch",
    token: "client token",
    where: "the proxy's --client-token or RINGKV_CLIENT_TOKEN",
  },
  cluster: {
    realm: "ringkv-node",
    what: "the node",
    token: "cluster secret",
    where: "the node's --cluster-secret or RINGKV_CLUSTER_SECRET; deno task cluster keeps " +
      "it in data/cluster-secret",
  },
};

/**
 * The `WWW-Authenticate` value every 401 for `kind` carries (RFC 9110 requires one); each
 * token has its own realm, as none opens another's routes.
 */
export function wwwAuthenticate(kind: TokenKind): string {
  return `Bearer realm="${NEEDS[kind].realm}"`;
}

/** Undefined when `header` carries `expected`; else the 401 to answer. */
export function bearerRefusal(
  header: string | null | undefined,
  expected: string,
  kind: TokenKind,
): RingkvError | undefined {
  const need = NEEDS[kind];
  const sent = (header ?? "").trim();
  const match = /^Bearer\s+(\S+)$/i.exec(sent);
  if (match !== null && sameSecret(match[1]!, expected)) return undefined;
  const problem = sent === ""
    ? `send Authorization: Bearer <${need.token}>`
    : match === null
    ? `the Authorization header is not of the form "Bearer <${need.token}>"`
    : `the ${need.token} sent is wrong`;
  return new RingkvError(
    "unauthorized",
    `Cannot use ${need.what}: ${problem} (the ${need.token} is ${need.where})`,
  );
}
