/**
 * The exclusive lock that makes a data directory belong to one process for its whole life
 * (as etcd's and Redis's do). The one module of shared/ that touches the file system: the
 * node, the proxy and `deno task cluster` take the same lock, so it lives where all three
 * import it.
 *
 * The lock is an OS advisory lock (`flock`) on `<dir>/ringkv.lock`, held through an open
 * file: the kernel releases it when the process ends, even by `kill -9`, so a crash never
 * leaves a stale lock behind. Once held, the file names its holder for the next process
 * that finds the directory taken.
 *
 * @module
 * @example
 * ```ts
 * import { assertRejects } from "@std/assert";
 * import { DataDirInUseError, lockDataDir } from "./data_dir_lock.ts";
 * const dir = await Deno.makeTempDir({ prefix: "ringkv-lock-example-" });
 * const lock = await lockDataDir(dir, "node");
 * await assertRejects(() => lockDataDir(dir, "node"), DataDirInUseError);
 * lock.release();
 * (await lockDataDir(dir, "node")).release();
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
import { dirname, join } from "@std/path";
import { type DataDirKind, otherKindError } from "./data_dir_kind.ts";

/** The lock file's name inside a data directory. */
export const LOCK_FILE = "ringkv.lock";

/** Who holds a data directory, as its lock file says. */
export interface LockHolder {
  pid: number;
  role: string;
  since: string;
}

/** Another process holds the data directory. */
export class DataDirInUseError extends Error {
  constructor(readonly dir: string, readonly holder: LockHolder | null) {
    const who = holder === null
      ? "another process"
      : `${holder.role} process ${holder.pid} (since ${holder.since})`;
    super(
      `Cannot use data directory ${dir}: it is in use by ${who}. ` +
        "One process per data directory: stop that process first, or give this one its own --data.",
    );
    this.name = "DataDirInUseError";
  }
}

/** OS errors that say the data directory cannot be made or take the lock file, and what to do. */
const UNUSABLE: Record<string, string> = {
  EEXIST: "it is a file, not a directory: give this process another --data",
  ENOTDIR: "a part of its path is a file, not a directory: give this process another --data",
  EACCES: "no permission: chown it to the user this process runs as, or give this process " +
    "another --data",
  EPERM: "no permission: chown it to the user this process runs as, or give this process " +
    "another --data",
  EROFS: "its file system is read-only: remount it read-write (after an fsck, when the " +
    "kernel turned it read-only after a disk error), or give this process another --data",
  ENOSPC: "its file system is full: free space there, or give this process another --data",
  EDQUOT: "the disk quota is used up: free space there, or give this process another --data",
  EIO: "the disk failed to read or write: check it (dmesg), or give this process another --data",
};

/** The data directory cannot be made or refuses the lock file (a file, no permission, full...). */
export class DataDirUnusableError extends Error {
  /**
   * `cause`: the OS error, whose `code` is one of those {@link lockDataDir} names; `step`:
   * what failed, making the directory or the lock file in it.
   */
  constructor(
    readonly dir: string,
    cause: Error & { code: string },
    step: "mkdir" | "lock" = "lock",
  ) {
    const doing = step === "mkdir" ? "creating the directory" : `creating ${LOCK_FILE} in it`;
    super(
      `Cannot lock data directory ${dir} (${doing}): ${cause.message}; ` +
        `${UNUSABLE[cause.code]}.`,
      { cause },
    );
    this.name = "DataDirUnusableError";
  }
}

/** `err` as a {@link DataDirUnusableError} when it is an OS error that makes `dir` unusable. */
function unusable(dir: string, err: unknown, step: "mkdir" | "lock"): unknown {
  const code = (err as { code?: unknown } | null)?.code;
  if (!(err instanceof Error) || typeof code !== "string" || !(code in UNUSABLE)) return err;
  return new DataDirUnusableError(dir, err as Error & { code: string }, step);
}

/** The processes that lock a data directory, as the lock file names them. */
export type DataDirRole = "node" | "proxy" | "deno task cluster";

const KIND_OF: Record<DataDirRole, DataDirKind> = {
  node: "node",
  proxy: "proxy",
  "deno task cluster": "cluster",
};

/**
 * Throws `DataDirKindError` (data_dir_kind.ts) when `dir` holds another kind of process's
 * files (a node's log in a proxy's --data, say). Lists the directory only: a missing one, one
 * that is no directory or cannot be listed is left to the lock to report.
 */
async function refuseOtherKind(dir: string, role: DataDirRole): Promise<void> {
  const names: string[] = [];
  try {
    for await (const entry of Deno.readDir(dir)) names.push(entry.name);
  } catch (err) {
    // Deno's permission refusal is the caller's to explain; an OS error (missing, a file, no
    // permission, EIO) is the lock's, which names it and says what to do.
    if (err instanceof Deno.errors.NotCapable) throw err;
    if (err instanceof Deno.errors.NotFound || (err as { code?: unknown })?.code) return;
    throw err;
  }
  const refusal = otherKindError(dir, KIND_OF[role], names);
  if (refusal !== null) throw refusal;
}

/** A held lock; released when the process ends or by {@link DataDirLock.release}. */
export interface DataDirLock extends Disposable {
  readonly dir: string;
  release(): void;
  /**
   * Releases it after a failed start, taking back what taking it wrote: the lock file it
   * created, and the directory it created when nothing else is in it now.
   */
  abandon(): Promise<void>;
}

