/**
 * The JSON form of one entry, shared by log records and snapshot lines:
 * `{"k": key, "h": point, "ver": version, "t": contentType, "s": text}` for a value that
 * is valid UTF-8, `"b": base64` instead of `"s"` for other bytes, and
 * `{"k", "h", "ver", "del": true, "at": ms}` for a tombstone (`at`: when this node stored it, by
 * its clock, for the purge of old tombstones; absent in files written before 2026-12-07, when a
 * start counts it from the load).
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { entryFromJson, entryToJson } from "./entry_json.ts";
 * const json = entryToJson("a", {
 *   kind: "text", data: "hi", hash: 7, contentType: "text/plain", version: "018bcfe56800-0000-n1",
 * });
 * assert(entryFromJson(JSON.parse(json)).stored.data === "hi");
 * ```
 */
import { isVersion } from "../../shared/version.ts";
import type { Stored } from "./packed.ts";

/** The JSON text of one entry (one line, no newline). */
export function entryToJson(key: string, entry: Stored): string {
  const head = `{"k":${JSON.stringify(key)},"h":${entry.hash},"ver":"${entry.version}"`;
  if (entry.kind === "tombstone") {
    return entry.arrivedAt ? `${head},"del":true,"at":${entry.arrivedAt}}` : `${head},"del":true}`;
  }
  const field = entry.kind === "text" ? "s" : "b";
  return `${head},"t":${JSON.stringify(entry.contentType)},"${field}":${
    JSON.stringify(entry.data)
  }}`;
}

/** Reads a parsed entry; throws a TypeError saying what is wrong with it. */
export function entryFromJson(json: unknown): { key: string; stored: Stored } {
  const o = json as Record<string, unknown>;
  if (typeof o !== "object" || o === null || typeof o.k !== "string") {
    throw new TypeError("an entry needs a string key `k`");
  }
  const { k, h, ver } = o;
  if (typeof h !== "number" || !Number.isInteger(h) || h < 0 || h >= 2 ** 32) {
    throw new TypeError(`entry ${JSON.stringify(k)} has no ring point \`h\``);
  }
  if (typeof ver !== "string" || !isVersion(ver)) {
    throw new TypeError(`entry ${JSON.stringify(k)} has no valid version \`ver\``);
  }
  if (o.del === true) {
    const stored: Stored = { kind: "tombstone", data: "", hash: h, contentType: "", version: ver };
    if (Number.isSafeInteger(o.at) && (o.at as number) > 0) stored.arrivedAt = o.at as number;
    return { key: k, stored };
  }
  const kind = typeof o.s === "string" ? "text" : typeof o.b === "string" ? "base64" : null;
  if (kind === null || typeof o.t !== "string") {
    throw new TypeError(`entry ${JSON.stringify(k)} needs \`t\` and \`s\` or \`b\`, or \`del\``);
  }
  const data = (kind === "text" ? o.s : o.b) as string;
  return { key: k, stored: { kind, data, hash: h, contentType: o.t, version: ver } };
}
