/**
 * The OpenAPI 3.1 description of the proxy's public and admin APIs, served at
 * `GET /openapi.json` and kept as docs/openapi.json (`deno task openapi` writes it; a
 * test checks that both agree and that every documented route exists on the real app).
 *
 * @module
 * @example
 * ```ts
 * import { OPENAPI } from "./openapi.ts";
 * console.assert(OPENAPI.openapi === "3.1.0" && "/kv/{key}" in OPENAPI.paths);
 * ```
 */
import { ERROR_STATUS } from "../shared/errors.ts";

type Json = Record<string, unknown>;

const ref = (name: string) => ({ $ref: `#/components/schemas/${name}` });
const json = (schema: Json) => ({ "application/json": { schema } });
const error = (description: string) => ({ description, content: json(ref("Error")) });
const ok = (description: string, schema: Json) => ({ description, content: json(schema) });
const admin = [{ adminToken: [] }];
const KEY = {
  name: "key",
  in: "path",
  required: true,
  description: "1-1024 bytes of UTF-8, percent-encoded; slashes allowed",
  schema: { type: "string" },
};
const ETAG_HEADER = { ETag: { schema: { type: "string" }, description: '"<version>"' } };
const IF_MATCH = { name: "If-Match", in: "header", schema: { type: "string" } };
const IF_NONE_MATCH = { name: "If-None-Match", in: "header", schema: { type: "string" } };
const common = {
  "400": error("bad input (key, header, JSON)"),
  "503": error("the owning node is unavailable"),
};
const adminCommon = { "401": error("no or wrong admin token"), "403": error("no admin token set") };

function keyRoutes(): Json {
  const value = { "*/*": { schema: { type: "string", format: "binary" } } };
  return {
    parameters: [KEY],
    get: {
      summary: "Read a value",
      parameters: [IF_NONE_MATCH],
      responses: {
        "200": { description: "the value, its Content-Type", headers: ETAG_HEADER, content: value },
        "304": { description: "not modified (If-None-Match)" },
        "404": error("no such key"),
        ...common,
      },
    },
    head: {
      summary: "As GET, without the body",
      responses: { "200": { description: "exists" }, "404": { description: "no such key" } },
    },
    put: {
      summary: "Set a value (compare-and-set with If-Match / If-None-Match: *)",
      parameters: [IF_MATCH, IF_NONE_MATCH],
      requestBody: { required: true, content: value },
      responses: {
        "200": ok("replaced", ref("Version")),
        "201": ok("created", ref("Version")),
        "412": error("the condition does not hold"),
        "413": error("value too large"),
        "414": error("key too long"),
        ...common,
      },
    },
    delete: {
      summary: "Delete a key (leaves a tombstone)",
      parameters: [IF_MATCH],
      responses: {
        "204": { description: "deleted", headers: ETAG_HEADER },
        "404": error("no such key"),
        "412": error("the condition does not hold"),
        ...common,
      },
    },
  };
}

function listRoutes(): Json {
  const q = (name: string, type: string, description: string) => ({
    name,
    in: "query",
    description,
    schema: { type },
  });
  return {
    get: {
      summary: "List keys in key order across all nodes",
      parameters: [
        q("prefix", "string", "only keys starting with it"),
        q("limit", "integer", "1-1000, default 100"),
        q("cursor", "string", "the cursor of the previous page"),
        q("values", "boolean", "also return the values"),
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
          "409": error("a rebalancing already runs"),
          "503": error("the node does not answer"),
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
          "fewer than a write quorum of them are up).",
        security: admin,
        parameters: [{
          name: "force",
          in: "query",
          required: false,
          schema: { type: "boolean" },
          description: "remove a node that is down for good",
        }],
        responses: {
          "202": ok("rebalancing started", ref("Cluster")),
          "400": error("force is neither true nor false"),
          "404": error("no such node"),
          "409": error("a rebalancing already runs, or force would lose writes"),
          "503": error("the node is down (use force=true if it is gone for good)"),
          ...adminCommon,
        },
      },
    },
    "/ring": get("Ring points and each node's share of the hash space", ok("", { type: "object" })),
    "/ring/owners": get("The nodes that own a key", ok("", ref("Owners")), {
      parameters: [{ name: "key", in: "query", required: true, schema: { type: "string" } }],
    }),
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
    properties: {
      set: { type: "object", additionalProperties: true },
      delete: { type: "array", items: { type: "string" } },
    },
  },
  BatchResponse: {
    type: "object",
    properties: { results: { type: "object", additionalProperties: { type: "object" } } },
  },
  AddNode: {
    type: "object",
    required: ["url"],
    properties: { url: { type: "string", format: "uri" }, weight: { type: "number" } },
  },
  Cluster: {
    type: "object",
    properties: {
      epoch: { type: "integer" },
      nodes: { type: "array", items: { type: "object" } },
      rebalancing: { type: ["object", "null"] },
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

/** The OpenAPI document. */
export const OPENAPI: { openapi: string; paths: Record<string, Json> } & Json = {
  openapi: "3.1.0",
  info: {
    title: "ringkv",
    version: "0.1.0",
    description: "Distributed key-value store: public data API and admin API of the proxy.",
  },
  paths: {
    "/kv/{key}": keyRoutes(),
    "/kv": listRoutes(),
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
        responses: { "200": { description: "HTML" } },
      },
    },
    "/openapi.json": {
      get: { summary: "This document", responses: { "200": ok("", { type: "object" }) } },
    },
  },
  components: {
    schemas: SCHEMAS,
    securitySchemes: {
      adminToken: { type: "http", scheme: "bearer", description: "the admin token" },
      clientToken: { type: "http", scheme: "bearer", description: "optional, for /kv" },
    },
  },
};
