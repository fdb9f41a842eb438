/**
 * `deno task kv`: a command-line client of a ringkv proxy, with plain output for scripts
 * and exit codes they can rely on (0 ok, 1 not found: the key or node is absent, 2 usage or a
 * --url with no route, 3 precondition failed or conflict, 4 unavailable or server error, 5 auth,
 * 6 request refused). `add` and `remove`
 * show a progress bar on stderr until the rebalancing ends.
 *
 * @module
 */
import {
  checkRange,
  checkToken,
  closest,
  ConfigError,
  envNames,
  helpText,
  kebab,
  namingVariables,
  parseFlags,
} from "../shared/config.ts";
import { checkKey, keyToPath } from "../shared/keys.ts";
import { clipped, RingkvError } from "../shared/errors.ts";
import { DEFAULT_REQUEST_LIMITS } from "../shared/limits.ts";
import {
  call,
  CliError,
  EXIT,
  failed,
  type KvTarget,
  okJson,
  type Progress,
  progressWriter,
  ttlSeconds,
} from "./kv_client.ts";
import { watch } from "./kv_watch.ts";
import { resumeCommand } from "./kv_resume.ts";
import { keyLine, valueJson } from "./kv_output.ts";

const SPEC = {
  url: { type: "string", default: "http://127.0.0.1:8080", help: "the proxy" },
  token: {
    type: "string",
    env: "RINGKV_ADMIN_TOKEN",
    help: "admin token (none: ./data/admin-token, as deno task cluster writes it)",
    secret: true,
  },
  clientToken: { type: "string", help: "client token of /kv, if the proxy needs one" },
  prefix: { type: "string", default: "", help: "ls: only keys starting with it" },
  weight: { type: "string", default: "1", help: "add: the node's weight (> 0, <= 100)" },
  ifMatch: { type: "string", help: "put, del: only if the key has this version" },
  ifNoneMatch: { type: "bool", default: false, help: "put: only if the key does not exist" },
  contentType: { type: "string", help: "put: the value's Content-Type" },
  ttl: { type: "string", help: "put: expire after this long (30, 30s, 5m, 2h, 1d)" },
  json: {
    type: "bool",
    default: false,
    env: "RINGKV_KV_JSON",
    help: "get: the value with its version, type and expiry as JSON; ls: a JSON object per key; " +
      "watch: a JSON object per event",
  },
  after: {
    type: "string",
    help: 'watch: start after the event with this id (a --json line\'s "id", or the cursor a ' +
      "stopped watch printed)",
  },
  wait: { type: "bool", default: true, help: "add, remove: wait for the rebalancing (--no-wait)" },
  force: {
    type: "bool",
    default: false,
    // Not RINGKV_FORCE: that is the proxy's --force, and a shell that started a proxy with it
    // would make every kv remove a forced one.
    env: "RINGKV_KV_FORCE",
    help: "remove: the node is dead (copy from replicas), or insist on fewer nodes than replicas",
  },
  timeoutMs: {
    type: "int",
    default: 10_000,
    // Not RINGKV_TIMEOUT_MS: that is the proxy's node-call deadline (2 s), exported for a proxy.
    env: "RINGKV_KV_TIMEOUT_MS",
    help: "timeout of each call, in ms",
  },
} as const;

