/**
 * The OpenAPI 3.1 description of the proxy's public and admin APIs, served at
 * `GET /openapi.json` and kept as docs/openapi.json (`deno task openapi` writes it; a
 * test checks that both agree and that every documented route exists on the real app).
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { OPENAPI } from "./openapi.ts";
 * assert(OPENAPI.openapi === "3.1.0" && "/kv/{key}" in OPENAPI.paths);
 * ```
 */
import { MAX_TTL_SECONDS } from "../../shared/expiry.ts";
import { ERROR_STATUS } from "../../shared/errors.ts";
import { STARTING_HEADER } from "../../shared/wire.ts";
import { DEFAULT_MAX_WATCHERS } from "./watch_route.ts";

type Json = Record<string, unknown>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json) => ({ "application/json": { schema } });
const error = (description: string) => ({ description, content: json(ref("Error")) });
const ok = (description: string, schema: Json) => ({ description, content: json(schema) });
const admin = [{ adminToken: [] }];
const KEY_SCHEMA = {
  type: "string",
  minLength: 1,
  maxLength: 1024,
  pattern: "^[^\\u0000-\\u001f\\u007f]+$",
  not: { enum: [".", ".."] },
  description: "1-1024 bytes of UTF-8 (maxLength counts characters; the limit is bytes, " +
    "--max-key-bytes), no control characters, not . or ..",
};
const KEY = {
  name: "key",
  in: "path",
  required: true,
  description:
    "percent-encoded; slashes allowed (a . or .. segment is refused: encode its slashes). " +
    "URL clients (fetch, browsers) resolve . and .. segments before sending: `PUT /kv/..` " +
    "reaches `PUT /`, which answers 405",
  schema: KEY_SCHEMA,
};
const ETAG_HEADER = { ETag: { schema: { type: "string" }, description: '"<version>"' } };
const IF_MATCH = { name: "If-Match", in: "header", schema: { type: "string" } };
const IF_NONE_MATCH = { name: "If-None-Match", in: "header", schema: { type: "string" } };
const TTL = {
  name: "ttl",
  in: "query",
  description: "expire the value after this many seconds (a PUT without ttl clears any TTL; " +
    "ttl is the only query parameter a PUT takes, any other is a 400)",
  schema: { type: "integer", minimum: 1, maximum: MAX_TTL_SECONDS },
};
const READ_HEADERS = {
  ...ETAG_HEADER,
  "Expires-At": {
    schema: { type: "string", format: "date-time" },
    description: "when the key expires (keys with a TTL only)",
  },
};
const NOT_MODIFIED = {
  description: "not modified (If-None-Match, compared weakly): no body and no Content-Type",
  headers: READ_HEADERS,
};
const common = {
  "400": error("bad input (key, header, JSON)"),
  "401": error("no or wrong client token (when the proxy has one)"),
  "502": error("a node answered something the proxy cannot use"),
  "503": error("the owning node is unavailable, or too many requests in flight"),
};
const tooLong = { "414": error("key too long") };
const notAllowed = {
  description: "every other method on this path: 405 `method_not_allowed`, with an `Allow` " +
    "header listing the methods above (HEAD wherever GET is)",
};
const adminCommon = { "401": error("no or wrong admin token"), "403": error("no admin token set") };

