import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "@std/path";
import { ADMIN_TOKEN, loadKeys, ProcessCluster } from "./helpers/process_cluster.ts";
import { runToEnd } from "./helpers/process.ts";

const KV = new URL("../tasks/kv.ts", import.meta.url);

function kvRunner(cwd: string, env: Record<string, string>) {
  return (...args: string[]) =>
    runToEnd({ script: KV, args, env, cwd, timeoutMs: 60_000, denoArgs: ["run", "-A"] });
}

/** Runs the CLI with a pseudo-terminal as stdout and stderr (util-linux script). */
async function onTerminal(cwd: string, env: Record<string, string>, args: string[]) {
  const line = [Deno.execPath(), "run", "-A", KV.pathname, ...args]
    .map((a) => `'${a.replaceAll("'", "'\\''")}'`).join(" ");
  const child = new Deno.Command("script", {
    args: ["-qec", line, "/dev/null"],
    cwd,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  try {
    const { code, stdout } = await child.output();
    return { code, out: new TextDecoder().decode(stdout) };
  } finally {
    clearTimeout(timer);
  }
}

Deno.test("deno task kv: get, put, del, ls print plain results and exit 0/1/2/3/4/5 as documented, 1 only for an absent key (a --url with a wrong path: 2)", async () => {
  const cluster = await ProcessCluster.create();
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
    // After --, a key or value may start with -- (stdin is no way to give such a key).
    assertEquals((await kv("put", "--", "--k", "--help")).code, 0);
    assertEquals((await kv("get", "--", "--k")).stdout, "--help");
    const ls = await kv("ls", "--prefix", "users/");
    assertEquals([ls.code, ls.stdout], [0, "users/1\nusers/2\n"]);
    // get --json: the value with its version, type and expiry, one JSON line.
    const typed = await kv("put", "my key", "v\n", "--content-type", "text/plain", "--ttl", "1h");
    assertEquals(typed.code, 0, typed.stderr);
    const json = await kv("get", "my key", "--json");
    assertEquals(json.code, 0, json.stderr);
    assertEquals(json.stdout.split("\n").length, 2, json.stdout);
    const got = JSON.parse(json.stdout);
    assertEquals(
      [got.key, got.value, got.version, got.contentType],
      ["my key", "v\n", typed.stdout.trim(), "text/plain"],
    );
    assert(Date.parse(got.expiresAt) > Date.now(), json.stdout);
    assertEquals(JSON.parse((await kv("get", "users/1", "--json")).stdout).version, version);
    assertEquals((await kv("get", "nope", "--json")).code, 1);
    const misplaced = await kv("nodes", "--json");
    assertEquals(misplaced.code, 2, misplaced.stderr);
    assertMatch(misplaced.stderr, /Cannot use --json with nodes: it is for get, ls, watch only/);
    // Keys end at a control character (a newline is refused, exit 6), but a key may hold what
    // many readers take for a line break (U+2028, U+0085) or a space at its end: ls quotes those
    // as watch does, one line a key; --json: one object a line, such characters escaped.
    assertEquals((await kv("put", "--", "odd/two\nlines", "v")).code, 6);
    for (
      const key of ["odd/two\u2028lines", "odd/nel\u0085x", "odd/end ", 'odd/"q"', "odd/plain"]
    ) {
      assertEquals((await kv("put", "--", key, "v")).code, 0, key);
    }
    const odd = await kv("ls", "--prefix", "odd/");
    assertEquals([odd.code, odd.stdout.split("\n")], [0, [
      '"odd/\\"q\\""',
      '"odd/end "',
      '"odd/nel\\u0085x"',
      "odd/plain",
      '"odd/two\\u2028lines"',
      "",
    ]]);
    const oddJson = await kv("ls", "--prefix", "odd/", "--json");
    assertEquals(oddJson.code, 0, oddJson.stderr);
    assert(!/[\u0085\u2028\u2029]/.test(oddJson.stdout), oddJson.stdout);
    assertEquals(oddJson.stdout.split("\n").slice(0, -1).map((l) => JSON.parse(l)), [
      { key: 'odd/"q"' },
      { key: "odd/end " },
      { key: "odd/nel\u0085x" },
      { key: "odd/plain" },
      { key: "odd/two\u2028lines" },
    ]);

    const missing = await kv("get", "nope");
    assertEquals(missing.code, 1);
    assertMatch(missing.stderr, /404/);
    assertEquals((await kv("put", "users/1", "again", "--if-none-match")).code, 3);
    assertEquals((await kv("put", "users/1", "v2", "--if-match", version)).code, 0);
    assertEquals((await kv("put", "users/1", "v3", "--if-match", version)).code, 3, "stale");
    assertEquals((await kv("del", "users/2")).code, 0);
    assertEquals((await kv("del", "users/2")).code, 1);
    // A --url with a wrong path: the proxy has no route there, which is no absent key (review:
    // `kv get k || echo absent` took it for one, and put exited "not found").
    const wrong = `${proxy.url}/ringkv`;
    for (const args of [["get", "a/b"], ["put", "zz", "1"], ["ls"], ["del", "zz"], ["watch"]]) {
      const r = await kv(...args, "--url", wrong);
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertMatch(r.stderr, /: 404 No route for .*\(no such route: the path of --url /, args[0]);
    }

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
  const cluster = await ProcessCluster.create();
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
    // The bar counts the keys that move to n4 (about a quarter), not every copy of every key.
    const bars = add.stderr.trim().split("\n").filter((l) => l !== "");
    for (const line of bars) {
      assertMatch(
        line,
        /^\[[#-]{30}\] \d+% (\d+\/~\d+ keys|\d+ keys \(~\d+ estimated\)), (copying|cleanup|done)$/,
      );
    }
    // A rebalancing over before the first poll draws no bar: then there is nothing to compare.
    if (bars.length > 0) {
      // With one replica, every key moved is on n4 (counted on the node itself: the table's
      // count comes from the proxy's last probe, which a loaded machine can leave behind).
      const onN4 = (await cluster.nodeKeys("n4")).length;
      const last = /(\d+)(?:\/~| keys \(~)(\d+)(?: keys| estimated\)), done$/.exec(bars.at(-1)!);
      const [, moved, total] = last!.map(Number);
      assert(moved! <= onN4, `${moved} shown moved, ${onN4} on n4`);
      assert(Math.abs(onN4 - total!) <= total! * 0.2, `${onN4} moved, ${total} estimated`);
    }
    assertMatch(
      (await kv("status")).stdout,
      /^epoch\t\d+\nnodes\t4\nkeys\t3000\ncopies\t3000\nreplicas\t1\nnodes up\t4\nrebalancing\tnone\n$/,
    );
    assertEquals((await kv("add", n4.url)).code, 3, "adding a member again is a conflict");

    // On a terminal (script(1) gives it one) the bar ends at 100 % and the table follows
    // on lines of its own.
    const remove = await onTerminal(cwd, { RINGKV_URL: proxy.url }, ["remove", "n4"]);
    assertEquals(remove.code, 0, remove.out);
    const shown = remove.out.replaceAll("\r\n", "\n").split("\n").filter((l) => l !== "");
    assertMatch(shown[0]!, /\[#{30}\] 100% (\d+\/~\d+ keys|\d+ keys \(~\d+ estimated\)), done$/);
    assertEquals(shown.slice(1).map((l) => l.split("\t")[0]), ["n1", "n2", "n3"]);
    assertEquals((await kv("remove", "n9")).code, 1);
    assertEquals((await kv("ls")).stdout.split("\n").length - 1, 3000, "no key lost");
  } finally {
    await cluster.stop();
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("deno task kv: no command prints the usage (exit 2); extra arguments and keys . and .. are refused as invalid keys (exit 2) before any call", async () => {
  const cwd = await Deno.makeTempDir({ prefix: "ringkv-cli-" });
  try {
    // Port 1 is closed: a call that went out would exit 4, not 2.
    const kv = kvRunner(cwd, { RINGKV_URL: "http://127.0.0.1:1" });
    const bare = await kv();
    assertEquals(bare.code, 2);
    assertMatch(bare.stderr, /^usage: deno task kv <command>/);
    for (const [typed, meant] of [["delete", "del"], ["list", "ls"], ["set", "put"]]) {
      const r = await kv(typed!, "k");
      assertEquals(r.code, 2, r.stderr);
      assertEquals(r.stderr, `Unknown command "${typed}"; did you mean ${meant}? (see --help)\n`);
    }
    const extra = [["get", "a", "b"], ["del", "a", "b"], ["put", "a", "b", "c"], ["nodes", "x"]];
    for (const args of extra) {
      const r = await kv(...args);
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertMatch(r.stderr, /needs .*, not \d arguments \(see --help\)/);
    }
    for (const args of [["get", ".."], ["get", "."], ["put", "..", "x"], ["del", "."]]) {
      const r = await kv(...args);
      assertEquals(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assertMatch(r.stderr, /Cannot use key "\.{1,2}": no URL can address it \(invalid_key\)/);
      assertEquals(r.stdout, "");
    }
    // A hand-edited ./data/admin-token that no Authorization header can carry: said, not 401s.
    await Deno.mkdir(join(cwd, "data"));
    await Deno.writeTextFile(join(cwd, "data", "admin-token"), "pässwort x\n");
    const bad = await kv("status");
    assertEquals(bad.code, 2, bad.stderr);
    assertMatch(bad.stderr, /Cannot use the admin token in \.\/data\/admin-token: it contains/);
    assert(!bad.stderr.includes("pässwort"), "the token is never printed");
  } finally {
    await Deno.remove(cwd, { recursive: true });
  }
});

Deno.test("deno task kv: remove below the replica count is refused (exit 3) unless --force; status shows nodes up against replicas", async () => {
  const cluster = await ProcessCluster.create();
  const cwd = await Deno.makeTempDir({ prefix: "ringkv-cli-" });
  try {
    for (const id of ["n1", "n2", "n3"]) await cluster.startNode(id);
    const urls = [...cluster.nodes.values()].map((n) => n.url).join(",");
    const proxy = await cluster.startProxy("p1", ["--nodes", urls, "--replicas", "3"]);
    const kv = kvRunner(cwd, { RINGKV_URL: proxy.url, RINGKV_ADMIN_TOKEN: ADMIN_TOKEN });

    const refused = await kv("remove", "n3");
    assertEquals(refused.code, 3, refused.stderr);
    assertMatch(
      refused.stderr,
      /409 Cannot remove node n3: 2 node\(s\) would be left for 3 replicas/,
    );
    assertMatch(refused.stderr, /--force/);
    assertMatch((await kv("status")).stdout, /\nreplicas\t3\nnodes up\t3\nrebalancing\tnone\n$/);

    await cluster.nodes.get("n3")!.stop();
    const status = await kv("status");
    assertMatch(
      status.stdout,
      /\nnodes up\t2 \(fewer than 3 replicas: keys have fewer copies than promised\)\n/,
    );
  } finally {
    await cluster.stop();
    await Deno.remove(cwd, { recursive: true });
  }
});