const USAGE = `usage: deno task kv <command> [args] [--url URL] [--token T]

commands:
  get KEY [--json]        print the value (exit 1 when absent); --json: {"key", "version",
                          "contentType", "value" or "valueBase64", "expiresAt"}
  put KEY [VALUE]         set (VALUE or stdin); prints the version; --ttl 30s expires it
  del KEY                 delete (exit 1 when absent)
  ls [--prefix P] [--json] keys in order, one per line (a KEY with spaces or odd characters
                          in "quotes", escaped as JSON); --json: one {"key"} object per line
  watch [PREFIX] [--json] print changes as they come: put KEY VERSION VALUE / del KEY VERSION
        [--after ID]      (a KEY with spaces or odd characters in "quotes", escaped as JSON);
                          --json: one object per event, {"event": "put"|"del", "id", "key", ...};
                          --after: start after the event with that id (a stopped watch prints
                          the command that resumes it)
  nodes                   id, url, state, keys of each node (tab-separated)
  add URL [--weight W]    add a node, wait for its keys to move
  remove ID [--force]     drain a node, then remove it (--force: it is dead for good, or
                          leave fewer nodes than replicas)
  status                  epoch, nodes, keys, copies, replicas, nodes up, rebalancing

after --, words are arguments even when they start with -- (kv put -- --key --value)

exit codes: 0 ok, 1 not found (the key, or remove's node, is absent), 2 usage (a --url
            with no route at its path too), 3 precondition failed or conflict,
            4 unavailable or server error, 5 auth, 6 request refused,
            130 stopped with Ctrl-C (watch prints the command that resumes it; add and
            remove stop waiting, the change goes on)`;

const COMMANDS = ["get", "put", "del", "ls", "watch", "nodes", "add", "remove", "status"];
/** What other stores call some commands: too far from ours for a "did you mean" by spelling. */
const OTHER_NAMES: Record<string, string> = { delete: "del", rm: "del", list: "ls", set: "put" };

/** The commands each command-specific flag is for; the others serve every command. */
const FLAG_COMMANDS: Partial<Record<keyof typeof SPEC, string[]>> = {
  prefix: ["ls"],
  weight: ["add"],
  ifMatch: ["put", "del"],
  ifNoneMatch: ["put"],
  contentType: ["put"],
  ttl: ["put"],
  json: ["get", "ls", "watch"],
  after: ["watch"],
  wait: ["add", "remove"],
  force: ["remove"],
};

/** A usage error for a flag given to a command it does nothing for (`kv get k --ttl 5s`). */
function checkFlagsFit(command: string, args: readonly string[]): void {
  const end = args.indexOf("--");
  for (const arg of end === -1 ? args : args.slice(0, end)) {
    if (!arg.startsWith("--")) continue;
    const typed = arg.slice(2).split("=")[0]!;
    const name = Object.keys(SPEC).find((n) => [kebab(n), `no-${kebab(n)}`].includes(typed));
    const fits = FLAG_COMMANDS[name as keyof typeof SPEC];
    if (fits !== undefined && !fits.includes(command)) {
      const hint = command === "watch" && name === "prefix" ? " (watch takes PREFIX, no --)" : "";
      throw new CliError(
        EXIT.usage,
        `Cannot use --${typed} with ${command}: it is for ${fits.join(", ")} only${hint}`,
      );
    }
  }
}

type Flags = NonNullable<ReturnType<typeof parse>>;
const enc = new TextEncoder();
const print = (text: string) => Deno.stdout.writeSync(enc.encode(text + "\n"));

function parse(args: string[]) {
  // Only RINGKV_* variables: the task is given --allow-env for just those.
  const env = Object.fromEntries(envNames(SPEC).map((name) => [name, Deno.env.get(name)]));
  const parsed = parseFlags(SPEC, args, env);
  if ("help" in parsed) return null;
  try {
    checkUrl(parsed.values.url);
    checkRange("timeout-ms", parsed.values.timeoutMs, 1);
  } catch (err) {
    throw namingVariables(err, parsed.fromEnv);
  }
  return parsed;
}

/**
 * A usage error unless `url` is http(s): fetch's error would read as the proxy being down. A
 * path is kept (a proxy behind a load balancer at `/ringkv`), but one ending in `/kv`, a query
 * or a fragment would be read into every key (`http://host:8080/kv`: `get a` asked for "kv/a").
 */
function checkUrl(url: string): void {
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  if (parsed?.protocol !== "http:" && parsed?.protocol !== "https:") {
    throw new ConfigError(`Cannot use --url ${url}: give the proxy's URL, http://host:port`);
  }
  const path = parsed.pathname.replace(/\/+$/, "");
  if (/(^|\/)kv$/.test(path) || parsed.search !== "" || parsed.hash !== "") {
    const base = parsed.origin + path.replace(/\/?kv$/, "");
    throw new ConfigError(
      `Cannot use --url ${url}: give the proxy's URL, ${base} (kv adds /kv/KEY)`,
    );
  }
}

