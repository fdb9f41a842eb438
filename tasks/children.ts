/**
 * Starting and stopping ringkv processes from tasks: spawns `deno` (the running
 * binary), waits for the line announcing the listening URL, forwards the child's
 * output with its name in front, and stops it with SIGTERM, then SIGKILL.
 *
 * @module
 */

const LISTENING = /listening on (https?:\/\/\S+)/;
const START_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;

/**
 * The URL to call a server at, from the one it announced: a server bound to every address
 * (`0.0.0.0`, `::`) announces that wildcard, which is no address to connect to (Windows and
 * browsers refuse it); every process of a task runs on this machine, so loopback reaches it.
 */
export function reachableUrl(announced: string): string {
  const url = new URL(announced);
  if (url.hostname === "0.0.0.0") url.hostname = "127.0.0.1";
  else if (url.hostname === "[::]") url.hostname = "[::1]";
  else return announced;
  return url.origin;
}

/** A child that ended before it listened, with what it printed on stderr (its reason). */
export class ChildExitError extends Error {
  override name = "ChildExitError";
  /** Creates the error for child `name`, which exited with `code` after printing `stderr`. */
  constructor(name: string, readonly code: number, readonly stderr: readonly string[]) {
    super(`${name} exited with code ${code} before listening`);
  }
}

/** A running child process. */
export interface Child {
  name: string;
  /** Where to call it (loopback when it listens on every address). */
  url: string;
  pid: number;
  /** Resolves with the exit code when the process ends. */
  exited: Promise<number>;
  /** SIGTERM, then SIGKILL if it is still running after a few seconds. */
  stop(): Promise<void>;
}

/** Forwards lines from a stream, prefixed, until it ends; resolves the first URL announced. */
async function pump(
  stream: ReadableStream<Uint8Array>,
  prefix: string,
  write: (line: string) => void,
  onUrl: (url: string) => void,
): Promise<void> {
  const lines = stream.pipeThrough(new TextDecoderStream());
  let buffered = "";
  for await (const chunk of lines) {
    buffered += chunk;
    let newline;
    while ((newline = buffered.indexOf("\n")) !== -1) {
      const line = buffered.slice(0, newline);
      buffered = buffered.slice(newline + 1);
      const match = LISTENING.exec(line);
      if (match) onUrl(match[1]!);
      else write(`[${prefix}] ${line}`);
    }
  }
  if (buffered) write(`[${prefix}] ${buffered}`);
}

/** Spawns `deno <args>` and resolves once it prints `listening on <url>`. */
export async function startChild(
  name: string,
  args: string[],
  env: Record<string, string>,
): Promise<Child> {
  const process = new Deno.Command(Deno.execPath(), {
    args,
    env,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const ready = Promise.withResolvers<string>();
  const exited = process.status.then((s) => s.code);
  const stderr: string[] = [];
  pump(process.stdout, name, (l) => console.log(l), ready.resolve);
  const stderrDone = pump(process.stderr, name, (l) => {
    if (stderr.length < 20) stderr.push(l);
    console.error(l);
  }, ready.resolve);
  // Its last lines may arrive after its exit: the error carries them all.
  exited.then(async (code) => {
    await stderrDone.catch(() => {});
    ready.reject(new ChildExitError(name, code, stderr));
  });
  const timer = setTimeout(
    () => ready.reject(new Error(`${name} did not start within ${START_TIMEOUT_MS} ms`)),
    START_TIMEOUT_MS,
  );
  const stop = () => stopProcess(process, exited);
  try {
    const url = reachableUrl(await ready.promise);
    return { name, url, pid: process.pid, exited, stop };
  } catch (err) {
    await stop();
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Sends `signal`, then SIGKILL after `graceMs`, and resolves once the process has exited. */
export async function stopProcess(
  process: Deno.ChildProcess,
  exited: Promise<number>,
  signal: Deno.Signal = "SIGTERM",
  graceMs = STOP_TIMEOUT_MS,
): Promise<void> {
  try {
    process.kill(signal);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err; // already exited
  }
  const killer = setTimeout(() => {
    try {
      process.kill("SIGKILL");
    } catch { /* exited meanwhile */ }
  }, graceMs);
  await exited;
  clearTimeout(killer);
}
