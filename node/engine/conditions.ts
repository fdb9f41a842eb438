/**
 * Conditional-write headers of the node API: `If-Match: "<v>"` or `*`, `If-None-Match: *`
 * and `x-ringkv-min-version`, read into the engine's {@link WriteConditions}.
 *
 * @module
 */
import { RingkvError } from "../../shared/errors.ts";
import { isVersion } from "../../shared/version.ts";
import { MIN_VERSION_HEADER } from "../../shared/wire.ts";
import type { WriteConditions } from "./engine.ts";

const QUOTED = /^"([^"]*)"$/;

/** The write conditions of a request; `matchAny` is `If-Match: *` (the key must exist). */
export function readConditions(
  headers: Headers,
): { conditions: WriteConditions; matchAny: boolean } {
  const conditions: WriteConditions = {};
  let matchAny = false;
  const ifMatch = headers.get("if-match");
  if (ifMatch !== null) {
    const tag = ifMatch.trim();
    if (tag === "*") matchAny = true;
    else conditions.ifMatch = parseTag(tag);
  }
  const ifNoneMatch = headers.get("if-none-match");
  if (ifNoneMatch !== null) {
    if (ifNoneMatch.trim() !== "*") {
      throw new RingkvError(
        "invalid_header",
        `Cannot use If-None-Match "${ifNoneMatch}" on a write: only * is supported`,
      );
    }
    conditions.ifNoneMatch = "*";
  }
  const minVersion = headers.get(MIN_VERSION_HEADER);
  if (minVersion !== null) {
    if (!isVersion(minVersion)) {
      throw new RingkvError(
        "invalid_header",
        `Cannot use ${MIN_VERSION_HEADER} "${minVersion}": it is not a version`,
      );
    }
    conditions.minVersion = minVersion;
  }
  return { conditions, matchAny };
}

/** `"<v>"` (or a bare version) -> the version; a quoted tag that is no version never matches. */
function parseTag(tag: string): string {
  const quoted = QUOTED.exec(tag);
  // A quoted tag that is not a version can match nothing; keep it non-empty so it still
  // reaches the engine as a condition (an empty string could read as "no condition").
  if (quoted) return isVersion(quoted[1]!) ? quoted[1]! : `not-a-version:${quoted[1]}`;
  if (isVersion(tag)) return tag;
  throw new RingkvError(
    "invalid_header",
    `Cannot use If-Match ${tag}: give one quoted version ("<version>") or *`,
  );
}
