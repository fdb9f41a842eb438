/**
 * `deno task kv watch [PREFIX]`: prints every change under the prefix as it comes, one line
 * each (`put KEY VERSION VALUE` or `del KEY VERSION`, a key with a space or an odd character
 * quoted; with `--json`, one JSON object each), from the proxy's `GET /watch`
 * stream; reconnects with `Last-Event-ID` when the stream drops, goes silent for 15 s or the
 * proxy answers 503, and says on stderr when the history is gone (`compacted`, `reset`: re-list
 * with `kv ls`). `--after CURSOR` starts from an event's `id` (each `--json` line has it), and a
 * watch that gives up prints the command that resumes it.
 *
 * @module
 */
import { clipped } from "../shared/errors.ts";
import { CliError, errorOf, errorText, EXIT, failed, type KvTarget } from "./kv_client.ts";
import { jsonQuoted, quoted } from "./kv_output.ts";
import { eventAdvice, relistCommand, resumeAdvice } from "./kv_resume.ts";
import { abortableSleep } from "../shared/abortable_sleep.ts";

/** One parsed SSE event. */
export interface SseMessage {
  id?: string;
  event: string;
  data: string;
}

/** The events complete in `buffer`, and what is left of it. */
export function takeEvents(buffer: string): { events: SseMessage[]; rest: string } {
  const events: SseMessage[] = [];
  let cut = buffer.indexOf("\n\n");
  while (cut !== -1) {
    const e: SseMessage = { event: "message", data: "" };
    for (const line of buffer.slice(0, cut).split("\n")) {
      const colon = line.indexOf(":");
      if (colon <= 0) continue;
      const value = line.slice(colon + 1).replace(/^ /, "");
      const field = line.slice(0, colon);
      if (field === "id") e.id = value;
      if (field === "event") e.event = value;
      if (field === "data") e.data += value;
    }
    if (e.data !== "") events.push(e);
    buffer = buffer.slice(cut + 2);
    cut = buffer.indexOf("\n\n");
  }
  return { events, rest: buffer };
}

/** A change event's data (docs/api.md, "Watching changes"). */
interface Change {
  key: string;
  version: string;
  deleted?: boolean;
  value?: string;
  valueBase64?: string;
}

/** The line printed for a change event's data. */
export function changeLine(data: string): string {
  const c = JSON.parse(data) as Change;
  if (c.deleted) return `del ${quoted(c.key)} ${c.version}`;
  const value = c.value !== undefined ? jsonQuoted(c.value) : `base64:${c.valueBase64}`;
  return `put ${quoted(c.key)} ${c.version} ${value}`;
}

/**
 * The `--json` line of an event: `{"event": "put" | "del", "id", ...}` with the change's fields,
 * or `{"event": "compacted" | "reset" | "cutoff", "id"?, "reason"}`; `id` is the cursor that
 * `--after` resumes from, on every event that has one.
 */
export function eventJsonLine(e: SseMessage): string {
  const id = e.id === undefined ? {} : { id: e.id };
  if (e.event !== "message") {
    return JSON.stringify({ event: e.event, ...id, ...JSON.parse(e.data) });
  }
  const { deleted, ...change } = JSON.parse(e.data) as Change;
  return JSON.stringify({ event: deleted ? "del" : "put", ...id, ...change });
}

/** How a watch prints: human lines (changes on stdout, the rest on stderr), or JSON lines. */
export interface WatchOptions {
  /** Every event as one JSON object on stdout ({@link eventJsonLine}). */
  json?: boolean;
  /** Silence after which the stream counts as broken, in ms ({@link STREAM_IDLE_MS}). */
  idleMs?: number;
  /** Wait before a connection that failed is tried again, in ms (1000). */
  retryMs?: number;
  /** The cursor to start from (`--after`: an event's `id`), sent as `Last-Event-ID`. */
  after?: string;
  /** The command that resumes this watch from a cursor, said when it gives up. */
  resume?: (cursor: string) => string;
  /**
   * Ends the watch (Ctrl-C): it then rejects (exit 130) saying how to resume after the last
   * event printed.
   */
  stop?: AbortSignal;
}

/** Watches until the process is stopped; gives up after 10 failed connections in a row. */
export async function watch(
  t: KvTarget,
  prefix: string,
  print: (line: string) => void,
  warn: (line: string) => void,
  options: WatchOptions = {},
): Promise<void> {
  let cursor = options.after;
  const stop = options.stop;
  for (let failures = 0; failures < 10 && !stop?.aborted;) {
    const quiet = new QuietTimer(options.idleMs ?? STREAM_IDLE_MS);
    const signal = stop === undefined ? quiet.signal : AbortSignal.any([quiet.signal, stop]);
    const res = await open(t, prefix, cursor, signal, warn).catch((err) => {
      quiet.stop();
      if (stop?.aborted) return undefined;
      // Ended by a token that changed or a failing proxy: once that is fixed, the cursor holds
      // (a refused request, a refused cursor first, would be refused again).
      const later = err instanceof CliError &&
        (err.code === EXIT.auth || err.code === EXIT.unavailable);
      if (!later || cursor === undefined) throw err;
      throw new CliError(
        err.code,
        `${err.message}. ${resumeAdvice(cursor, prefix, options.resume)}`,
      );
    });
    if (res === undefined) {
      quiet.stop();
      failures++;
      await abortableSleep(options.retryMs ?? 1000, stop ?? new AbortController().signal);
      continue;
    }
    failures = 0;
    cursor = await follow(
      res,
      cursor,
      options.json ? jsonPrinter(print) : humanPrinter(print, warn, prefix),
      warn,
      quiet,
      stop,
    );
  }
  if (stop?.aborted) {
    throw new CliError(
      EXIT.interrupted,
      `Stopped. ${resumeAdvice(cursor, prefix, options.resume)}`,
    );
  }
  throw new CliError(
    EXIT.unavailable,
    `Cannot watch ${t.url}: 10 connections in a row failed. ${
      resumeAdvice(cursor, prefix, options.resume)
    }`,
  );
}

