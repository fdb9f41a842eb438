/**
 * TLS files an operator gets wrong, on real processes: a key that does not match its
 * certificate, a file that is no PEM certificate or key, a missing file, a directory, a
 * `--ca` that cannot be used. Each start fails with one line naming the flag and the file,
 * exit 1, and nothing written in the data directory.
 */
import { assertEquals, assertMatch } from "@std/assert";
import { join } from "@std/path";
import { runToEnd } from "./helpers/process.ts";
import { selfSigned } from "./helpers/self_signed.ts";

const NODE = new URL("../node/main.ts", import.meta.url);
const PROXY = new URL("../proxy/main.ts", import.meta.url);

/** Runs `script` with `args` and checks a one-line refusal matching `message`, exit 1. */
async function refused(script: URL, dir: string, args: string[], message: RegExp) {
  const data = join(dir, "data");
  const run = await runToEnd({
    script,
    args: ["--port", "0", "--data", data, ...args],
    env: { RINGKV_CLUSTER_SECRET: "s3cret" },
    timeoutMs: 20_000,
  });
  const what = `${script.pathname.split("/").at(-2)} ${args.join(" ")}`;
  assertEquals(run.code, 1, `${what}: ${run.stderr}`);
  const lines = run.stderr.trim().split("\n");
  assertEquals(lines.length, 1, `${what} prints one line: ${run.stderr}`);
  assertMatch(lines[0]!, message, what);
  assertEquals(run.stdout, "", what);
  const written = await Deno.stat(data).then(() => true, () => false);
  assertEquals(written, false, `${what} wrote ${data}`);
}

Deno.test("a node or proxy given TLS files it cannot use says which, in one line, exit 1", async () => {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-tls-mistakes-" });
  try {
    await Deno.mkdir(join(dir, "a"));
    await Deno.mkdir(join(dir, "b"));
    const a = await selfSigned(join(dir, "a"));
    const b = await selfSigned(join(dir, "b"));
    if (a === undefined || b === undefined) {
      console.warn("SKIPPED: openssl is not installed, so no certificate can be made");
      return;
    }
    const garbage = join(dir, "garbage.pem");
    await Deno.writeTextFile(garbage, "not a pem file\n");
    const missing = join(dir, "missing.pem");
    const cases: [string[], RegExp][] = [
      [["--cert", a.cert, "--key", b.key], /^Cannot serve https: the --key .* does not match/],
      [["--cert", garbage, "--key", a.key], /^Cannot use --cert .*garbage\.pem: .*no PEM cert/],
      [["--cert", a.key, "--key", a.cert], /^Cannot use --cert .*key\.pem: .*no PEM certificate/],
      [["--cert", a.cert, "--key", garbage], /^Cannot use --key .*garbage\.pem: .*no PEM private/],
      [
        ["--cert", missing, "--key", a.key],
        /^Cannot read --cert .*missing\.pem: it does not exist/,
      ],
      [["--cert", dir, "--key", a.key], /^Cannot read --cert .*: it is a directory/],
    ];
    for (const [args, message] of cases) {
      await refused(NODE, dir, args, new RegExp(`^ringkv node: ${message.source.slice(1)}`));
      await refused(PROXY, dir, ["--nodes", "https://127.0.0.1:1", ...args], message);
    }
    const nodes = ["--nodes", "https://127.0.0.1:1"];
    await refused(PROXY, dir, [...nodes, "--ca", missing], /^Cannot read --ca .*: it does not/);
    await refused(PROXY, dir, [...nodes, "--ca", garbage], /^Cannot use --ca .*: .*no PEM cert/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
