import { assert, assertEquals, assertMatch } from "@std/assert";
import { until } from "./helpers/poll.ts";
import { ProcessCluster } from "./helpers/process_cluster.ts";
import { runToEnd } from "./helpers/process.ts";

const KV = new URL("../tasks/kv.ts", import.meta.url);

/** A running `kv watch` and the lines it printed so far (stdout, and stderr in `errors`). */
interface Watcher {
  child: Deno.ChildProcess;
  lines: string[];
  errors: string[];
  reading: Promise<void>;
}

function startWatch(cwd: string, env: Record<string, string>, args: string[]): Watcher {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", KV.pathname, "watch", ...args],
    cwd,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const collect = (stream: ReadableStream<Uint8Array>, into: string[]) =>
    stream.pipeThrough(new TextDecoderStream()).pipeTo(
      new WritableStream({ write: (chunk) => void into.push(...chunk.split("\n")) }),
    );
  const lines: string[] = [];
  const errors: string[] = [];
  const reading = Promise.all([collect(child.stdout, lines), collect(child.stderr, errors)])
    .then(() => {});
  return { child, lines, errors, reading };
}

async function stopWatch(w: Watcher, signal: Deno.Signal): Promise<void> {
  try {
    w.child.kill(signal);
  } catch (err) {
    // It ended by itself (a usage error, say): nothing to stop, only its pipes to close.
    if (!(err instanceof TypeError)) throw err;
  }
  await w.child.status;
  await w.reading.catch(() => {});
}

/** What a CLI test gets: its cluster, `kv` run in a temporary directory, and kv watches. */
interface CliRun {
  cluster: ProcessCluster;
  /** The environment `kv` runs with (RINGKV_URL: the proxy of a 1-node cluster). */
  env: Record<string, string>;
  kv: (...args: string[]) => ReturnType<typeof runToEnd>;
  /** Starts `kv watch ARGS`; stopped after the test (SIGTERM, SIGKILL when the test failed). */
  watch: (args: string[]) => Watcher;
}

/** A test over a 1-node cluster; everything it starts is stopped and removed after it. */
function cliTest(name: string, fn: (run: CliRun) => Promise<void>): void {
  Deno.test(name, async () => {
    const cluster = await ProcessCluster.create();
    const cwd = await Deno.makeTempDir({ prefix: "ringkv-cli-" });
    const env = { RINGKV_URL: "" };
    const watchers: Watcher[] = [];
    try {
      env.RINGKV_URL = (await cluster.startAll(1)).url;
      await fn({
        cluster,
        env,
        kv: (...args) =>
          runToEnd({ script: KV, args, env, cwd, timeoutMs: 60_000, denoArgs: ["run", "-A"] }),
        watch: (args) => {
          const w = startWatch(cwd, env, args);
          watchers.push(w);
          return w;
        },
      });
      for (const w of watchers.splice(0)) await stopWatch(w, "SIGTERM");
    } finally {
      for (const w of watchers) await stopWatch(w, "SIGKILL");
      await cluster.stop();
      await Deno.remove(cwd, { recursive: true });
    }
  });
}