/** The command's arguments: at least `min`, at most `max` (`kv get a b` is a mistake). */
function need(rest: string[], min: number, max: number, what: string): string[] {
  const given = rest.length - 1;
  if (given < min || given > max) {
    const extra = given > max ? `, not ${given} arguments` : "";
    throw new CliError(EXIT.usage, `${rest[0]} needs ${what}${extra} (see --help)`);
  }
  return rest.slice(1);
}

/** A key no URL can address (`.`, `..`) is refused here: fetch would resolve it away. */
function keyPath(key: string): string {
  if (key === "." || key === "..") {
    try {
      checkKey(key, Infinity);
    } catch (err) {
      if (!(err instanceof RingkvError)) throw err;
      throw new CliError(EXIT.usage, `${err.message} (${err.code})`);
    }
  }
  const path = `/kv/${keyToPath(key)}`;
  const max = DEFAULT_REQUEST_LIMITS.maxUrlBytes; // fixed: no flag changes a proxy's
  if (path.length > max) {
    throw new CliError(
      EXIT.refused,
      `Cannot use key ${named(key)}: its URL is ${path.length} bytes, a proxy takes at most ${max}`,
    );
  }
  return path;
}

/** The key quoted for a message; a long one cut (a 20 kB key made a 20 kB error line). */
const named = (key: string) => clipped(key, { quoted: true });

async function get(t: KvTarget, f: Flags, key: string): Promise<void> {
  const res = await call(t, keyPath(key));
  if (!res.ok) await failed(res, `Cannot get ${named(key)}`);
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (f.values.json) print(JSON.stringify(valueJson(key, res.headers, bytes)));
  else {
    // write() may take part of a large value; the rest is written until all is out.
    for (let done = 0; done < bytes.length;) done += await Deno.stdout.write(bytes.subarray(done));
  }
}

async function readStdin(): Promise<ArrayBuffer> {
  return await new Response(Deno.stdin.readable).arrayBuffer();
}

async function put(t: KvTarget, f: Flags, key: string, value?: string): Promise<void> {
  const headers: Record<string, string> = {};
  if (f.values.ifMatch) headers["if-match"] = `"${f.values.ifMatch.replace(/"/g, "")}"`;
  if (f.values.ifNoneMatch) headers["if-none-match"] = "*";
  if (f.values.contentType) headers["content-type"] = f.values.contentType;
  const ttl = f.values.ttl === undefined ? "" : `?ttl=${ttlSeconds(f.values.ttl)}`;
  const path = keyPath(key) + ttl; // before stdin is read
  const body = value ?? await readStdin();
  const res = await call(t, path, { method: "PUT", body, headers });
  print((await okJson<{ version: string }>(res, `Cannot put ${named(key)}`)).version);
}

async function del(t: KvTarget, f: Flags, key: string): Promise<void> {
  const headers: Record<string, string> = {};
  if (f.values.ifMatch) headers["if-match"] = `"${f.values.ifMatch.replace(/"/g, "")}"`;
  const res = await call(t, keyPath(key), { method: "DELETE", headers });
  if (!res.ok) await failed(res, `Cannot delete ${named(key)}`);
  await res.body?.cancel();
}

async function ls(t: KvTarget, prefix: string, json: boolean): Promise<void> {
  let cursor: string | null = null;
  for (let page = 0; page < 1_000_000; page++) {
    const q = new URLSearchParams({ prefix, limit: "1000" });
    if (cursor !== null) q.set("cursor", cursor);
    const body = await okJson<{ keys: string[]; cursor: string | null }>(
      await call(t, `/kv?${q}`),
      "Cannot list keys",
    );
    if (body.keys.length > 0) print(body.keys.map((k) => keyLine(k, json)).join("\n"));
    cursor = body.cursor;
    if (cursor === null) return;
  }
}