/** Opens the stream; undefined (having said why) when it is worth trying again. */
async function open(
  t: KvTarget,
  prefix: string,
  cursor: string | undefined,
  signal: AbortSignal,
  warn: (line: string) => void,
): Promise<Response | undefined> {
  const headers: Record<string, string> = { accept: "text/event-stream" };
  if (t.clientToken) headers.authorization = `Bearer ${t.clientToken}`;
  if (cursor !== undefined) headers["last-event-id"] = cursor;
  let res: Response;
  try {
    res = await fetch(`${t.url}/watch?prefix=${encodeURIComponent(prefix)}`, { headers, signal });
  } catch (err) {
    if (!(err instanceof TypeError) && !isQuiet(err)) throw err;
    warn(`Cannot reach ${t.url}: ${(err as Error).message}; retrying`);
    return undefined;
  }
  // A proxy still loading its map, or at its cap of streams: the watch can go on later.
  if (res.status === 503) {
    warn(`Cannot watch yet: ${await errorText(res)}; retrying`);
    return undefined;
  }
  if (res.status === 400 && cursor !== undefined) await refusedCursor(res, prefix, cursor);
  else if (!res.ok) await failed(res, "Cannot watch");
  return res;
}

/**
 * The error of a 400 to a resume: a cursor the proxy cannot resume from (`invalid_cursor`) says
 * that the changes since must be re-listed; another 400 is the proxy's message as it is.
 */
async function refusedCursor(res: Response, prefix: string, cursor: string): Promise<never> {
  const { code, message } = await errorOf(res);
  if (code !== "invalid_cursor") throw new CliError(EXIT.refused, `Cannot watch: 400 ${message}`);
  throw new CliError(
    EXIT.refused,
    `Cannot watch from cursor ${clipped(cursor, { quoted: true })}: 400 ${message}. Changes ` +
      `since that cursor cannot be read: re-list with ${relistCommand(prefix)} and watch again ` +
      "without --after",
  );
}

/** Prints one event of the stream. */
type EventPrinter = (e: SseMessage) => void;

function humanPrinter(
  print: (line: string) => void,
  warn: (line: string) => void,
  prefix: string,
): EventPrinter {
  return (e) => {
    if (e.event === "message") return print(changeLine(e.data));
    warn(`${e.event}: ${JSON.parse(e.data).reason}${eventAdvice(e.event, prefix)}`);
  };
}

function jsonPrinter(print: (line: string) => void): EventPrinter {
  return (e) => print(eventJsonLine(e));
}

/** Prints a stream's events; returns the cursor to resume from. */
async function follow(
  res: Response,
  cursor: string | undefined,
  printEvent: EventPrinter,
  warn: (line: string) => void,
  quiet: QuietTimer,
  stop?: AbortSignal,
): Promise<string | undefined> {
  let buffer = "";
  try {
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      quiet.touch();
      const { events, rest } = takeEvents(buffer + chunk);
      buffer = rest;
      for (const e of events) {
        if (e.id !== undefined) cursor = e.id;
        printEvent(e);
        if (e.event === "reset") return undefined;
      }
    }
  } catch (err) {
    if (stop?.aborted) return cursor;
    if (!(err instanceof TypeError) && !isQuiet(err)) throw err;
    warn(`The watch stream broke (${(err as Error).message}); resuming`);
  } finally {
    quiet.stop();
  }
  return cursor;
}

/**
 * Silence after which a stream counts as broken, in ms: three of the proxy's 5 s keep-alives
 * missed (a proxy whose host died leaves the connection open with nothing coming).
 */
export const STREAM_IDLE_MS = 15_000;

/** Aborts its signal once `ms` pass without a {@link QuietTimer.touch}. */
class QuietTimer {
  readonly #ac = new AbortController();
  readonly #ms: number;
  #timer: ReturnType<typeof setTimeout>;

  constructor(ms: number) {
    this.#ms = ms;
    this.#timer = this.#start();
  }

  /** The signal to give the fetch (answer and body). */
  get signal(): AbortSignal {
    return this.#ac.signal;
  }

  /** Something came: the silence starts again. */
  touch(): void {
    clearTimeout(this.#timer);
    this.#timer = this.#start();
  }

  /** The stream is done with. */
  stop(): void {
    clearTimeout(this.#timer);
  }

  #start(): ReturnType<typeof setTimeout> {
    const reason = new DOMException(`nothing came for ${this.#ms} ms`, "TimeoutError");
    return setTimeout(() => this.#ac.abort(reason), this.#ms);
  }
}

function isQuiet(err: unknown): boolean {
  return err instanceof DOMException && err.name === "TimeoutError";
}
