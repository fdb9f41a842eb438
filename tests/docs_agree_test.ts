/**
 * The docs say what the programs do (issue 14): the README lists every option of
 * `deno task cluster --help`, every option and repository file the docs name exists,
 * security.md's admin-token row names every route the OpenAPI description puts behind the
 * admin token, and api.md's version examples have the shape of the versions a replicated
 * cluster really returns (a proxy's id as the writer).
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { OPENAPI } from "../proxy/http/openapi.ts";
import { ERROR_STATUS } from "../shared/errors.ts";
import { parseNodeConfig } from "../node/node_config.ts";
import { parseProxyConfig } from "../proxy/proxy_config.ts";
import { ProcessCluster } from "./helpers/process_cluster.ts";
import { runToEnd } from "./helpers/process.ts";

const read = (path: string) => Deno.readTextFile(new URL(`../${path}`, import.meta.url));

/** The options a `--help` text lists, one per line as `  --name`. */
const helpFlags = (help: string) => [...help.matchAll(/^ {2}(--[a-z-]+)/gm)].map((m) => m[1]!);

/** README.md and docs/*.md, but the performance logs (they name what was, at the time). */
async function docPaths(): Promise<string[]> {
  const entries = await Array.fromAsync(Deno.readDir(new URL("../docs", import.meta.url)));
  return ["README.md", ...entries.map((e) => `docs/${e.name}`)]
    .filter((p) => p.endsWith(".md") && !p.includes("performance"));
}

/** The options of `deno task <script> --help` (a task that is no pure parser). */
async function taskFlags(script: string): Promise<string[]> {
  const help = await runToEnd({
    script: new URL(`../tasks/${script}`, import.meta.url),
    args: ["--help"],
  });
  assertEquals(help.code, 0, help.stderr);
  return helpFlags(help.stdout);
}

Deno.test("the README lists every option of deno task cluster", async () => {
  const flags = await taskFlags("cluster.ts");
  assert(flags.includes("--node-port") && flags.includes("--replicas"), flags.join(" "));
  const readme = await read("README.md");
  const missing = flags.filter((f) => f !== "--help" && !readme.includes(`\`${f}\``));
  assertEquals(missing, []);
});

/** Options the docs name that no `--help` lists: where each is read. */
const TASK_ONLY_FLAGS: Record<string, string> = {
  "--runs": "tasks/torture_net.ts",
};
/** Options security.md says went with ringkv's own HTTP server. */
const GONE_FLAGS = ["--header-timeout-ms", "--max-connections"];

Deno.test("every option the docs name in code spans exists (or is said to be gone)", async () => {
  const help = (parsed: { help: string } | object) => "help" in parsed ? parsed.help : "";
  const known = new Set([
    ...helpFlags(help(parseNodeConfig(["--help"], {}))),
    ...helpFlags(help(parseProxyConfig(["--help"], {}))),
    ...await taskFlags("cluster.ts"),
    ...await taskFlags("kv.ts"),
    ...await taskFlags("compile.ts"),
  ]);
  assert(known.has("--snapshot-every-bytes") && known.has("--anti-entropy-ms"), [...known].join());
  for (const [flag, file] of Object.entries(TASK_ONLY_FLAGS)) {
    assert((await read(file)).includes(`"${flag}"`), `${file} reads ${flag}`);
  }
  assertEquals(GONE_FLAGS.filter((f) => known.has(f)), []);
  const docs = await docPaths();
  const unknown: string[] = [];
  for (const path of docs) {
    for (const [, flag] of (await read(path)).matchAll(/`(--[a-z][a-z0-9-]*)/g)) {
      const deno = flag!.startsWith("--allow-") || flag === "--v8-flags";
      const negated = flag!.startsWith("--no-") && known.has(`--${flag!.slice(5)}`);
      const named = known.has(flag!) || flag! in TASK_ONLY_FLAGS || GONE_FLAGS.includes(flag!);
      if (!deno && !negated && !named) unknown.push(`${path}: ${flag}`);
    }
  }
  assert(docs.includes("docs/security.md"), docs.join());
  assertEquals(unknown, []);
});

Deno.test("every repository file the docs name exists", async () => {
  const docs = await docPaths();
  const named = /\b(?:node|proxy|shared|tasks|tests|docs)\/[\w./-]*\.(?:ts|md|json)\b/g;
  const missing: string[] = [];
  let count = 0;
  for (const path of docs) {
    for (const [file] of (await read(path)).matchAll(named)) {
      count++;
      const there = await Deno.stat(new URL(`../${file}`, import.meta.url)).then(
        () => true,
        (err) => {
          if (!(err instanceof Deno.errors.NotFound)) throw err;
          return false;
        },
      );
      if (!there) missing.push(`${path}: ${file}`);
    }
  }
  assert(count > 50, `the docs name ${count} files`);
  assertEquals(missing, []);
});

Deno.test("security.md's admin token row names every admin route of the OpenAPI description", async () => {
  const row = (await read("docs/security.md")).split("\n").find((l) =>
    l.startsWith("| admin token")
  );
  assert(row !== undefined, "the token table has an admin token row");
  const adminPaths = Object.entries(OPENAPI.paths)
    .filter(([, item]) => Object.values(item).some((op) => (op as { security?: unknown }).security))
    .map(([path]) => path.replace("/{id}", ""));
  assert(adminPaths.includes("/metrics") && adminPaths.includes("/ring/owners"));
  const missing = adminPaths.filter((p) => !row.includes(`\`${p}\``) && !row.includes(`\`${p}[`));
  assertEquals(missing, []);
});

/** Codes api.md's table leaves out: a node's answers to the proxy (internal-api.md), or unused. */
const NOT_PUBLIC_CODES = ["stale_epoch", "node_recovering", "timeout", "unsupported_media_type"];

Deno.test("api.md's error table lists every public error code with its status, and no other", async () => {
  const api = await read("docs/api.md");
  const table = api.slice(api.indexOf("## Errors"));
  const rows = [...table.matchAll(/^\| (\d{3}) +\| `([a-z_]+)` +\|/gm)].map((m) => [m[2], +m[1]!]);
  const codes = Object.entries(ERROR_STATUS).filter(([code]) => !NOT_PUBLIC_CODES.includes(code));
  assertEquals(Object.fromEntries(rows), Object.fromEntries(codes));
});

Deno.test("api.md's versions have the shape of a replicated cluster's: a proxy id as writer", async () => {
  const cluster = await ProcessCluster.create();
  try {
    for (const id of ["n1", "n2"]) await cluster.startNode(id);
    const urls = [...cluster.nodes.values()].map((n) => n.url).join(",");
    const proxy = await cluster.startProxy("p1", ["--nodes", urls, "--replicas", "2"]);
    const res = await fetch(`${proxy.url}/kv/docs`, { method: "PUT", body: "x" });
    const { version } = await res.json();
    const shape = /^[0-9a-f]{12}-[0-9a-f]{4}-p[0-9a-f]{12}$/;
    assertMatch(version, shape);
    const api = await read("docs/api.md");
    const examples = [...api.matchAll(/"version": "([^".]+)"/g)].map((m) => m[1]!);
    assert(examples.length >= 3, "api.md has version examples");
    for (const v of examples) assertMatch(v, shape);
    assertMatch(api, /`0192a3b4c5d6-0000-p3f9a1c0b7e2d`/);
  } finally {
    await cluster.stop();
  }
});
