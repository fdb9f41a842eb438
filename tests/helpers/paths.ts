/**
 * Small file-system questions the end-to-end tests ask.
 *
 * @module
 */

/** Whether `path` itself exists (a symlink counts, whatever it points to). */
export async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    return false;
  }
}
