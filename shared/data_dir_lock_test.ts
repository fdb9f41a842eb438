import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import {
  dataDirInUse,
  DataDirInUseError,
  DataDirUnusableError,
  LOCK_FILE,
  lockDataDir,
} from "./data_dir_lock.ts";
import { DataDirKindError } from "./data_dir_kind.ts";

/** A temporary directory removed when the test ends, pass or fail (`await using`). */
async function tempDir(): Promise<{ path: string } & AsyncDisposable> {
  const path = await Deno.makeTempDir({ prefix: "ringkv-lock-test-" });
  return { path, [Symbol.asyncDispose]: () => Deno.remove(path, { recursive: true }) };
}

Deno.test("lockDataDir() refuses a second holder and names the first", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  const lock = await lockDataDir(dir, "node");
  try {
    const err = await assertRejects(() => lockDataDir(dir, "proxy"), DataDirInUseError);
    assertEquals(err.holder?.pid, Deno.pid);
    assertEquals(err.holder?.role, "node");
    assert(err.message.includes(`Cannot use data directory ${dir}: it is in use by node process`));
  } finally {
    lock.release();
  }
});

Deno.test("lockDataDir() can be taken again once released, and creates a missing directory", async () => {
  await using tmp = await tempDir();
  const dir = join(tmp.path, "fresh", "n1");
  (await lockDataDir(dir, "node")).release();
  using again = await lockDataDir(dir, "node");
  assertEquals(again.dir, dir);
  const holder = JSON.parse(await Deno.readTextFile(join(dir, LOCK_FILE)));
  assertEquals(holder.pid, Deno.pid);
});

Deno.test("abandon() takes back the lock file and the directory it made, and nothing else", async () => {
  await using tmp = await tempDir();
  const fresh = join(tmp.path, "fresh", "p");
  await (await lockDataDir(fresh, "proxy")).abandon();
  // The parents it made for it go too.
  assertEquals(await Deno.lstat(join(tmp.path, "fresh")).then(() => "there", () => "gone"), "gone");
  // A directory that was there keeps all that was in it, its lock file included.
  const used = join(tmp.path, "used");
  await Deno.mkdir(used);
  await Deno.writeTextFile(join(used, "cluster.json"), "{}");
  (await lockDataDir(used, "proxy")).release();
  await (await lockDataDir(used, "proxy")).abandon();
  assertEquals([...Deno.readDirSync(used)].map((e) => e.name).sort(), [
    "cluster.json",
    LOCK_FILE,
  ]);
  // A file written meanwhile in a directory it made: the directory stays, only the lock goes.
  const busy = join(tmp.path, "busy");
  const lock = await lockDataDir(busy, "proxy");
  await Deno.writeTextFile(join(busy, "map.json"), "{}");
  await lock.abandon();
  assertEquals([...Deno.readDirSync(busy)].map((e) => e.name), ["map.json"]);
});

Deno.test("lockDataDir() creates a missing directory for its owner only (0700), keeps an existing one's mode", async () => {
  await using tmp = await tempDir();
  // The log and snapshot hold every value: other users of the machine must not read them.
  const dir = join(tmp.path, "fresh", "n1");
  (await lockDataDir(dir, "node")).release();
  assertEquals((await Deno.stat(dir)).mode! & 0o777, 0o700);
  assertEquals((await Deno.stat(join(tmp.path, "fresh"))).mode! & 0o777, 0o700);
  const shared = join(tmp.path, "shared");
  await Deno.mkdir(shared);
  await Deno.chmod(shared, 0o750);
  (await lockDataDir(shared, "node")).release();
  assertEquals((await Deno.stat(shared)).mode! & 0o777, 0o750);
});

Deno.test("lockDataDir() still refuses when the lock file does not name its holder", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  using _lock = await lockDataDir(dir, "node");
  await Deno.writeTextFile(join(dir, LOCK_FILE), "not json");
  const err = await assertRejects(() => lockDataDir(dir, "node"), DataDirInUseError);
  assertEquals(err.holder, null);
  assert(err.message.includes("in use by another process"));
});

Deno.test("dataDirInUse() names the holder, and writes nothing when the directory is free", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  assertEquals(await dataDirInUse(dir), null);
  assertEquals([...Deno.readDirSync(dir)], [], "no lock file was created");
  const lock = await lockDataDir(dir, "node");
  assertEquals((await dataDirInUse(dir))?.holder?.pid, Deno.pid);
  lock.release();
  assertEquals(await dataDirInUse(dir), null);
});

