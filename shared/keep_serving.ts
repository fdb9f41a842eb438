/**
 * Keeps a server up when it runs out of file descriptors. `Deno.serve` ends its accept
 * loop (its `finished` rejects) on the first failed accept with EMFILE or ENFILE, which
 * would end the process; here the server is started again on the same port once
 * descriptors may be free, as servers that retry their accept do. The caller passes the
 * start function (main.ts calls `Deno.serve` in it), so this module does no I/O itself.
 *
 * @module
 * @example
 * ```ts
 * import { assertEquals } from "@std/assert";
 * import { keepServing } from "./keep_serving.ts";
 *
 * let starts = 0;
 * await keepServing((port) => {
 *   starts++;
 *   return { addr: { port: port || 7000 }, finished: Promise.resolve() };
 * }, { port: 0 });
 * assertEquals(starts, 1);
 * ```
 */

/** What a started server shows (a `Deno.HttpServer` fits). */
export interface StartedServer {
  readonly addr: { port: number };
  readonly finished: Promise<void>;
}

/** Options of {@link keepServing}. */
export interface KeepServingOptions {
  /** The port of the first start (0: the OS picks; later starts reuse the one it picked). */
  port: number;
  /** Wait before a new start (default 100 ms). */
  pauseMs?: number;
  /** Told about every restart. */
  log?: (obj: Record<string, unknown>) => void;
  /** Called with each server started, so the caller can shut it down. */
  onStart?: (server: StartedServer) => void;
}

/** Whether `err` is a failed accept for want of file descriptors (EMFILE, ENFILE). */
export function outOfDescriptors(err: unknown): boolean {
  return err instanceof Error && /\(os error 2[34]\)/.test(err.message);
}

/**
 * Starts `start(port)` and waits for it to finish; starts it again after each finish that
 * ran out of descriptors (a start that fails for the same reason is retried too). Resolves
 * when a server finishes normally (it was shut down); any other error is thrown.
 */
export async function keepServing(
  start: (port: number) => StartedServer,
  options: KeepServingOptions,
): Promise<void> {
  let port = options.port;
  for (;;) {
    try {
      const server = start(port);
      port = server.addr.port;
      options.onStart?.(server);
      await server.finished;
      return;
    } catch (err) {
      if (!outOfDescriptors(err)) throw err;
      options.log?.({ level: "error", msg: "out of file descriptors; serving again", port });
    }
    await new Promise((resolve) => setTimeout(resolve, options.pauseMs ?? 100));
  }
}