function keyRoutes(): Json {
  const value = { "*/*": { schema: { type: "string", format: "binary" } } };
  return {
    parameters: [KEY],
    get: {
      summary: "Read a value (If-Match: 412 unless the key exists with that version, or any for *)",
      parameters: [IF_MATCH, IF_NONE_MATCH],
      responses: {
        "200": {
          description: "the value, its Content-Type",
          headers: READ_HEADERS,
          content: value,
        },
        "304": NOT_MODIFIED,
        "404": error("no such key"),
        "412": error("If-Match does not hold (also when the key is absent)"),
        ...tooLong,
        ...common,
      },
    },
    head: {
      summary: "As GET, without the body",
      parameters: [IF_MATCH, IF_NONE_MATCH],
      responses: {
        "200": { description: "exists", headers: READ_HEADERS },
        "304": NOT_MODIFIED,
        "400": { description: "bad key or header (no body)" },
        "401": { description: "no or wrong client token (no body)" },
        "404": { description: "no such key" },
        "412": { description: "If-Match does not hold (no body)" },
        "414": { description: "key too long (no body)" },
        "502": { description: "a node answered something unusable (no body)" },
        "503": { description: "the owning node is unavailable (no body)" },
      },
    },
    put: {
      summary: "Set a value (compare-and-set with If-Match / If-None-Match: *; TTL with ?ttl=)",
      parameters: [IF_MATCH, IF_NONE_MATCH, TTL],
      requestBody: { required: true, content: value },
      responses: {
        "200": { ...ok("replaced", ref("Version")), headers: ETAG_HEADER },
        "201": { ...ok("created", ref("Version")), headers: ETAG_HEADER },
        "412": error("the condition does not hold"),
        "413": error("value too large"),
        ...tooLong,
        ...common,
      },
    },
    delete: {
      summary: "Delete a key (leaves a tombstone)",
      // If-None-Match: * deletes nothing (412 when the key exists, 404 when not), but is read.
      parameters: [IF_MATCH, IF_NONE_MATCH],
      responses: {
        "204": { description: "deleted", headers: ETAG_HEADER },
        "404": error("no such key"),
        "412": error("the condition does not hold"),
        ...tooLong,
        ...common,
      },
    },
  };
}

function listRoutes(): Json {
  const q = (name: string, schema: Json, description: string) => ({
    name,
    in: "query",
    description,
    schema,
  });
  return {
    get: {
      summary: "List keys in key order across all nodes",
      parameters: [
        q("prefix", { type: "string", maxLength: 1024 }, "only keys starting with it"),
        q("limit", { type: "integer", minimum: 1, maximum: 1000, default: 100 }, "page size"),
        q(
          "cursor",
          { type: "string", pattern: "^[A-Za-z0-9_-]*$" },
          "the cursor of the previous page (opaque; anything else is 400 invalid_cursor)",
        ),
        q(
          "values",
          { type: "boolean" },
          "also return the values: true, false, 1 or 0 (anything else, empty included, is 400)",
        ),
      ],
      responses: { "200": ok("a page", ref("ListPage")), ...common },
    },
    post: {
      summary: "Batch set/delete (not atomic across keys)",
      requestBody: { required: true, content: json(ref("BatchRequest")) },
      responses: {
        "200": ok("every pair applied", ref("BatchResponse")),
        "207": ok("some pairs failed", ref("BatchResponse")),
        "413": error("batch too large"),
        ...common,
      },
    },
  };
}

/** `GET /watch`. */
function watchGet(): Json {
  return {
    summary: "Stream every change under a prefix as Server-Sent Events (docs/api.md)",
    parameters: [
      {
        name: "prefix",
        in: "query",
        description: "only keys starting with it (none: every key)",
        schema: { type: "string", maxLength: 1024 },
      },
      {
        name: "Last-Event-ID",
        in: "header",
        description: "resume after this event's id (the cursor), also across a node added " +
          "or removed with replicas >= 2 (else a compacted event); not ours: 400 invalid_cursor",
        schema: { type: "string" },
      },
      {
        name: "Accept",
        in: "header",
        required: true,
        description: "must include text/event-stream, else 406",
        schema: { type: "string" },
      },
    ],
    responses: {
      "200": {
        description: "the stream, answered once it has read where it starts in the nodes' " +
          "logs: change events (id: cursor, data: {key, version, value or " +
          "valueBase64, contentType, expiresAt} or {key, version, deleted: true}), and " +
          "compacted, reset and cutoff events",
        content: { "text/event-stream": { schema: { type: "string" } } },
      },
      "406": error("no Accept: text/event-stream"),
      ...common,
      "503": error(
        `${DEFAULT_MAX_WATCHERS} streams are open on this proxy already (its cap), or the ` +
          "stream did not read where it starts in the nodes' logs within twice " +
          "--timeout-ms; retry later",
      ),
    },
  };
}

