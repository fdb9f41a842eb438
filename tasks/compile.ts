/**
 * `deno task compile`: standalone executables of the proxy, the node and the CLI in
 * `./dist` (`--out DIR` to change), by `deno compile` with each program's permissions.
 * `deno compile` needs the Deno runtime for standalone binaries (denort), downloaded
 * once from dl.deno.land or taken from `DENORT_BIN`; when it cannot get it, the task
 * says so and exits 3. Exit 1 for any other failure.
 *
 * @module
 */
import { join } from "@std/path";
import { NODE_V8_FLAGS } from "./node_settings.ts";

/** One executable to build. */
export interface Target {
  name: string;
  script: string;
  permissions: string[];
}

const ENV = "--allow-env=RINGKV_*";

/** The executables: the data directory is chosen at run time, so reads and writes are open. */
export const TARGETS: readonly Target[] = [
  {
    name: "ringkv-node",
    script: "node/main.ts",
    // Baked into the binary; MALLOC_MMAP_THRESHOLD_ (NODE_ENV) is the service's to set.
    permissions: ["--allow-net", "--allow-read", "--allow-write", ENV, NODE_V8_FLAGS],
  },
  {
    name: "ringkv-proxy",
    script: "proxy/main.ts",
    permissions: ["--allow-net", "--allow-read", "--allow-write", ENV],
  },
  { name: "ringkv-kv", script: "tasks/kv.ts", permissions: ["--allow-net", "--allow-read", ENV] },
];

/** Exit code when the standalone runtime cannot be had (no network, no DENORT_BIN). */
export const RUNTIME_UNAVAILABLE = 3;

/** Whether `deno compile` failed because it could not download the standalone runtime. */
export function isRuntimeDownloadFailure(stderr: string): boolean {
  return /denort/.test(stderr) &&
    /(error sending request|Setting up base binary|dns error|Connect)/.test(stderr);
}

async function compileOne(root: string, out: string, t: Target): Promise<[number, string]> {
  const { code, stderr } = await new Deno.Command(Deno.execPath(), {
    args: [
      "compile",
      "--no-prompt",
      ...t.permissions,
      "--output",
      join(out, t.name),
      join(root, t.script),
    ],
    cwd: root,
    stdout: "inherit",
    stderr: "piped",
  }).output();
  return [code, new TextDecoder().decode(stderr)];
}

async function main(): Promise<number> {
  const at = Deno.args.indexOf("--out");
  const root = new URL("..", import.meta.url).pathname;
  const out = at === -1 ? join(root, "dist") : Deno.args[at + 1] ?? "";
  if (out === "") {
    console.error("usage: deno task compile [--out DIR]");
    return 2;
  }
  await Deno.mkdir(out, { recursive: true });
  for (const target of TARGETS) {
    const [code, stderr] = await compileOne(root, out, target);
    if (code === 0) {
      console.log(`built ${join(out, target.name)}`);
      continue;
    }
    if (isRuntimeDownloadFailure(stderr)) {
      console.error(
        "Cannot compile: deno compile could not download the standalone runtime (denort) " +
          "from dl.deno.land (no network here?). Set DENORT_BIN to a denort binary of " +
          `Deno ${Deno.version.deno} to compile offline.`,
      );
      return RUNTIME_UNAVAILABLE;
    }
    console.error(`Cannot compile ${target.script}:\n${stderr}`);
    return 1;
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main());
