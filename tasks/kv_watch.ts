/**
 * `deno task kv watch [PREFIX]`: prints every change under the prefix as it comes, one line
 * each (`put KEY VERSION VALUE` or `del KEY VERSION`), from the proxy's `GET /watch`
 * stream; reconnects with `Last-Event-ID` when the stream drops, and says on stderr when
 * the history is gone (`compacted`: re-list with `kv ls`).
 *
 * @module
 */
import { CliError, EXIT, failed, type Target } from "./kv_client.ts";

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

/** The line printed for a change event's data. */
export function changeLine(data: string): string {
  const c = JSON.parse(data) as {
    key: string;
    version: string;
    deleted?: boolean;
    value?: string;
    valueBase64?: string;
  };
  if (c.deleted) return `del ${c.key} ${c.version}`;
  const value = c.value !== undefined ? JSON.stringify(c.value) : `base64:${c.valueBase64}`;
  return `put ${c.key} ${c.version} ${value}`;
}

/** Watches until the process is stopped; gives up after 10 failed connections in a row. */
export async function watch(
  t: Target,
  prefix: string,
  print: (line: string) => void,
  warn: (line: string) => void,
): Promise<void> {
  let cursor: string | undefined;
  for (let failures = 0; failures < 10;) {
    const headers: Record<string, string> = { accept: "text/event-stream" };
    if (t.clientToken) headers.authorization = `Bearer ${t.clientToken}`;
    if (cursor !== undefined) headers["last-event-id"] = cursor;
    let res: Response;
    try {
      res = await fetch(`${t.url}/watch?prefix=${encodeURIComponent(prefix)}`, { headers });
    } catch (err) {
      if (!(err instanceof TypeError)) throw err;
      warn(`Cannot reach ${t.url}: ${err.message}; retrying`);
      failures++;
      await new Promise((r) => setTimeout(r, 1000));
      continue;
    }
    if (!res.ok) await failed(res, "Cannot watch");
    failures = 0;
    cursor = await follow(res, cursor, print, warn);
  }
  throw new CliError(EXIT.unavailable, `Cannot watch ${t.url}: 10 connections in a row failed`);
}

/** Prints a stream's events; returns the cursor to resume from. */
async function follow(
  res: Response,
  cursor: string | undefined,
  print: (line: string) => void,
  warn: (line: string) => void,
): Promise<string | undefined> {
  let buffer = "";
  try {
    for await (const chunk of res.body!.pipeThrough(new TextDecoderStream())) {
      const { events, rest } = takeEvents(buffer + chunk);
      buffer = rest;
      for (const e of events) {
        if (e.id !== undefined) cursor = e.id;
        if (e.event === "message") print(changeLine(e.data));
        else {warn(
            `${e.event}: ${JSON.parse(e.data).reason}` +
              (e.event === "compacted" ? " (re-list with kv ls)" : ""),
          );}
        if (e.event === "reset") return undefined;
      }
    }
  } catch (err) {
    if (!(err instanceof TypeError)) throw err;
    warn(`The watch stream broke (${err.message}); resuming`);
  }
  return cursor;
}
