import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "@std/path";
import { ADMIN_TOKEN, loadKeys, TestCluster } from "./helpers/cluster.ts";
import { runToEnd } from "./helpers/process.ts";

const KV = new URL("../tasks/kv.ts", import.meta.url);

function kvRunner(cwd: string, env: Record<string, string>) {
  return (...args: string[]) =>
    runToEnd({ script: KV, args, env, cwd, timeoutMs: 60_000, denoArgs: ["run", "-A"] });
}

Deno.test("deno task kv: get, put, del, ls print plain results and exit 0/1/2/3/4/5 as documented", async () => {
  const cluster = await TestCluster.create();
  const cwd = await Deno.makeTempDir({ prefix: "ringkv-cli-" });
  try {
    const proxy = await cluster.startAll(3);
    const kv = kvRunner(cwd, { RINGKV_URL: proxy.url });

    const put = await kv("put", "users/1", "ada");
    assertEquals(put.code, 0, put.stderr);
    const version = put.stdout.trim();
    assertMatch(version, /^[0-9a-f]{12}-[0-9a-f]{4}-\w+$/);
    assertEquals([(await kv("get", "users/1")).stdout, (await kv("get", "users/1")).code], [
      "ada",
      0,
    ]);
    assertEquals((await kv("put", "users/2", "bob")).code, 0);
    assertEquals((await kv("put", "other", "x")).code, 0);
    const ls = await kv("ls", "--prefix", "users/");
    assertEquals([ls.code, ls.stdout], [0, "users/1\nusers/2\n"]);

    const missing = await kv("get", "nope");
    assertEquals(missing.code, 1);
    assertMatch(missing.stderr, /404/);
    assertEquals((await kv("put", "users/1", "again", "--if-none-match")).code, 3);
    assertEquals((await kv("put", "users/1", "v2", "--if-match", version)).code, 0);
    assertEquals((await kv("put", "users/1", "v3", "--if-match", version)).code, 3, "stale");
    assertEquals((await kv("del", "users/2")).code, 0);
    assertEquals((await kv("del", "users/2")).code, 1);

    assertEquals((await kv("frobnicate")).code, 2);
    assertEquals((await kv("get")).code, 2);
    assertEquals((await kv("get", "k", "--no-such-flag")).code, 2);
    assertEquals((await kv("put", "bad\u0001key", "v")).code, 6);
    const noToken = await kv("nodes");
    assertEquals(noToken.code, 5, noToken.stderr);
    assertEquals((await kv("nodes", "--token", "wrong")).code, 5);
    const closed = await kv("get", "k", "--url", "http://127.0.0.1:1");
    assertEquals(closed.code, 4, closed.stderr);
  } finally {
    await cluster.stop();
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("deno task kv: add and remove wait for the rebalancing; nodes and status read the cluster", async () => {
  const cluster = await TestCluster.create();
  const cwd = await Deno.makeTempDir({ prefix: "ringkv-cli-" });
  try {
    const proxy = await cluster.startAll(3, 1); // counts each key on its one owner
    await loadKeys(proxy.url, "k", 3000);
    // The token comes from ./data/admin-token when neither --token nor the env gives one.
    await Deno.mkdir(join(cwd, "data"));
    await Deno.writeTextFile(join(cwd, "data", "admin-token"), ADMIN_TOKEN + "\n");
    const kv = kvRunner(cwd, { RINGKV_URL: proxy.url });

    const nodes = await kv("nodes");
    assertEquals(nodes.code, 0, nodes.stderr);
    const rows = nodes.stdout.trim().split("\n").map((l) => l.split("\t"));
    assertEquals(rows.map((r) => [r[0], r[2]]), [["n1", "up"], ["n2", "up"], ["n3", "up"]]);
    assertEquals(rows.reduce((a, r) => a + Number(r[3]), 0), 3000);

    const n4 = await cluster.startNode("n4");
    const add = await kv("add", n4.url);
    assertEquals(add.code, 0, add.stderr);
    const added = add.stdout.trim().split("\n").map((l) => l.split("\t"));
    assertEquals(added.map((r) => r[0]), ["n1", "n2", "n3", "n4"]);
    assert(Number(added[3]![3]) > 0, "the new node got keys");
    for (const line of add.stderr.trim().split("\n").filter((l) => l !== "")) {
      assertMatch(line, /^\[[#-]{30}\] \d+% \d+\/3000 keys, (copying|cleanup)$/);
    }
    assertMatch((await kv("status")).stdout, /^epoch\t\d+\nnodes\t4\nrebalancing\tnone\n$/);
    assertEquals((await kv("add", n4.url)).code, 3, "adding a member again is a conflict");

    const remove = await kv("remove", "n4");
    assertEquals(remove.code, 0, remove.stderr);
    assertEquals(remove.stdout.trim().split("\n").length, 3);
    assertEquals((await kv("remove", "n9")).code, 1);
    assertEquals((await kv("ls")).stdout.split("\n").length - 1, 3000, "no key lost");
  } finally {
    await cluster.stop();
    await Deno.remove(cwd, { recursive: true });
  }
});
