/**
 * `deno task compile`: standalone executables of the proxy, the node and the CLI in
 * `./dist` (`--out DIR` to change), by `deno compile` with each program's permissions.
 * `deno compile` needs the Deno runtime for standalone binaries (denort), downloaded
 * once from dl.deno.land or taken from `DENORT_BIN`; when it cannot get it, the task
 * says so and exits 3. Exit 2 for a usage error (an unknown option, say), 1 for any other
 * failure. It runs `deno compile`, which may write anywhere, so its own write permission is
 * not narrowed to `./dist` either: that only made every other `--out` fail.
 *
 * @module
 */
import { join } from "@std/path";
import { NODE_V8_FLAGS } from "./node_settings.ts";
import { ALL_ACCESS_WHY, needsAllAccess } from "../shared/all_access_paths.ts";
import { ConfigError, envNames, helpText, parseFlags } from "../shared/config.ts";

/** One executable to build. */
export interface CompileTarget {
  name: string;
  script: string;
  permissions: string[];
}

const ENV = "--allow-env=RINGKV_*";

/** The executables: the data directory is chosen at run time, so reads and writes are open. */
export const TARGETS: readonly CompileTarget[] = [
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

async function compileOne(root: string, out: string, t: CompileTarget): Promise<[number, string]> {
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

const SPEC = {
  out: {
    type: "string",
    env: "RINGKV_COMPILE_OUT",
    help: "directory for the executables (default: dist)",
  },
} as const;

const USAGE = "usage: deno task compile [--out DIR]";

/** The output directory from the command line, or a ConfigError; undefined for --help. */
function readOut(root: string): string | undefined {
  const env = Object.fromEntries(envNames(SPEC).map((name) => [name, Deno.env.get(name)]));
  const parsed = parseFlags(SPEC, Deno.args, env);
  if ("help" in parsed) return undefined;
  if (parsed.rest.length > 0) {
    throw new ConfigError(
      `Cannot read "${parsed.rest[0]}": deno task compile takes only --out DIR (see --help)`,
    );
  }
  const out = parsed.values.out ?? join(root, "dist");
  if (out === "") throw new ConfigError("Cannot build into an empty --out: give a directory");
  return out;
}

/** Creates `out`, or says in one line why it cannot be (a file there, no permission...). */
async function makeOutDir(out: string): Promise<boolean> {
  try {
    await Deno.mkdir(out, { recursive: true });
    return true;
  } catch (err) {
    let what;
    if (err instanceof Deno.errors.AlreadyExists) what = "a file is in its place";
    else if (needsAllAccess(err)) what = ALL_ACCESS_WHY;
    else if (
      err instanceof Deno.errors.PermissionDenied || err instanceof Deno.errors.NotADirectory
    ) what = err.message;
    else throw err;
    console.error(`Cannot build into ${out}: ${what}; give --out another directory`);
    return false;
  }
}

async function main(): Promise<number> {
  const root = new URL("..", import.meta.url).pathname;
  let out;
  try {
    out = readOut(root);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`${err.message}\n${USAGE}`);
    return 2;
  }
  if (out === undefined) {
    console.log(helpText(USAGE, SPEC));
    return 0;
  }
  if (!(await makeOutDir(out))) return 1;
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
