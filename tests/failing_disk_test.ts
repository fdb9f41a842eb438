/**
 * Real nodes on failing disks, each a small ext4 image loop-mounted by the test (needs root,
 * loop devices and e2fsprogs; skipped with a message otherwise):
 * - the filesystem turns read-only under a running node, as ext4 does on a disk error
 *   (`errors=remount-ro`, triggered through /sys/fs/ext4/<dev>/trigger_fs_error; a plain
 *   `mount -o remount,ro` is refused while the node holds its log open for writing): the
 *   node serves reads, refuses writes with the reason, and, started again on the repaired
 *   filesystem, has every acknowledged write and none of the refused ones;
 * - the disk stalls (`fsfreeze`: every write and fsync waits, as on a stuck device): reads
 *   and /health are still answered, /health says `stalled` once the log write has waited
 *   5 s and `ok` again once the disk moves, a write waits and is acknowledged once the disk
 *   moves again, and is there after a SIGKILL;
 * - the snapshot cannot be read (its inode corrupted with debugfs: "Structure needs
 *   cleaning"): the node refuses to start and names the file, instead of starting empty.
 * Timed fsync delays and EIO need device-mapper `delay`/`error` targets, which this kernel
 * lacks: they are tested over the fake disk (docs/storage.md).
 */
import { assert, assertEquals } from "@std/assert";
import { join } from "@std/path";
import { runToEnd, type ServerProcess, spawnServer } from "./helpers/process.ts";
import { until } from "./helpers/poll.ts";
import { exists } from "./helpers/paths.ts";

const MAIN = new URL("../node/main.ts", import.meta.url);

async function run(cmd: string, args: string[]): Promise<string | null> {
  try {
    const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
    return out.success ? new TextDecoder().decode(out.stdout).trim() : null;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    return null;
  }
}

/** Mounts a fresh 16 MiB ext4 image at `dir` (errors=remount-ro); its loop device's name. */
async function mountExt4(image: string, dir: string, fresh: boolean): Promise<string | null> {
  if (fresh) {
    await Deno.writeFile(image, new Uint8Array(0));
    await Deno.truncate(image, 16 * 1024 * 1024);
    if (await run("mkfs.ext4", ["-q", "-F", image]) === null) return null;
  }
  if (await run("mount", ["-o", "loop,errors=remount-ro", image, dir]) === null) return null;
  const source = await run("findmnt", ["-n", "-o", "SOURCE", dir]);
  return source?.split("/").at(-1) ?? null;
}

/**
 * Unmounts `dir` and waits until no loop device maps `image` any more: the kernel detaches
 * the loop device of a loop mount lazily, and an e2fsck or debugfs run on the image before
 * that can have its repair overwritten by the old device's late writeback.
 */
