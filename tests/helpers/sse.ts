/**
 * A minimal Server-Sent Events reader for end-to-end tests: collects the events of a
 * `GET /watch` stream until stopped.
 *
 * @module
 */

/** One SSE event. */
export interface SseEvent {
  id?: string;
  event: string;
  data: string;
}

/** A running SSE reader. */
export interface SseReader {
  events: SseEvent[];
  /** The last `id:` received. */
  lastId(): string | undefined;
  /** Aborts the request and waits for the reader to finish. */
  stop(): Promise<void>;
  status: number;
}

/** Opens `url` as an event stream (with `Last-Event-ID` when given) and reads it. */
export async function openSse(
  url: string,
  headers: Record<string, string> = {},
): Promise<SseReader> {
  const abort = new AbortController();
  const res = await fetch(url, {
    headers: { accept: "text/event-stream", ...headers },
    signal: abort.signal,
  });
  const events: SseEvent[] = [];
  let last: string | undefined;
  const reading = (async () => {
    if (res.body === null) return;
    let buffer = "";
    try {
      for await (const chunk of res.body.pipeThrough(new TextDecoderStream())) {
        buffer += chunk;
        for (let cut = buffer.indexOf("\n\n"); cut !== -1; cut = buffer.indexOf("\n\n")) {
          const block = buffer.slice(0, cut);
          buffer = buffer.slice(cut + 2);
          const e = parseBlock(block);
          if (e === undefined) continue;
          if (e.id !== undefined) last = e.id;
          events.push(e);
        }
      }
    } catch (err) {
      if (!(err instanceof DOMException || err instanceof TypeError)) throw err;
    }
  })();
  return {
    events,
    status: res.status,
    lastId: () => last,
    async stop() {
      abort.abort();
      await reading;
    },
  };
}

function parseBlock(block: string): SseEvent | undefined {
  const e: SseEvent = { event: "message", data: "" };
  let any = false;
  for (const line of block.split("\n")) {
    if (line.startsWith(":") || line === "") continue;
    const colon = line.indexOf(":");
    const field = line.slice(0, colon);
    const value = line.slice(colon + 1).replace(/^ /, "");
    if (field === "id") e.id = value;
    else if (field === "event") e.event = value;
    else if (field === "data") e.data += (e.data ? "\n" : "") + value;
    else continue;
    any = field !== "id" || any;
  }
  return any ? e : undefined;
}