/**
 * Takes the exclusive lock of `dir` (created when missing) for `role`, or throws without
 * writing anything `DataDirKindError` (data_dir_kind.ts) when `dir` is another kind of
 * process's, {@link DataDirInUseError} when another process holds it, and
 * {@link DataDirUnusableError} when it is a file, not ours to write, or its file system is
 * read-only, full or failing. `retries`: how often it starts again when the lock file it
 * locked, or the directory it made, was removed meanwhile (its holder abandoned a failed start).
 */
export async function lockDataDir(
  dir: string,
  role: DataDirRole,
  retries = 3,
): Promise<DataDirLock> {
  await refuseOtherKind(dir, role);
  const made = await missingDirs(dir);
  try {
    // For the owner only: the log and snapshot hold every value (an existing dir keeps its mode).
    await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw unusable(dir, err, "mkdir");
  }
  const path = join(dir, LOCK_FILE);
  const fileMade = !(await exists(path));
  let file: Deno.FsFile;
  try {
    file = await Deno.open(path, { read: true, write: true, create: true });
  } catch (err) {
    // The directory went after it was made (a holder's abandon removed it): start again.
    if (err instanceof Deno.errors.NotFound && retries > 0) {
      return await lockDataDir(dir, role, retries - 1);
    }
    throw unusable(dir, err, "lock");
  }
  let held = false;
  try {
    if (!(await file.tryLock(true))) throw new DataDirInUseError(dir, await readHolder(file));
    if (!(await sameFile(file, path)) && retries > 0) {
      // Its holder removed it while this process waited (a failed start's abandon): the lock
      // of a file no longer there guards nothing; the directory is taken again from the start
      // (the finally closes this one).
      return await lockDataDir(dir, role, retries - 1);
    }
    await writeHolder(file, { pid: Deno.pid, role, since: new Date().toISOString() });
    held = true;
  } catch (err) {
    throw unusable(dir, err, "lock");
  } finally {
    if (!held) file.close(); // also when naming the holder failed: no lock left behind
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    file.close(); // closing the descriptor releases the flock
  };
  const abandon = async () => {
    // Removed while held: a process that opened it meanwhile finds it gone once it holds it
    // (the check after tryLock) and takes a new one.
    if (fileMade && !released) await Deno.remove(path).catch(() => {});
    release();
    // Innermost first; each removal fails, as meant, unless that directory is empty.
    for (const d of made) if (!(await Deno.remove(d).then(() => true, () => false))) break;
  };
  return { dir, release, abandon, [Symbol.dispose]: release };
}

/** Whether the open `file` is still the one at `path` (not removed or replaced). */
async function sameFile(file: Deno.FsFile, path: string): Promise<boolean> {
  const [held, named] = await Promise.all([file.stat(), Deno.lstat(path).catch(() => null)]);
  return named !== null && held.ino === named.ino && held.dev === named.dev;
}

/**
 * The directories a `mkdir -p` of `dir` would create, innermost first. A parent this process
 * may not look at (Deno's --allow-read names only `dir`) counts as there: never removed.
 */
async function missingDirs(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (let d = dir; dirname(d) !== d; d = dirname(d)) {
    const there = await Deno.lstat(d).then(() => true, (err) => {
      if (err instanceof Deno.errors.NotFound) return false;
      if (d !== dir) return true;
      throw unusable(dir, err, "mkdir");
    });
    if (there) break;
    missing.push(d);
  }
  return missing;
}

/** Whether the lock file at `path` is there (an OS error that is no "not found": unusable). */
async function exists(path: string): Promise<boolean> {
  try {
    await Deno.lstat(path);
    return true;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw unusable(path, err, "lock");
  }
}

/**
 * The error {@link lockDataDir} would throw for `dir` now, or null when no process holds it;
 * writes nothing (a missing directory or lock file is simply not held).
 */
export async function dataDirInUse(dir: string): Promise<DataDirInUseError | null> {
  let file: Deno.FsFile;
  try {
    file = await Deno.open(join(dir, LOCK_FILE), { read: true });
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    return null;
  }
  try {
    if (await file.tryLock(false)) return null; // a shared lock is refused while one holds it
    return new DataDirInUseError(dir, await readHolder(file));
  } finally {
    file.close();
  }
}

/**
 * For a start that failed on its port: who holds `dir`, when a process does (most likely this
 * very server, started twice), else null. Writes nothing.
 */
export async function holderAfterFailedStart(
  err: unknown,
  dir: string,
): Promise<DataDirInUseError | null> {
  return err instanceof Deno.errors.AddrInUse ? await dataDirInUse(dir) : null;
}

async function readHolder(file: Deno.FsFile): Promise<LockHolder | null> {
  const bytes = new Uint8Array(1024);
  const n = await file.read(bytes);
  if (n === null) return null;
  try {
    const parsed = JSON.parse(new TextDecoder().decode(bytes.subarray(0, n)));
    const { pid, role, since } = parsed ?? {};
    if (typeof pid !== "number" || typeof role !== "string" || typeof since !== "string") {
      return null;
    }
    return { pid, role, since };
  } catch (err) {
    // A holder that crashed mid-write, or a file that is not ours: the lock still stands.
    if (!(err instanceof SyntaxError)) throw err;
    return null;
  }
}

async function writeHolder(file: Deno.FsFile, holder: LockHolder): Promise<void> {
  await file.truncate(0);
  await file.seek(0, Deno.SeekMode.Start);
  const bytes = new TextEncoder().encode(JSON.stringify(holder) + "\n");
  let written = 0;
  while (written < bytes.length) written += await file.write(bytes.subarray(written));
}
