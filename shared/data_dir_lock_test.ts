import { assert, assertEquals, assertRejects } from "@std/assert";
import { join } from "@std/path";
import {
  dataDirInUse,
  DataDirInUseError,
  DataDirUnusableError,
  LOCK_FILE,
  lockDataDir,
} from "./data_dir_lock.ts";

Deno.test("lockDataDir() refuses a second holder and names the first", async () => {
  const dir = await Deno.makeTempDir();
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
  const dir = join(await Deno.makeTempDir(), "fresh", "n1");
  (await lockDataDir(dir, "node")).release();
  using again = await lockDataDir(dir, "node");
  assertEquals(again.dir, dir);
  const holder = JSON.parse(await Deno.readTextFile(join(dir, LOCK_FILE)));
  assertEquals(holder.pid, Deno.pid);
});

Deno.test("lockDataDir() still refuses when the lock file does not name its holder", async () => {
  const dir = await Deno.makeTempDir();
  using _lock = await lockDataDir(dir, "node");
  await Deno.writeTextFile(join(dir, LOCK_FILE), "not json");
  const err = await assertRejects(() => lockDataDir(dir, "node"), DataDirInUseError);
  assertEquals(err.holder, null);
  assert(err.message.includes("in use by another process"));
});

Deno.test("dataDirInUse() names the holder, and writes nothing when the directory is free", async () => {
  const dir = await Deno.makeTempDir();
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