function adminRoutes(): Json {
  const get = (summary: string, body: Json, extra: Json = {}) => ({
    get: { summary, security: admin, ...extra, responses: { "200": body, ...adminCommon } },
  });
  const text = { "text/plain": { schema: { type: "string" } } };
  return {
    "/cluster": get("The cluster: nodes, states, key counts, rebalancing", ok("", ref("Cluster"))),
    "/cluster/nodes": {
      post: {
        summary: "Add a node; its keys move to it in the background",
        security: admin,
        requestBody: { required: true, content: json(ref("AddNode")) },
        responses: {
          "202": ok("rebalancing started", ref("Cluster")),
          "400": error(
            "the body is not JSON, or not a node's http(s) origin (no path, query, fragment " +
              "or user) and weight",
          ),
          "409": error(
            "a rebalancing already runs, the node is already a member, its answer to " +
              "GET /health?challenge= proves another cluster secret or none, or it is not empty (it holds keys or deleted keys, or a map that counts it as " +
              "a member of a cluster, or the map of another cluster it was drained from), or " +
              "it takes shorter keys or smaller values than the proxy",
          ),
          "413": error("the body is too large"),
          "502": error(
            "the node's /health answer is not JSON, has no id, or has no proof of the cluster " +
              "secret (nothing was sent to it with the secret)",
          ),
          "503": error("the node does not answer in time"),
          ...adminCommon,
        },
      },
    },
    "/cluster/nodes/{id}": {
      parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
      delete: {
        summary: "Drain a node's keys to their new owners, then remove it",
        description: "With force=true the node is dead for good: nothing is read from it, " +
          "its ranges are copied again from the surviving replicas (refused with 409 when " +
          "fewer than a write quorum of them are up). The node being added: its add is " +
          "cancelled while its ranges are copied (409 past the switch). With force=true while a " +
          "rebalancing runs, a node that does not answer is removed for good too: the drain of " +
          "that node becomes its removal for good; for another member the running change is " +
          "cancelled (copying) or finished (cleanup) first.",
        security: admin,
        parameters: [{
          name: "force",
          in: "query",
          required: false,
          schema: { type: "boolean" },
          description: "remove a node that is down for good, or insist on leaving fewer " +
            "nodes than replicas",
        }],
        responses: {
          "202": ok("rebalancing started", ref("Cluster")),
          "400": error("force is neither true nor false, or is given more than once"),
          "404": error("no such node"),
          "409": error(
            "a rebalancing already runs (without force, or the node answers), fewer nodes " +
              "than replicas would be left (without " +
              "force), force would lose writes, another proxy changed the cluster map at the " +
              "same moment, or the node's add is past the switch",
          ),
          "503": error(
            "the node is down (use force=true if it is gone for good), or fewer than a " +
              "majority of the nodes vote on the next cluster map",
          ),
          ...adminCommon,
        },
      },
    },
    "/ring": get("Ring points and each node's share of the hash space", ok("", { type: "object" })),
    "/ring/owners": {
      get: {
        summary: "The nodes that own a key",
        security: admin,
        parameters: [{ name: "key", in: "query", required: true, schema: KEY_SCHEMA }],
        responses: {
          "200": ok("", ref("Owners")),
          "400": error("no key, or not a valid key"),
          "414": error("key too long"),
          ...adminCommon,
        },
      },
    },
    "/metrics": get("Prometheus text format", { description: "metrics", content: text }),
    "/stats": get("Each node's sizes and request count", ok("", { type: "object" })),
  };
}

