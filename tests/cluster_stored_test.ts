/**
 * `deno task cluster` on a `--data` that holds a cluster starts that cluster: every stored
 * node, the stored replica count, whatever `--nodes` / `--replicas` say (named as ignored);
 * and an admin token from the environment that the saved file does not hold is said so.
 */
import { assertEquals, assertMatch } from "@std/assert";
import { join } from "@std/path";
import { type ServerProcess, spawnServer } from "./helpers/process.ts";
import { until } from "./helpers/poll.ts";
import { exists } from "./helpers/paths.ts";

const CLUSTER = new URL("../tasks/cluster.ts", import.meta.url);
const ENV = { RINGKV_CLUSTER_SECRET: "cluster-stored-secret-0123456789", RINGKV_ADMIN_TOKEN: "" };

/** Starts the task on `data`, waits for its welcome, stops it; returns what it printed. */
async function runOnce(data: string, args: string[], env: Record<string, string> = {}) {
  let cluster: ServerProcess | undefined;
  try {
    cluster = await spawnServer({
      script: CLUSTER,
      args: ["--port", "0", "--node-port", "0", "--data", data, ...args],
      env: { ...ENV, ...env },
    });
    const out = cluster.stdoutLines;
    await until("the welcome is printed", () => out.includes("Ctrl-C stops everything."));
    const token = env.RINGKV_ADMIN_TOKEN ||
      (await Deno.readTextFile(join(data, "admin-token"))).trim();
    const res = await fetch(`${cluster.url}/cluster`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    const map = await res.json();
    const status = await cluster.stop();
    assertEquals(status.code, 0, cluster.stderrLines.join("\n"));
    return {
      out: out.join("\n"),
      err: cluster.stderrLines.join("\n"),
      nodes: (map.nodes as { id: string; up?: boolean }[]).map((n) => n.id),
      replicas: map.replicas as number,
    };
  } finally {
    await cluster?.stop();
  }
}

Deno.test("deno task cluster on an existing --data starts every stored node and says which --nodes/--replicas it ignores", async () => {
  // QA: --nodes 2 on a 3-node ./data started n1 and n2 (n3 down in the map), --nodes 4 an n4
  // the proxy ignored, --replicas 1 stayed 3: all without a word.
  const data = await Deno.makeTempDir({ prefix: "ringkv-cluster-stored-" });
  try {
    const first = await runOnce(data, ["--nodes", "3"]);
    assertEquals([first.nodes, first.replicas], [["n1", "n2", "n3"], 3]);
    assertEquals(first.err.includes("ignored"), false, first.err);

    const fewer = await runOnce(data, ["--nodes", "2", "--replicas", "1"]);
    assertEquals([fewer.nodes, fewer.replicas], [["n1", "n2", "n3"], 3]);
    assertMatch(fewer.out, /nodes: +n1 \S+ \(pid \d+\), n2 \S+ \(pid \d+\), n3 /);
    assertMatch(
      fewer.err,
      /^--nodes 2 is ignored: .* holds a cluster of 3 node\(s\) \(n1, n2, n3\) with 3 replica\(s\) .*deno task kv add URL \/ deno task kv remove ID/m,
    );
    assertMatch(fewer.err, /^--replicas 1 is ignored: .*keeps the replica count it started with/m);

    const more = await runOnce(data, [], { RINGKV_NODES: "4" });
    assertEquals(more.nodes, ["n1", "n2", "n3"]);
    assertEquals(more.out.includes("n4"), false, more.out);
    assertEquals(await exists(join(data, "n4")), false, "a directory for n4 was made");
    assertMatch(more.err, /^--nodes 4 is ignored/m);
  } finally {
    await Deno.remove(data, { recursive: true });
  }
});

Deno.test("deno task cluster given RINGKV_ADMIN_TOKEN says that the saved admin-token file is not the token in use", async () => {
  // QA: the welcome said "from RINGKV_ADMIN_TOKEN" while data/admin-token kept an older token,
  // and the README's TOKEN=$(cat data/admin-token) then got 401 with no hint why.
  const data = await Deno.makeTempDir({ prefix: "ringkv-cluster-stored-" });
  try {
    await runOnce(data, ["--nodes", "1"]);
    const saved = await Deno.readTextFile(join(data, "admin-token"));
    const env = { RINGKV_ADMIN_TOKEN: "admin-token-from-env-0123456789" };
    const other = await runOnce(data, [], env);
    assertMatch(
      other.out,
      /admin token: +from RINGKV_ADMIN_TOKEN; .*admin-token holds an older token, which this proxy REFUSES \(401\)/,
    );
    assertEquals(await Deno.readTextFile(join(data, "admin-token")), saved, "the file was changed");
    await Deno.writeTextFile(join(data, "admin-token"), env.RINGKV_ADMIN_TOKEN + "\n");
    const same = await runOnce(data, [], env);
    assertEquals(same.out.includes("REFUSES"), false, same.out);
  } finally {
    await Deno.remove(data, { recursive: true });
  }
});
