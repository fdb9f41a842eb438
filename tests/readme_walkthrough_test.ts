import { assert, assertEquals, assertMatch } from "@std/assert";
import { join } from "@std/path";
import { type ServerProcess, spawnServer } from "./helpers/process.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const CLUSTER = new URL("../tasks/cluster.ts", import.meta.url);
const NODE = new URL("../node/main.ts", import.meta.url);

/** The `sh` code blocks of the README's walkthrough section, in order. */
async function walkthroughBlocks(): Promise<string[]> {
  const readme = await Deno.readTextFile(join(ROOT, "README.md"));
  const section = readme.slice(
    readme.indexOf("## Walkthrough"),
    readme.indexOf("\n## ", readme.indexOf("## Walkthrough") + 3),
  );
  return [...section.matchAll(/```sh\n([\s\S]*?)```/g)].map((m) => m[1]!);
}

function startCluster(dir: string): Promise<ServerProcess> {
  return spawnServer({
    script: CLUSTER,
    args: ["--port", "0", "--node-port", "0", "--data", join(dir, "data")],
    cwd: dir,
  });
}

/** Runs a README block with bash in `dir`, against `proxyUrl` instead of port 8080. */
async function runBlock(block: string, dir: string, proxyUrl: string): Promise<string> {
  const script = "set -eu\n" + block.replaceAll("http://127.0.0.1:8080", proxyUrl);
  const bash = new Deno.Command("bash", {
    args: ["-c", script],
    cwd: dir,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(60_000),
  });
  const { code, stdout, stderr } = await bash.output();
  const text = new TextDecoder().decode(stdout);
  assertEquals(code, 0, `the walkthrough failed:\n${text}\n${new TextDecoder().decode(stderr)}`);
  return text;
}

function statuses(transcript: string): number[] {
  return [...transcript.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1]));
}

Deno.test("the README's curl walkthrough works as written on `task cluster`", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-readme-" });
  const running: ServerProcess[] = [];
  try {
    const [basics, addRemove] = await walkthroughBlocks();
    assert(basics && addRemove, "the README has the two walkthrough blocks");
    let cluster = await startCluster(dir);
    running.push(cluster);

    const out = await runBlock(basics, dir, cluster.url);
    assertEquals(statuses(out), [
      201,
      200,
      200,
      204,
      404,
      201,
      200,
      412,
      200,
      412,
      200,
      200,
      200,
      201,
      200,
      200,
    ]);
    assertMatch(out, /expires-at: \d{4}-\d\d-\d\dT/i);
    assertMatch(out, /\r\n\r\nhello\r?\n?HTTP/);
    assertMatch(out, /content-type: application\/json\r\n[\s\S]*\{"name":"Ada"\}/i);
    assertMatch(out, /"keys":\["a","b"\]/);
    assertMatch(out, /"keys":\["users\/1"\],"cursor":null/);
    assertMatch(out, /"nodes":\[\{"id":"n1"/);

    // The block starts n4 with npx on port 7004; here the test starts it, on a free port.
    const secret = (await Deno.readTextFile(join(dir, "data", "cluster-secret"))).trim();
    const n4 = await spawnServer({
      script: NODE,
      args: ["--id", "n4", "--port", "0", "--data", join(dir, "data", "n4")],
      env: { RINGKV_CLUSTER_SECRET: secret },
    });
    running.push(n4);
    const lines = addRemove.split("\n");
    const fromAdd = lines.slice(lines.findIndex((l) => l.startsWith("curl"))).join("\n");
    const prelude = "P=http://127.0.0.1:8080\nTOKEN=$(cat data/admin-token)\n";
    const out2 = await runBlock(
      prelude + fromAdd.replaceAll("7004", String(n4.port)),
      dir,
      cluster.url,
    );
    assertEquals(statuses(out2), [202, 202]);
    assertMatch(out2, /"id":"n4"[^}]*"state":"up"/);
    const finalView = JSON.parse(out2.slice(out2.lastIndexOf('{"epoch"')));
    assertEquals(finalView.rebalancing, null);
    assertEquals(finalView.nodes.map((n: { id: string }) => n.id), ["n1", "n2", "n3"]);

    // Ctrl-C stops everything; the same command comes back with the data.
    assertEquals((await cluster.kill("SIGINT")).code, 0);
    assert(cluster.stdoutLines.some((l) => l.startsWith("Stopped.")));
    cluster = await startCluster(dir);
    running.push(cluster);
    const again = await fetch(`${cluster.url}/kv/users/1`);
    assertEquals([again.status, await again.text()], [200, '{"name":"Ada"}']);
  } finally {
    for (const p of running.toReversed()) await p.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
