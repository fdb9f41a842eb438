/**
 * The tokens `deno task cluster` gives its processes: from the environment, else saved in
 * `--data` by an earlier start, else new and saved there (0600).
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { adminTokenFile } from "./cluster_tokens.ts";
 * assertEquals(adminTokenFile("./data"), "./data/admin-token");
 * ```
 */
import { join } from "@std/path";
import { checkToken, ConfigError } from "../shared/config.ts";
import { unreadableDir } from "./cluster_plan.ts";

/** Where the generated admin token is kept. */
export const adminTokenFile = (data: string) => join(data, "admin-token");
/** Where the generated cluster secret is kept. */
export const secretFile = (data: string) => join(data, "cluster-secret");

/**
 * The token in the environment, else in `file`, checked as the servers check theirs; undefined
 * when neither has one yet. Reads only, so a refused token leaves `--data` untouched.
 */
export async function givenToken(envName: string, file: string): Promise<string | undefined> {
  const fromEnv = Deno.env.get(envName);
  if (fromEnv) {
    checkToken(envName, fromEnv);
    return fromEnv;
  }
  let saved: string;
  try {
    saved = (await Deno.readTextFile(file)).trim();
  } catch (err) {
    // No token yet, or --data is no directory of ours: lockDataDir says what is wrong with it.
    if (!(err instanceof Deno.errors.NotFound || unreadableDir(err))) throw err;
    return undefined;
  }
  if (saved === "") {
    // Read as no token, it gave a proxy with no admin token or nodes with no secret.
    throw new ConfigError(
      `Cannot use ${file}: it is empty; write the token in it, or delete it and this task makes ` +
        "a new one",
    );
  }
  checkToken(file, saved);
  return saved;
}

/**
 * Whether `file` holds a token other than `token`: one saved by an earlier start, which a proxy
 * given RINGKV_ADMIN_TOKEN refuses. The file is left as it is: a token the user keeps in the
 * environment is not written to disk by this task, nor one they saved thrown away.
 */
export async function holdsOtherToken(file: string, token: string): Promise<boolean> {
  try {
    return (await Deno.readTextFile(file)).trim() !== token;
  } catch (err) {
    const none = err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotADirectory;
    if (!none) throw err;
    return false;
  }
}

/** A new random token saved in `file` (0600); never overwrites one that is there. */
export async function newToken(file: string, created: string[]): Promise<string> {
  const token = crypto.getRandomValues(new Uint8Array(24)).toHex();
  await Deno.writeTextFile(file, token + "\n", { mode: 0o600, createNew: true });
  created.push(file);
  return token;
}