const SCHEMAS: Json = {
  Error: {
    type: "object",
    required: ["error"],
    properties: {
      error: {
        type: "object",
        required: ["code", "message"],
        properties: {
          code: { enum: Object.keys(ERROR_STATUS) },
          message: { type: "string" },
        },
      },
    },
  },
  Version: { type: "object", properties: { version: { type: "string" } } },
  ListPage: {
    type: "object",
    properties: {
      keys: { type: "array", items: { type: "string" } },
      items: { type: "array", items: { type: "object" } },
      cursor: { type: ["string", "null"] },
    },
  },
  BatchRequest: {
    type: "object",
    additionalProperties: false,
    properties: {
      set: { type: "object", additionalProperties: true, description: "not null" },
      delete: { type: "array", items: KEY_SCHEMA, description: "not null" },
      ttl: {
        type: "object",
        additionalProperties: { type: "integer", minimum: 1, maximum: MAX_TTL_SECONDS },
        description: "seconds to live of keys of set (each name must be in set)",
      },
    },
  },
  BatchResponse: {
    type: "object",
    properties: { results: { type: "object", additionalProperties: { type: "object" } } },
  },
  AddNode: {
    type: "object",
    required: ["url"],
    properties: {
      url: { type: "string", format: "uri", description: "scheme://host:port, nothing more" },
      weight: { type: "number" },
    },
  },
  Cluster: {
    type: "object",
    required: ["epoch", "replicas", "nodesUp", "belowReplicas", "keys", "copies", "nodes"],
    properties: {
      epoch: { type: "integer" },
      replicas: { type: "integer", minimum: 1, description: "copies of each key" },
      nodesUp: { type: "integer", description: "nodes of the ring that answer" },
      belowReplicas: { type: "boolean", description: "nodesUp < replicas: fewer copies" },
      keys: { type: ["integer", "null"], description: "distinct keys (estimated)" },
      copies: { type: "integer", description: "copies the answering nodes hold" },
      vnodes: { type: "integer" },
      nodes: { type: "array", items: { type: "object" } },
      underReplicated: { type: "object", description: "with replicas > 1" },
      rebalancing: {
        type: ["object", "null"],
        properties: {
          kind: { enum: ["add", "remove"] },
          nodeId: { type: "string" },
          phase: { enum: ["copying", "cleanup"] },
          movedKeys: { type: "integer", description: "keys copied to new owners" },
          totalKeys: { type: ["integer", "null"], description: "keys it moves (estimated)" },
          movedCopies: { type: "integer", description: "copies read from old replicas" },
          copies: { type: "integer", description: "copies in the cluster at the start" },
          startedAt: { type: "integer" },
          error: { type: "string" },
        },
      },
    },
  },
  Owners: {
    type: "object",
    properties: {
      key: { type: "string" },
      point: { type: "integer" },
      owners: { type: "array", items: { type: "object" } },
      next: { type: ["array", "null"] },
    },
  },
};

/**
 * What shared/guard.ts (and the starting gate, and the body deadline) answer before or
 * around any route, by status: the shared response and the words added where an operation
 * already documents the status for its own reasons. HEAD answers carry no body.
 */
const GUARD: Record<string, [name: string, description: string]> = {
  "400": [
    "BadHost",
    "a Host header that is not host[:port] (every route), or If-Match or If-None-Match on a " +
    "route other than /kv/{key}, which alone has ETags",
  ],
  "408": ["BodyTimeout", "the body did not arrive in time (--body-timeout-ms)"],
  "414": ["UriTooLong", "the request target (path and query) is over 8 KiB (every route)"],
  "431": ["HeadersTooLarge", "the header lines are over 16 KiB (every route)"],
  "503": [
    "Busy",
    "--max-in-flight requests are being answered, or the server is still loading its data " +
    "(every route; Retry-After)",
  ],
};

/** Headers of the shared responses of {@link GUARD}, by name. */
const GUARD_HEADERS: Record<string, Json> = {
  Busy: {
    "Retry-After": { schema: { type: "integer" }, description: "seconds to wait before a retry" },
    [STARTING_HEADER]: {
      schema: { type: "string", enum: ["1"] },
      description: "present (1) when the server is still loading its data (its starting gate, " +
        "shared/starting_gate.ts), absent when it is only busy",
    },
  },
};

