/**
 * The seed's backup image: a flat JSON object `{"key": "value", ...}`, with
 * `{"base64": "..."}` for values that are not UTF-8 text. Checked here before the engine
 * sees it, the same way for `POST /import` and for `--import FILE` at start-up.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import { checkKey, utf8Length } from "../../shared/keys.ts";
import type { Limits } from "../../shared/limits.ts";
import { isObject } from "./node_request_body.ts";
import { fromBase64 } from "./wire_entries.ts";

/** A flat image as the engine imports it. */
export type FlatImage = Record<string, string | { base64: string }>;

/** Checks every key and value of an image; throws 4xx naming the first bad pair. */
export function parseFlatImage(value: unknown, limits: Limits): FlatImage {
  if (!isObject(value)) {
    throw new RingkvError(
      "bad_request",
      'Cannot import: the image must be a JSON object {"key": "value"}',
    );
  }
  for (const [key, v] of Object.entries(value)) {
    checkKey(key, limits.maxKeyBytes);
    const size = valueSize(key, v);
    if (size > limits.maxValueBytes) {
      throw new RingkvError(
        "value_too_large",
        `Cannot import key "${key}": its value is ${size} bytes, the limit is ${limits.maxValueBytes}`,
      );
    }
  }
  return value as FlatImage;
}

function valueSize(key: string, v: unknown): number {
  if (typeof v === "string") return utf8Length(v);
  if (isObject(v) && typeof v.base64 === "string" && Object.keys(v).length === 1) {
    return fromBase64(v.base64, `the value of "${key}"`).length;
  }
  throw new RingkvError(
    "bad_request",
    `Cannot import key "${key}": its value is neither a string nor {"base64": "..."}`,
  );
}
