/**
 * The docs say what the programs do (issue 14): the README lists every option of
 * `deno task cluster --help`, security.md's admin-token row names every route the OpenAPI
 * description puts behind the admin token, and api.md's version examples have the shape
 * of the versions a replicated cluster really returns (a proxy's id as the writer).
 */
import { assert, assertEquals, assertMatch } from "@std/assert";
import { OPENAPI } from "../proxy/http/openapi.ts";
import { TestCluster } from "./helpers/process_cluster.ts";
import { runToEnd } from "./helpers/process.ts";

const read = (path: string) => Deno.readTextFile(new URL(`../${path}`, import.meta.url));

Deno.test("the README lists every option of deno task cluster", async () => {
  const help = await runToEnd({
    script: new URL("../tasks/cluster.ts", import.meta.url),
    args: ["--help"],
  });
  assertEquals(help.code, 0, help.stderr);
  const flags = [...help.stdout.matchAll(/^ {2}(--[a-z-]+)/gm)].map((m) => m[1]!);
  assert(flags.includes("--node-port") && flags.includes("--replicas"), help.stdout);
  const readme = await read("README.md");
  const missing = flags.filter((f) => f !== "--help" && !readme.includes(`\`${f}\``));
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

Deno.test("api.md's versions have the shape of a replicated cluster's: a proxy id as writer", async () => {
  const cluster = await TestCluster.create();
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