async function unmount(dir: string, image: string): Promise<boolean> {
  if (await run("umount", [dir]) === null) return false;
  for (let i = 0; i < 200; i++) {
    if ((await run("losetup", ["-j", image])) === "") return true;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return false;
}

async function canMount(): Promise<boolean> {
  const dir = await Deno.makeTempDir();
  try {
    const dev = await mountExt4(join(dir, "img"), await mkdir(join(dir, "m")), true);
    if (dev === null) return false;
    const trigger = await exists(`/sys/fs/ext4/${dev}/trigger_fs_error`);
    const tools = await run("debugfs", ["-V"]) !== null && await run("fsfreeze", ["-V"]) !== null;
    return (await run("umount", [join(dir, "m")])) !== null && trigger && tools;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

async function mkdir(path: string): Promise<string> {
  await Deno.mkdir(path);
  return path;
}

const mountable = await canMount();
if (!mountable) {
  console.log(
    "failing_disk_test: skipped, it needs root, loop devices, debugfs, fsfreeze and ext4's trigger_fs_error",
  );
}

async function put(url: string, key: string): Promise<number> {
  const res = await fetch(`${url}/kv/${key}`, { method: "PUT", body: `value of ${key}` });
  await res.body?.cancel();
  return res.status;
}

async function expectValues(url: string, keys: string[], present: boolean): Promise<void> {
  for (const key of keys) {
    const res = await fetch(`${url}/kv/${key}`);
    const text = await res.text();
    assertEquals(
      [res.status, res.status === 200 ? text : ""],
      present ? [200, `value of ${key}`] : [404, ""],
      `${key}: ${text}`,
    );
  }
}

/** A node's /health body, as far as these tests read it. */
interface HealthBody {
  status?: string;
  writes?: { state?: string; reason?: string };
}

/** Polls the node's /health (each answer within 3 s) until `done` holds; its body. */
async function pollHealth(
  url: string,
  done: (status: number, body: HealthBody) => boolean,
): Promise<HealthBody> {
  let [status, body]: [number, HealthBody] = [0, {}];
  await until(
    () => `/health gets there (last: ${status} ${JSON.stringify(body)})`,
    async () => {
      const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(3000) });
      [status, body] = [res.status, await res.json()];
      return done(status, body);
    },
    30_000,
    100,
  );
  return body;
}

Deno.test({
  name:
    "read-only disk: a node whose filesystem turns read-only serves reads, refuses writes with the reason, and loses nothing",
  ignore: !mountable,
  async fn() {
    const dir = await Deno.makeTempDir();
    const [image, data] = [join(dir, "img"), await mkdir(join(dir, "data"))];
    let node: ServerProcess | undefined;
    let mounted = false;
    try {
      const dev = await mountExt4(image, data, true);
      assert(dev !== null, "mount failed");
      mounted = true;
      const args = ["--port", "0", "--data", data, "--id", "ro"];
      node = await spawnServer({ script: MAIN, args });
      const acked = ["a", "b", "c"];
      for (const key of acked) assertEquals(await put(node.url, key), 201, key);
      await Deno.writeTextFile(`/sys/fs/ext4/${dev}/trigger_fs_error`, "ringkv test");
      assertEquals(await put(node.url, "refused"), 503);
      const health = await fetch(`${node.url}/health`);
      const body = await health.json();
      assertEquals([health.status, body.writes.state], [503, "read-only"]);
      assert(/read-only file system/i.test(body.writes.reason), body.writes.reason);
      await expectValues(node.url, acked, true);
      // The refused write is in memory only: reading it must not show it (it is not
      // durable) nor a 500; the node says why it cannot answer.
      const refused = await fetch(`${node.url}/kv/refused`);
      const error = (await refused.json()).error;
      assertEquals([refused.status, error.code], [503, "unavailable"]);
      assert(/read-only file system/i.test(error.message), error.message);
      await node.kill("SIGKILL");
      assert(await unmount(data, image), "umount failed, or its loop device stayed");
      mounted = false;
      await run("e2fsck", ["-f", "-y", image]); // exits non-zero when it repaired something
      assert(await mountExt4(image, data, false) !== null, "mount after repair failed");
      mounted = true;
      node = await spawnServer({ script: MAIN, args });
      await expectValues(node.url, acked, true);
      await expectValues(node.url, ["refused"], false);
      assertEquals(await put(node.url, "after"), 201);
    } finally {
      await node?.stop();
      if (mounted) await run("umount", [data]);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "failing disk: a node whose snapshot cannot be read refuses to start and names the file, instead of starting empty",
  ignore: !mountable,
  async fn() {
    const dir = await Deno.makeTempDir();
    const [image, data] = [join(dir, "img"), await mkdir(join(dir, "data"))];
    let mounted = false;
    try {
      assert(await mountExt4(image, data, true) !== null, "mount failed");
      mounted = true;
      const args = ["--port", "0", "--data", data, "--id", "eio"];
      const node = await spawnServer({ script: MAIN, args });
      assertEquals(await put(node.url, "a"), 201);
      assertEquals((await node.stop()).code, 0); // a clean stop writes the snapshot
      assert(await exists(join(data, "snapshot.json")), "no snapshot was written");
      assert(await unmount(data, image), "umount failed, or its loop device stayed");
      mounted = false;
      const broken = await run("debugfs", ["-w", "-R", "sif /snapshot.json block[0] 0", image]);
      assert(broken !== null, "debugfs failed");
      assert(await mountExt4(image, data, false) !== null, "mount after damage failed");
      mounted = true;
      const { code, stdout, stderr } = await runToEnd({ script: MAIN, args, timeoutMs: 30_000 });
      assertEquals(code, 1, stderr);
      assert(/snapshot\.json/.test(stderr) && /structure needs cleaning/i.test(stderr), stderr);
      assert(!/listening on/.test(stdout), stdout);
    } finally {
      if (mounted) await run("umount", [data]);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "failing disk: while the disk stalls a node answers reads, /health reports the stall and recovers, and a write is acknowledged only once it is on disk",
  ignore: !mountable,
  async fn() {
    const dir = await Deno.makeTempDir();
    const [image, data] = [join(dir, "img"), await mkdir(join(dir, "data"))];
    let node: ServerProcess | undefined;
    let [mounted, frozen] = [false, false];
    try {
      assert(await mountExt4(image, data, true) !== null, "mount failed");
      mounted = true;
      const args = ["--port", "0", "--data", data, "--id", "stall"];
      node = await spawnServer({ script: MAIN, args });
      assertEquals(await put(node.url, "a"), 201);
      assert(await run("fsfreeze", ["-f", data]) !== null, "fsfreeze failed");
      frozen = true;
      let answered = false;
      const write = put(node.url, "b").then((status) => (answered = true, status));
      // Before: a log append written on the JS thread blocked these until the thaw.
      const read = await fetch(`${node.url}/kv/a`, { signal: AbortSignal.timeout(3000) });
      assertEquals([read.status, await read.text()], [200, "value of a"]);
      // Past 5 s of waiting on the log's fsync, /health says so (503 stalled, with a reason).
      const stalled = await pollHealth(
        node.url,
        (status, body) =>
          status === 503 && body.status === "stalled" && body.writes?.state === "stalled",
      );
      const reason = stalled.writes?.reason ?? "";
      assert(/wal\.jsonl\) has waited/.test(reason), reason);
      assertEquals(answered, false, "a write was acknowledged while the disk was frozen");
      assert(await run("fsfreeze", ["-u", data]) !== null, "thaw failed");
      frozen = false;
      assertEquals(await write, 201);
      await pollHealth(node.url, (status, body) => status === 200 && body.status === "ok");
      await node.kill("SIGKILL");
      node = await spawnServer({ script: MAIN, args });
      await expectValues(node.url, ["a", "b"], true);
    } finally {
      if (frozen) await run("fsfreeze", ["-u", data]);
      await node?.stop();
      if (mounted) await run("umount", [data]);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