cliTest(
  "deno task kv: put --ttl 1s expires the key, and kv watch prints the put and the expiry, quoting a key with a space; --json prints objects with their cursor (id)",
  async ({ kv, watch }) => {
    const human = watch(["w/"]);
    const json = watch(["w/", "--json"]);
    const bad = await kv("put", "w/a", "x", "--ttl", "0s");
    assertEquals(bad.code, 2, bad.stderr);
    // The watchers may still be connecting: write until both have printed a put.
    const deadline = Date.now() + 30_000;
    let version = "";
    while (
      !human.lines.some((l) => l.startsWith("put w/a ")) ||
      !json.lines.some((l) => l.includes('"key":"w/a"'))
    ) {
      assert(Date.now() < deadline, `kv watch printed: ${human.lines.join("|")}`);
      const put = await kv("put", "w/a", "brief", "--ttl", "1s");
      assertEquals(put.code, 0, put.stderr);
      version = put.stdout.trim();
      await new Promise((r) => setTimeout(r, 200));
    }
    const spaced = await kv("put", "w/b c", "x y");
    assertEquals(spaced.code, 0, spaced.stderr);
    const spacedVersion = spaced.stdout.trim();
    while (
      !human.lines.some((l) => l.startsWith("del w/a ")) ||
      !human.lines.some((l) => l.startsWith('put "w/b c" ')) ||
      !json.lines.some((l) => l.includes('"event":"del"'))
    ) {
      assert(Date.now() < deadline, `kv watch printed: ${human.lines.join("|")}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    assert(human.lines.some((l) => l === `put w/a ${version} "brief"`), human.lines.join("|"));
    assert(
      human.lines.includes(`put "w/b c" ${spacedVersion} "x y"`),
      human.lines.join("|"),
    );
    const objects = json.lines.filter((l) => l !== "").map((l) => JSON.parse(l));
    assert(
      objects.some((o) =>
        o.event === "put" && o.key === "w/a" && o.version === version && o.value === "brief" &&
        typeof o.expiresAt === "string"
      ),
      json.lines.join("|"),
    );
    assert(
      objects.some((o) => o.event === "put" && o.key === "w/b c" && o.value === "x y"),
      json.lines.join("|"),
    );
    assert(objects.some((o) => o.event === "del" && o.key === "w/a"), json.lines.join("|"));
    // Each change carries its cursor, which --after resumes from.
    assert(objects.every((o) => typeof o.id === "string" && o.id !== ""), json.lines.join("|"));
    assertEquals((await kv("get", "w/a")).code, 1);
    // Ctrl-C: the human watcher says how to resume after the last event it printed (exit 130).
    await stopWatch(human, "SIGINT");
    assertEquals((await human.child.status).code, 130, human.errors.join("\n"));
    assertMatch(
      human.errors.join("\n"),
      /Stopped\. To resume after the last event received: deno task kv watch w\/ --after \S+/,
    );
    // The command printed resumes after the last event: a change made while none watched comes
    // (a watch from the present would miss it), nothing from before.
    const resumeLine = human.errors.find((l) => l.startsWith("Stopped."))!;
    assertEquals((await kv("put", "w/meanwhile", "m")).code, 0);
    const resumed = watch(["w/", "--after", resumeLine.split(" --after ")[1]!]);
    await until(
      () => `the resumed watch printed w/meanwhile: ${resumed.lines.join("|")}`,
      () => resumed.lines.some((l) => l.startsWith("put w/meanwhile ")),
      30_000,
      100,
    );
    const before = resumed.lines.filter((l) => l.includes("w/a") || l.includes("w/b c"));
    assertEquals(before, [], "events before the cursor came again");
  },
);

cliTest(
  "deno task kv watch that gives up prints the command that resumes it, which prints the changes made meanwhile; a refused cursor says to re-list",
  async ({ cluster, env, kv, watch }) => {
    const w = watch(["kw/"]);
    // The watcher may still be connecting: write until it has printed a put.
    const deadline = Date.now() + 30_000;
    while (!w.lines.some((l) => l.startsWith("put kw/a "))) {
      assert(Date.now() < deadline, `kv watch printed: ${w.lines.join("|")}`);
      const put = await kv("put", "kw/a", "seen");
      assertEquals(put.code, 0, put.stderr);
      await new Promise((r) => setTimeout(r, 200));
    }
    // The proxy goes away for good: after 10 failed connections (about 10 s) the watch gives up.
    await cluster.proxies.get("p1")!.stop();
    assertEquals((await w.child.status).code, 4, w.errors.join("\n"));
    await w.reading;
    const said = w.errors.join("\n");
    const resume =
      /To resume after the last event received: deno task kv (watch kw\/ --after [\w-]+)$/m
        .exec(said);
    assert(resume !== null, said);
    // A proxy again (another port, so given by RINGKV_URL as before); a change while none watched.
    const again = await cluster.startProxy("p1");
    env.RINGKV_URL = again.url;
    const missed = await kv("put", "kw/b", "meanwhile");
    assertEquals(missed.code, 0, missed.stderr);
    const resumed = watch(resume[1]!.split(" ").slice(1)); // "watch" is added
    await until(
      () =>
        `the resumed watch printed kw/b: ${resumed.lines.join("|")} ${resumed.errors.join("|")}`,
      () => resumed.lines.some((l) => l.startsWith("put kw/b ")),
      30_000,
      100,
    );
    assertEquals(resumed.lines.filter((l) => l.startsWith("put kw/a ")), [], "nothing twice");
    const refused = await kv("watch", "kw/", "--after", "not-a-cursor");
    assertEquals(refused.code, 6, refused.stderr);
    assertMatch(
      refused.stderr,
      /^Cannot watch from cursor "not-a-cursor": 400 .*re-list with deno task kv ls --prefix kw\/ and watch again without --after\n$/,
    );
  },
);
