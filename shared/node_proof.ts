/**
 * A node's proof that it holds the cluster secret, given without sending the secret: the
 * HMAC-SHA256 of a challenge the caller chose, keyed by the secret. A proxy asks a URL it was
 * given through the admin API for one before it sends that URL anything with the secret
 * (docs/security.md, "Adding a node").
 *
 * @module
 * @example
 * ```ts
 * import { assert } from "@std/assert";
 * import { challengeProblem, newChallenge, provesSecret, secretProof } from "./node_proof.ts";
 * const challenge = newChallenge();
 * assert(challengeProblem(challenge) === undefined);
 * const proof = await secretProof("s3cret", challenge);
 * assert(await provesSecret("s3cret", challenge, proof));
 * assert(!(await provesSecret("another", challenge, proof)));
 * ```
 */
import { sameSecret } from "./secret.ts";

/** The query parameter of `GET /health` that asks a node for a proof. */
export const CHALLENGE_PARAM = "challenge";

const CHALLENGE = /^[A-Za-z0-9_-]{16,128}$/;

/** Keeps a proof for this use only: a MAC of the bare challenge could be asked for elsewhere. */
const CONTEXT = "ringkv-node-proof\n";

/** A fresh challenge: 16 random bytes as 32 hex digits. */
export function newChallenge(): string {
  return hex(crypto.getRandomValues(new Uint8Array(16)));
}

/** A fresh challenge and the `GET /health` path that asks a node to answer it. */
export function healthChallenge(): { challenge: string; path: string } {
  const challenge = newChallenge();
  return { challenge, path: `/health?${CHALLENGE_PARAM}=${challenge}` };
}

/** Why `values` (a query's `challenge` values) is no challenge, or undefined when it is one. */
export function challengeProblem(...values: string[]): string | undefined {
  if (values.length !== 1) return "give it once";
  if (!CHALLENGE.test(values[0]!)) return "it must be 16 to 128 of A-Z, a-z, 0-9, _ and -";
  return undefined;
}

/** The proof of `secret` for `challenge`: hex(HMAC-SHA256(secret, context + challenge)). */
export async function secretProof(secret: string, challenge: string): Promise<string> {
  const encoder = new TextEncoder();
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const mac = await crypto.subtle.sign("HMAC", key, encoder.encode(CONTEXT + challenge));
  return hex(new Uint8Array(mac));
}

/** Whether `proof` (as a node sent it) is `secret`'s for `challenge`, in constant time. */
export async function provesSecret(
  secret: string,
  challenge: string,
  proof: string,
): Promise<boolean> {
  return sameSecret(proof, await secretProof(secret, challenge));
}

function hex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}