interface ClusterView {
  epoch: number;
  replicas: number;
  nodesUp: number;
  belowReplicas: boolean;
  keys: number | null;
  copies: number;
  nodes: { id: string; url: string; state: string; keys: number | null }[];
  rebalancing: (Progress & { kind: string; nodeId: string; error?: string }) | null;
}

const cluster = async (t: KvTarget) =>
  await okJson<ClusterView>(await call(t, "/cluster", { admin: true }), "Cannot read /cluster");

function printNodes(view: ClusterView): void {
  for (const n of view.nodes) print([n.id, n.url, n.state, n.keys ?? "-"].join("\t"));
}

async function status(t: KvTarget): Promise<void> {
  const view = await cluster(t);
  const rb = view.rebalancing;
  print(`epoch\t${view.epoch}`);
  print(`nodes\t${view.nodes.length}`);
  print(`keys\t${view.keys ?? "?"}`);
  print(`copies\t${view.copies}`);
  print(`replicas\t${view.replicas}`);
  print(
    `nodes up\t${view.nodesUp}${
      view.belowReplicas
        ? ` (fewer than ${view.replicas} replicas: keys have fewer copies than promised)`
        : ""
    }`,
  );
  print(
    rb === null
      ? "rebalancing\tnone"
      : `rebalancing\t${rb.kind} ${rb.nodeId} ${rb.phase} ${rb.movedKeys}/${
        rb.totalKeys ?? "?"
      } keys`,
  );
}

/**
 * Polls `/cluster` until no rebalancing runs, drawing the progress bar. Ctrl-C stops the
 * waiting, not the change (exit 130): it says so, as `kv watch` says how to resume (QA: it
 * exited without a word while the add went on).
 */
async function follow(t: KvTarget, what: string): Promise<void> {
  const bar = progressWriter(Deno.stderr);
  let reported: string | undefined; // a retried error is said once, not at every poll
  // Ctrl-C ends the wait at once, also in the middle of a poll of a slow proxy (review).
  const stopped = Promise.withResolvers<never>();
  stopped.promise.catch(() => {});
  const interrupted = () =>
    stopped.reject(
      new CliError(
        EXIT.interrupted,
        `Stopped waiting; ${what} goes on: \`deno task kv status\` shows its progress`,
      ),
    );
  const orStop = <T>(p: Promise<T>) => Promise.race([p, stopped.promise]);
  Deno.addSignalListener("SIGINT", interrupted);
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    for (let polls = 0; polls < 360_000; polls++) {
      const view = await orStop(cluster(t).catch(goesOn));
      if (view.rebalancing === null) {
        bar.done(); // the bar at 100 % and its line closed before the table
        return printNodes(view);
      }
      bar.update(view.rebalancing);
      const error = view.rebalancing.error;
      if (error && error !== reported) {
        console.error(`(the rebalancing reports: ${error}; it is retried)`);
      }
      reported = error;
      await orStop(new Promise((r) => timer = setTimeout(r, 200)));
    }
    throw new CliError(EXIT.unavailable, "Gave up waiting for the rebalancing");
  } finally {
    clearTimeout(timer);
    Deno.removeSignalListener("SIGINT", interrupted);
    bar.end();
  }
}

/** A proxy lost while following: the change it accepted goes on without this command. */
function goesOn(err: unknown): never {
  if (!(err instanceof CliError) || err.code !== EXIT.unavailable) throw err;
  throw new CliError(
    err.code,
    `${err.message}. The rebalancing it started goes on without this command; ` +
      "`deno task kv status` shows it once a proxy answers",
  );
}

/**
 * Runs `watching` with a signal that Ctrl-C (SIGINT) aborts: the watch then says how to resume
 * after the last event it printed (exit 130) instead of dying without a word.
 */