/** `op` with every answer of {@link GUARD} it can give documented. */
function withGuard(op: Json): Json {
  const responses = { ...(op.responses as Record<string, Json>) };
  for (const [status, [name, description]] of Object.entries(GUARD)) {
    if (status === "408" && op.requestBody === undefined) continue; // only bodies time out
    const own = responses[status];
    responses[status] = own === undefined
      ? { $ref: `#/components/responses/${name}` }
      : { ...own, description: `${own.description}; or ${description}` };
  }
  return { ...op, responses };
}

/**
 * The HEAD of a GET operation: its statuses and headers, no body (the proxy serves HEAD so);
 * `ok` describes its 200 when GET's description would not fit.
 */
function headOf(get: Json, ok?: string): Json {
  const responses = Object.entries(get.responses as Record<string, Json>).map((
    [status, { description, headers }],
  ) => [status, {
    description: status === "200" && ok !== undefined ? ok : `${description} (no body)`,
    ...(headers ? { headers } : {}),
  }]);
  return { ...get, summary: "As GET, without the body", responses: Object.fromEntries(responses) };
}

/**
 * Every path item, with HEAD wherever GET is, the guard's answers and the rule for the methods
 * it does not list.
 */
function withOtherMethods(paths: Record<string, Json>): Record<string, Json> {
  const methods = ["get", "head", "put", "post", "delete"];
  return Object.fromEntries(
    Object.entries(paths).map(([path, item]) => {
      const withHead = item.get && !item.head ? { ...item, head: headOf(item.get as Json) } : item;
      const ops = Object.entries(withHead).map((
        [k, v],
      ) => [k, methods.includes(k) ? withGuard(v as Json) : v]);
      return [path, { description: notAllowed.description, ...Object.fromEntries(ops) }];
    }),
  );
}

/** The OpenAPI document. */
export const OPENAPI: { openapi: string; paths: Record<string, Json> } & Json = {
  openapi: "3.1.0",
  info: {
    title: "ringkv",
    version: "0.1.0",
    description: "Distributed key-value store: public data API and admin API of the proxy.",
  },
  paths: withOtherMethods({
    "/kv/{key}": keyRoutes(),
    "/kv": listRoutes(),
    "/watch": {
      get: watchGet(),
      head: headOf(
        watchGet(),
        "the stream's headers, without Content-Length: a stream has no length",
      ),
    },
    "/health": {
      get: {
        summary: "The proxy is up (says nothing about the nodes)",
        responses: { "200": ok("ok", { type: "object" }) },
      },
    },
    ...adminRoutes(),
    "/": {
      get: {
        summary: "The web page (the ring, nodes, rebalancing, key lookup)",
        responses: {
          "200": { description: "HTML", content: { "text/html": { schema: { type: "string" } } } },
        },
      },
    },
    "/openapi.json": {
      get: { summary: "This document", responses: { "200": ok("", { type: "object" }) } },
    },
  }),
  components: {
    schemas: SCHEMAS,
    responses: {
      ...Object.fromEntries(
        Object.values(GUARD).map(([name, description]) => [
          name,
          {
            description: `${description} (no body on HEAD)`,
            ...(GUARD_HEADERS[name] ? { headers: GUARD_HEADERS[name] } : {}),
            content: json(ref("Error")),
          },
        ]),
      ),
      MethodNotAllowed: {
        ...notAllowed,
        headers: { Allow: { schema: { type: "string" }, description: "e.g. GET, HEAD" } },
        content: json(ref("Error")),
      },
    },
    securitySchemes: {
      adminToken: { type: "http", scheme: "bearer", description: "the admin token" },
      clientToken: { type: "http", scheme: "bearer", description: "optional, for /kv" },
    },
  },
};
