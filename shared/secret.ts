/**
 * Comparing a secret a client sent (a token, the cluster secret) with the expected one in
 * time that depends only on the expected length, never on where they differ.
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { sameSecret } from "./secret.ts";
 * assert(sameSecret("Bearer s3cret", "Bearer s3cret"));
 * assert(!sameSecret(null, "Bearer s3cret"));
 * ```
 */

/** Whether `given` is exactly `expected`; null or undefined (nothing sent) is never it. */
export function sameSecret(given: string | null | undefined, expected: string): boolean {
  if (given === null || given === undefined) return false;
  let diff = given.length ^ expected.length;
  for (let i = 0; i < expected.length; i++) diff |= given.charCodeAt(i) ^ expected.charCodeAt(i);
  return diff === 0;
}
