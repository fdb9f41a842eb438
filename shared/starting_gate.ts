/**
 * The handler a server listens with before its data is loaded: it answers 503 (with
 * `Retry-After` and the one JSON error body) until {@link StartingGate.open} hands it the
 * real handler. It lets `main.ts` bind its port first, so a start that cannot listen (the
 * port is taken) exits before it locks, reads or writes its data directory.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals, assertMatch } from "@std/assert";
 * import { startingGate } from "./starting_gate.ts";
 * const gate = startingGate("node n1 is loading data/n1");
 * const refused = await gate.handler(new Request("http://x/health"), {});
 * assertEquals(refused.status, 503);
 * assertMatch((await refused.json()).error.message, /not run; send it again$/);
 * gate.open(() => new Response("ok"));
 * assertEquals(await (await gate.handler(new Request("http://x/health"), {})).text(), "ok");
 * ```
 */
import { errorResponse, RingkvError } from "./errors.ts";
import { type FetchHandler, RETRY_AFTER_SECONDS } from "./guard.ts";
import { STARTING_HEADER } from "./wire.ts";
import { keepServing, type KeepServingOptions, type StartedServer } from "./keep_serving.ts";

/** A handler that waits behind a 503 until it is opened. */
export interface StartingGate<I> {
  handler: FetchHandler<I>;
  /** From now on, requests go to `handler`. */
  open(handler: FetchHandler<I>): void;
}

/** A closed gate; `what` says in the 503's message what the server is doing meanwhile. */
export function startingGate<I = unknown>(what: string): StartingGate<I> {
  let inner: FetchHandler<I> | undefined;
  const starting = (): Response => {
    // Said in words: a client counting 503s on writes as "may have taken effect" (the usual
    // rule) need not here (soak: a restarted proxy's first writes were taken as indefinite).
    const res = errorResponse(
      new RingkvError(
        "unavailable",
        `Cannot serve yet: ${what}. The request was not run; send it again`,
      ),
    );
    res.headers.set("retry-after", String(RETRY_AFTER_SECONDS));
    res.headers.set(STARTING_HEADER, "1");
    return res;
  };
  return {
    handler: (req, info) => inner === undefined ? starting() : inner(req, info),
    open(handler) {
      inner = handler;
    },
  };
}

/** A bound port whose requests wait behind a {@link StartingGate} until the app is ready. */
export interface GatedListener<I> {
  port: number;
  gate: StartingGate<I>;
  /** Settles when the server stops for good. */
  serving: Promise<void>;
  /** Stops the server (in-flight requests may finish). */
  shutdown(): Promise<void>;
}

/** What {@link listenBehindGate} starts: `Deno.serve` with these, in `main.ts`. */
export type GatedStart<I> = (
  port: number,
  handler: FetchHandler<I>,
  onListen: (addr: { port: number }) => void,
) => StartedServer & { shutdown(): Promise<void> };

/**
 * Binds the port first, with a closed gate, so a start whose port is taken fails before it
 * touches its data directory; kept serving after running out of descriptors (keepServing).
 */
export async function listenBehindGate<I>(
  start: GatedStart<I>,
  options: KeepServingOptions & { what: string },
): Promise<GatedListener<I>> {
  const gate = startingGate<I>(options.what);
  const bound = Promise.withResolvers<number>();
  let server: (StartedServer & { shutdown(): Promise<void> }) | undefined;
  const serving = keepServing((port) => {
    server = start(port, gate.handler, (addr) => bound.resolve(addr.port));
    return server;
  }, options);
  const stopped = serving.then(() => Promise.reject(new Error("The server stopped at start")));
  stopped.catch(() => {}); // once bound, the end of serving is the caller's to await
  const port = await Promise.race([bound.promise, stopped]);
  return { port, gate, serving, shutdown: () => server?.shutdown() ?? Promise.resolve() };
}