Deno.test("DataDirUnusableError says what it tried, the directory, the OS error and what to do, in one line", () => {
  const cause = Object.assign(
    new Error("Read-only file system (os error 30): open '/srv/n1/ringkv.lock'"),
    { code: "EROFS" },
  );
  const err = new DataDirUnusableError("/srv/n1", cause);
  assertEquals(
    err.message,
    "Cannot lock data directory /srv/n1 (creating ringkv.lock in it): Read-only file system " +
      "(os error 30): open '/srv/n1/ringkv.lock'; its file system is read-only: remount it " +
      "read-write (after an fsck, when the kernel turned it read-only after a disk error), or " +
      "give this process another --data.",
  );
  assertEquals(err.cause, cause);
});

Deno.test("lockDataDir() refuses a regular file as --data: it is a file, not a directory", async () => {
  const root = await Deno.makeTempDir();
  try {
    const file = join(root, "f");
    await Deno.writeTextFile(file, "mine");
    const err = await assertRejects(() => lockDataDir(file, "node"), DataDirUnusableError);
    assertEquals((err.cause as { code?: string }).code, "EEXIST");
    assert(err.message.startsWith(`Cannot lock data directory ${file} (creating the directory): `));
    assert(
      err.message.endsWith("it is a file, not a directory: give this process another --data."),
    );
    assertEquals(await Deno.readTextFile(file), "mine");
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("lockDataDir() refuses a path under a file: a part of it is a file", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.writeTextFile(join(root, "f"), "mine");
    const dir = join(root, "f", "n1");
    const err = await assertRejects(() => lockDataDir(dir, "node"), DataDirUnusableError);
    assertEquals((err.cause as { code?: string }).code, "ENOTDIR");
    assert(err.message.includes("(creating the directory): Not a directory"), err.message);
    assert(err.message.includes("a part of its path is a file, not a directory"), err.message);
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});

Deno.test("lockDataDir() refuses a directory it may not create (/sys): no permission", async () => {
  const err = await assertRejects(
    () => lockDataDir("/sys/ringkv-test", "node"),
    DataDirUnusableError,
  );
  const code = (err.cause as { code?: string }).code;
  assert(code === "EPERM" || code === "EACCES", String(code));
  assert(err.message.includes("(creating the directory)"), err.message);
  assert(err.message.includes("no permission: chown it"), err.message);
});

Deno.test("DataDirUnusableError gives advice for EACCES and EPERM on the lock file", () => {
  for (const code of ["EACCES", "EPERM"]) {
    const cause = Object.assign(new Error("Permission denied (os error 13)"), { code });
    const err = new DataDirUnusableError("/srv/n1", cause);
    assertEquals(
      err.message,
      "Cannot lock data directory /srv/n1 (creating ringkv.lock in it): Permission denied " +
        "(os error 13); no permission: chown it to the user this process runs as, or give " +
        "this process another --data.",
    );
  }
});

Deno.test("lockDataDir() refuses another kind's directory before it writes anything there", async () => {
  await using tmp = await tempDir();
  const dir = tmp.path;
  (await lockDataDir(dir, "proxy")).release();
  await Deno.writeTextFile(join(dir, "cluster.json"), "{}\n");
  const before = [...Deno.readDirSync(dir)].map((e) => e.name).sort();
  const err = await assertRejects(() => lockDataDir(dir, "node"), DataDirKindError);
  assertEquals([err.want, err.found], ["node", "proxy"]);
  await assertRejects(() => lockDataDir(dir, "deno task cluster"), DataDirKindError);
  assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), before);
  assertEquals(JSON.parse(await Deno.readTextFile(join(dir, LOCK_FILE))).role, "proxy");
  (await lockDataDir(dir, "proxy")).release();
});

Deno.test("lockDataDir() racing a holder's abandon() ends holding the directory's lock file, or refused", async () => {
  await using tmp = await tempDir();
  // The race is in the order of a few file system calls: many rounds, each with its own
  // offset between the two, reach the window where the lock file is gone after it was opened.
  for (let round = 0; round < 400; round++) {
    const dir = join(tmp.path, `r${round}`);
    const first = await lockDataDir(dir, "proxy");
    const second = lockDataDir(dir, "proxy").catch((err) => {
      if (!(err instanceof DataDirInUseError)) throw err;
      return null;
    });
    for (let i = 0; i < round % 15; i++) await Promise.resolve(Deno.lstat(tmp.path));
    await first.abandon();
    const got = await second;
    if (got === null) continue;
    try {
      // Held through the file now at its path: a third process is refused.
      assert((await dataDirInUse(dir)) !== null, `round ${round}: the lock held is not the file's`);
      await assertRejects(() => lockDataDir(dir, "proxy"), DataDirInUseError);
    } finally {
      got.release();
    }
  }
});
