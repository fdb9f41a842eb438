/**
 * Real ringkv processes for end-to-end tests: spawn a script with the running `deno`
 * binary, wait for the line `... listening on http://host:port`, keep every output line,
 * and stop it (SIGTERM, then SIGKILL after a deadline), always awaiting its exit.
 *
 * @module
 */

const LISTENING = /listening on (https?:\/\/[^\s/]+)/;
const START_TIMEOUT_MS = 30_000;
const STOP_TIMEOUT_MS = 5_000;
const MAX_LINES = 10_000;

/** How to start a server process. */
export interface SpawnOptions {
  /** Path of the script to run (e.g. `node/main.ts`). */
  script: string | URL;
  /** Arguments after the script. */
  args?: string[];
  /** Extra environment variables (added to this process's). */
  env?: Record<string, string>;
  cwd?: string;
  /** `deno` arguments before the script; default `run -A`. */
  denoArgs?: string[];
  /** A command that runs deno, e.g. `["prlimit", "--nofile=64"]` (default: deno itself). */
  wrapper?: string[];
  /** How long to wait for the listening line. */
  startTimeoutMs?: number;
}

/** A running server process. */
export interface ServerProcess {
  /** `http://host:port`, as the process announced it. */
  url: string;
  port: number;
  pid: number;
  /** Every line printed so far on stdout (and stderr, in `stderrLines`). */
  stdoutLines: string[];
  stderrLines: string[];
  /** Resolves with the exit status once the process ends. */
  status: Promise<Deno.CommandStatus>;
  /** SIGTERM, then SIGKILL past the deadline; resolves with the exit status. */
  stop(timeoutMs?: number): Promise<Deno.CommandStatus>;
  /** Sends a signal (e.g. SIGKILL) and resolves with the exit status. */
  kill(signal?: Deno.Signal): Promise<Deno.CommandStatus>;
}

/** What a process that ran to its end printed. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

function scriptPath(script: string | URL): string {
  return script instanceof URL ? script.pathname : script;
}

/** Collects lines of a stream into `lines`, calling `onLine` for each. */
async function collect(
  stream: ReadableStream<Uint8Array>,
  lines: string[],
  onLine: (line: string) => void,
): Promise<void> {
  let rest = "";
  const push = (line: string) => {
    if (lines.length < MAX_LINES) lines.push(line);
    onLine(line);
  };
  for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
    const parts = (rest + chunk).split("\n");
    rest = parts.pop()!;
    parts.forEach(push);
  }
  if (rest !== "") push(rest);
}

function sendSignal(child: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    child.kill(signal);
  } catch (err) {
    if (!(err instanceof TypeError)) throw err; // it has already exited
  }
}

/** Spawns `deno <denoArgs> <script> <args>` with piped output and no stdin. */
function spawnDeno(options: SpawnOptions): Deno.ChildProcess {
  const [command, ...wrapperArgs] = [...(options.wrapper ?? []), Deno.execPath()];
  return new Deno.Command(command!, {
    args: [
      ...wrapperArgs,
      ...(options.denoArgs ?? ["run", "-A"]),
      scriptPath(options.script),
      ...(options.args ?? []),
    ],
    env: options.env ?? {},
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

/** Starts a server and resolves once it announces its URL; rejects (after killing it) otherwise. */
export async function spawnServer(options: SpawnOptions): Promise<ServerProcess> {
  const child = spawnDeno(options);
  const stdoutLines: string[] = [];
  const stderrLines: string[] = [];
  const ready = Promise.withResolvers<string>();
  const outputs = Promise.all([
    collect(child.stdout, stdoutLines, (line) => {
      const match = LISTENING.exec(line);
      if (match) ready.resolve(match[1]!);
    }),
    collect(child.stderr, stderrLines, () => {}),
  ]);
  // The status resolves only once the output is drained, so callers see every line.
  const status = Promise.all([child.status, outputs]).then(([s]) => s);
  const kill = (signal: Deno.Signal = "SIGKILL") => {
    sendSignal(child, signal);
    return status;
  };
  const stop = async (timeoutMs = STOP_TIMEOUT_MS) => {
    sendSignal(child, "SIGTERM");
    const timer = setTimeout(() => sendSignal(child, "SIGKILL"), timeoutMs);
    try {
      return await status;
    } finally {
      clearTimeout(timer);
    }
  };
  const timeoutMs = options.startTimeoutMs ?? START_TIMEOUT_MS;
  const timer = setTimeout(
    () => ready.reject(new Error(`The server did not announce its URL within ${timeoutMs} ms`)),
    timeoutMs,
  );
  status.then((s) =>
    ready.reject(
      new Error(
        `The server exited with code ${s.code} before listening:\n${stderrLines.join("\n")}`,
      ),
    )
  );
  try {
    const url = await ready.promise;
    return {
      url,
      port: Number(new URL(url).port),
      pid: child.pid,
      stdoutLines,
      stderrLines,
      status,
      stop,
      kill,
    };
  } catch (err) {
    await kill("SIGKILL");
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** Runs a script to its end (bounded by `timeoutMs`) and returns its code and output. */
export async function runToEnd(
  options: Omit<SpawnOptions, "startTimeoutMs"> & {
    timeoutMs?: number;
    /** Sent at the timeout (default SIGKILL; SIGTERM lets a launcher stop its children). */
    timeoutSignal?: Deno.Signal;
  },
): Promise<RunResult> {
  const child = spawnDeno(options);
  const timer = setTimeout(
    () => sendSignal(child, options.timeoutSignal ?? "SIGKILL"),
    options.timeoutMs ?? START_TIMEOUT_MS,
  );
  try {
    const { code, stdout, stderr } = await child.output();
    const decoder = new TextDecoder();
    return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
  } finally {
    clearTimeout(timer);
  }
}