async function watchUntilInterrupted(watching: (stop: AbortSignal) => Promise<void>) {
  const stop = new AbortController();
  const interrupted = () => stop.abort();
  Deno.addSignalListener("SIGINT", interrupted);
  try {
    await watching(stop.signal);
  } finally {
    Deno.removeSignalListener("SIGINT", interrupted);
  }
}

/** `kv add` and `kv remove` wait this many times `--timeout-ms` for the proxy's answer. */
const CHANGE_CALL_FACTOR = 6;

async function change(
  t: KvTarget,
  f: Flags,
  method: string,
  path: string,
  body?: unknown,
  removing?: string,
  running: ClusterView["rebalancing"] = null,
) {
  const json = body === undefined ? undefined : JSON.stringify(body);
  const verb = method === "POST" ? "add" : "remove";
  // The proxy answers once the change is chosen and pushed: with a member that hangs, each
  // of its steps waits a node-call timeout (review: 12.7 s, past kv's 10 s).
  const patient = { ...t, timeoutMs: t.timeoutMs * CHANGE_CALL_FACTOR };
  const res = await call(patient, path, { method, admin: true, body: json }).catch((err) => {
    if (!(err instanceof CliError) || err.code !== EXIT.unavailable) throw err;
    throw new CliError(
      err.code,
      `${err.message}. The proxy may have made the change: \`deno task kv status\` shows ` +
        `whether a rebalancing runs (a second \`kv ${verb}\` of the node answers 409 while it does)`,
    );
  });
  if (!res.ok) await failed(res, `Cannot ${verb} the node`);
  const view = await res.json().catch(() => null) as { rebalancing?: unknown } | null;
  // A removal starts a rebalancing; only the removal of the node being added (its add
  // cancelled) leaves none.
  if (removing !== undefined && view?.rebalancing === null) {
    console.error(`The add of node ${named(removing)} was cancelled.`);
  }
  if (removing !== undefined && running !== null && running.nodeId !== removing) {
    const what = `The ${running.kind === "add" ? "add" : "removal"} of node ${
      named(running.nodeId)
    }`;
    const how = running.phase === "copying" ? "cancelled" : "finished early";
    const again = running.phase === "copying"
      ? `; ask for it again once this removal ends (\`deno task kv status\` shows none running)`
      : "";
    console.error(
      `${what} was ${how} so that node ${named(removing)} is removed for good${again}.`,
    );
  }
  const started = view?.rebalancing as { kind?: string; nodeId?: string } | null | undefined;
  const what = started?.nodeId === undefined
    ? "the change"
    : `the ${started.kind === "add" ? "add" : "removal"} of node ${named(started.nodeId)}`;
  if (f.values.wait) return await follow(t, what);
  // --no-wait: say what was started, so a success is not silence (review).
  if (started?.nodeId !== undefined) {
    console.error(
      `${what[0]!.toUpperCase()}${what.slice(1)} runs; \`deno task kv status\` shows its progress.`,
    );
  }
}

