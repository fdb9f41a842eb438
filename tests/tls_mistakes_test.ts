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

/** Whether openssl can make this test's certificates (the test is ignored, and says so, if not). */
function hasOpenssl(): boolean {
  try {
    return new Deno.Command("openssl", { args: ["version"], stdout: "null" }).outputSync().success;
  } catch (err) {
    if (err instanceof Deno.errors.NotFound) return false;
    throw err;
  }
}

Deno.test({
  name: "a node or proxy given TLS files it cannot use says which, in one line, exit 1",
  ignore: !hasOpenssl(),
  fn: tlsMistakes,
});

async function tlsMistakes() {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-tls-mistakes-" });
  try {
    await Deno.mkdir(join(dir, "a"));
    await Deno.mkdir(join(dir, "b"));
    const a = await selfSigned(join(dir, "a"));
    const b = await selfSigned(join(dir, "b"));
    if (a === undefined || b === undefined) throw new Error("openssl made no certificate");
    const garbage = join(dir, "garbage.pem");
    await Deno.writeTextFile(garbage, "not a pem file\n");
    // The right PEM lines around a body no parser can read (found by review: a stack trace).
    const badCert = join(dir, "bad-cert.pem");
    await Deno.writeTextFile(
      badCert,
      "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    );
    const badKey = join(dir, "bad-key.pem");
    await Deno.writeTextFile(
      badKey,
      "-----BEGIN PRIVATE KEY-----\nMIIB\n-----END PRIVATE KEY-----\n",
    );
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
      [["--cert", badCert, "--key", a.key], /^Cannot serve https with --cert .*bad-cert\.pem/],
      [["--cert", a.cert, "--key", badKey], /^Cannot serve https with --cert .* --key .*bad-key/],
    ];
    for (const [args, message] of cases) {
      await refused(NODE, dir, args, new RegExp(`^ringkv node: ${message.source.slice(1)}`));
      await refused(PROXY, dir, ["--nodes", "https://127.0.0.1:1", ...args], message);
    }
    const nodes = ["--nodes", "https://127.0.0.1:1"];
    await refused(PROXY, dir, [...nodes, "--ca", missing], /^Cannot read --ca .*: it does not/);
    await refused(PROXY, dir, [...nodes, "--ca", garbage], /^Cannot use --ca .*: .*no PEM cert/);
    await refused(PROXY, dir, [...nodes, "--ca", badCert], /^Cannot use --ca .*bad-cert\.pem: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