async function run(f: Flags, t: KvTarget, argv: readonly string[]): Promise<void> {
  const [command, ...rest] = f.rest;
  if (COMMANDS.includes(command!)) checkFlagsFit(command!, argv);
  const args = (n: number, what: string) => need(f.rest, n, n, what);
  switch (command) {
    case "get":
      return await get(t, f, args(1, "a KEY")[0]!);
    case "put": {
      const [key, value] = need(f.rest, 1, 2, "a KEY and a VALUE (or stdin)");
      return await put(t, f, key!, value);
    }
    case "del":
      return await del(t, f, args(1, "a KEY")[0]!);
    case "ls":
      if (rest.length > 0) throw new CliError(EXIT.usage, "ls takes --prefix P, no argument");
      return await ls(t, f.values.prefix, f.values.json);
    case "watch":
      if (rest.length > 1) throw new CliError(EXIT.usage, "watch takes one PREFIX at most");
      return await watchUntilInterrupted((stop) =>
        watch(t, rest[0] ?? "", print, (line) => console.error(line), {
          json: f.values.json,
          after: afterOf(f.values.after),
          resume: (cursor) => resumeCommand(argv, cursor),
          stop,
        })
      );
    case "nodes":
      args(0, "no argument");
      return printNodes(await cluster(t));
    case "status":
      args(0, "no argument");
      return await status(t);
    case "add": {
      const url = args(1, "a node URL")[0]!;
      return await change(t, f, "POST", "/cluster/nodes", {
        url,
        weight: weightOf(f.values.weight),
      });
    }
    case "remove": {
      const id = args(1, "a node ID")[0]!;
      const force = f.values.force ? "?force=true" : "";
      const path = `/cluster/nodes/${encodeURIComponent(id)}${force}`;
      // A forced removal ends another node's running change first: say so (review).
      // Unread (say a wrong token), the DELETE's own answer says what is wrong.
      const before = f.values.force ? (await cluster(t).catch(() => null))?.rebalancing : null;
      return await change(t, f, "DELETE", path, undefined, id, before);
    }
    default: {
      const near = OTHER_NAMES[command ?? ""] ?? closest(command ?? "", COMMANDS);
      const hint = near === undefined ? "" : `; did you mean ${near}?`;
      throw new CliError(EXIT.usage, `Unknown command "${command ?? ""}"${hint} (see --help)`);
    }
  }
}

/** `--after` as a header can carry it: printable ASCII, as every cursor of the proxy is. */
function afterOf(text: string | undefined): string | undefined {
  if (text === undefined) return undefined;
  if (!/^[\x21-\x7e]+$/.test(text)) {
    throw new CliError(
      EXIT.usage,
      `Cannot use --after ${clipped(text, { quoted: true })}: give the id of an event ` +
        '(a --json line\'s "id"), printable ASCII without spaces',
    );
  }
  return text;
}

/** `--weight` as the admin API takes it: a number > 0 and <= 100, fractions too. */
function weightOf(text: string): number {
  const weight = Number(text);
  if (text.trim() === "" || !(weight > 0 && weight <= 100)) {
    throw new CliError(
      EXIT.usage,
      `Cannot use --weight ${text}: it must be a number > 0 and <= 100`,
    );
  }
  return weight;
}

async function adminToken(given: string | undefined): Promise<string | undefined> {
  if (given) {
    checkToken("--token (or RINGKV_ADMIN_TOKEN)", given);
    return given;
  }
  let token: string;
  try {
    token = (await Deno.readTextFile("./data/admin-token")).trim();
  } catch (err) {
    if (err instanceof Deno.errors.NotFound || err instanceof Deno.errors.NotCapable) {
      return undefined;
    }
    throw err;
  }
  // A hand-edited file: say so rather than let every admin call answer 401.
  checkToken("the admin token in ./data/admin-token", token);
  return token;
}

/** The client token, checked as the proxy checks its own: a usage error, not a 401 per call. */
function clientToken(given: string | undefined): string | undefined {
  if (given) checkToken("--client-token (or RINGKV_CLIENT_TOKEN)", given);
  return given;
}

async function main(): Promise<number> {
  try {
    const f = parse(Deno.args);
    if (f === null) {
      console.log(`${USAGE}\n\n${helpText("", SPEC).trimStart()}`);
      return EXIT.ok;
    }
    if (f.rest.length === 0) {
      console.error(USAGE);
      return EXIT.usage;
    }
    const target: KvTarget = {
      url: f.values.url.replace(/\/+$/, ""),
      adminToken: await adminToken(f.values.token),
      clientToken: clientToken(f.values.clientToken),
      timeoutMs: f.values.timeoutMs,
    };
    await run(f, target, Deno.args);
    return EXIT.ok;
  } catch (err) {
    // The reader went away (`kv ls | head`): what it read is right, the rest is not wanted.
    if (err instanceof Deno.errors.BrokenPipe) return EXIT.ok;
    if (err instanceof ConfigError) {
      console.error(err.message);
      return EXIT.usage;
    }
    if (!(err instanceof CliError)) throw err;
    console.error(err.message);
    return err.code;
  }
}

if (import.meta.main) Deno.exit(await main());
