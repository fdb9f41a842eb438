/**
 * Byte relays for the network-namespace lab (tests/helpers/netns.ts); test-only, no HTTP.
 *
 * - `relay.ts tcp LISTEN TARGET DELAY_MS`: runs in a node's namespace, in front of the node,
 *   on the host's address; SIGUSR1 makes it hold every chunk DELAY_MS each way (a slow
 *   link, since this kernel has no `tc netem`), SIGUSR2 makes it fast again.
 * - `relay.ts gateway SOCKET`: runs in the lab's client namespace, on a Unix socket (Unix
 *   sockets cross namespaces, TCP does not); each connection names its target in a first
 *   line `host:port\n`. {@link forward} is the other end, in the test process, on
 *   127.0.0.1, so the test's ordinary `fetch` reaches proxies and nodes inside the lab.
 *
 * @module
 */

/** Errors that mean a connection ended (reset by the peer, or closed under the relay). */
function connectionEnded(err: unknown): boolean {
  const e = Deno.errors;
  return [
    e.ConnectionReset,
    e.BrokenPipe,
    e.BadResource,
    e.NotConnected,
    e.ConnectionAborted,
    e.TimedOut,
  ]
    .some((kind) => err instanceof kind);
}

/** Copies `from` to `to`, each chunk held `delayMs()` (in order); closes `to` at the end. */
async function pipe(from: Deno.Conn, to: Deno.Conn, delayMs: () => number): Promise<void> {
  let chain = Promise.resolve();
  let failed: unknown;
  const send = async (chunk: Uint8Array, due: number) => {
    const wait = due - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    if (failed === undefined) await writeAll(to, chunk);
  };
  try {
    for await (const chunk of from.readable) {
      const due = performance.now() + delayMs();
      // Each write is caught here, so no rejection waits unhandled while the read blocks.
      chain = chain.then(() => send(chunk, due)).catch((err) => {
        failed ??= err;
        try {
          from.close();
        } catch (closeErr) {
          if (!connectionEnded(closeErr)) throw closeErr;
        }
      });
    }
  } catch (err) {
    if (!connectionEnded(err)) throw err;
  }
  await chain;
  if (failed !== undefined && !connectionEnded(failed)) throw failed;
  try {
    await to.closeWrite();
  } catch (err) {
    if (!connectionEnded(err)) throw err;
  }
}

async function writeAll(conn: Deno.Conn, chunk: Uint8Array): Promise<void> {
  for (let off = 0; off < chunk.length;) off += await conn.write(chunk.subarray(off));
}

/** Relays both directions of two connections, then closes both. */
export async function splice(a: Deno.Conn, b: Deno.Conn, delayMs = () => 0): Promise<void> {
  await Promise.allSettled([pipe(a, b, delayMs), pipe(b, a, delayMs)]);
  for (const c of [a, b]) {
    try {
      c.close();
    } catch (err) {
      if (!connectionEnded(err)) throw err;
    }
  }
}

function hostPort(text: string): { hostname: string; port: number } {
  const i = text.lastIndexOf(":");
  return { hostname: text.slice(0, i), port: Number(text.slice(i + 1)) };
}

/** Reads the first line (`host:port`) of a gateway connection, and what came after it. */
async function readHeader(conn: Deno.Conn): Promise<{ target: string; rest: Uint8Array }> {
  const buf = new Uint8Array(256);
  let len = 0;
  while (len < buf.length) {
    const n = await conn.read(buf.subarray(len));
    if (n === null) break;
    len += n;
    const nl = buf.subarray(0, len).indexOf(10);
    if (nl >= 0) {
      return {
        target: new TextDecoder().decode(buf.subarray(0, nl)),
        rest: buf.slice(nl + 1, len),
      };
    }
  }
  throw new Error("Cannot relay a gateway connection: it sent no target line");
}

async function gatewayConn(conn: Deno.Conn): Promise<void> {
  const { target, rest } = await readHeader(conn);
  let out: Deno.Conn;
  try {
    out = await Deno.connect({ ...hostPort(target), transport: "tcp" });
  } catch (err) {
    conn.close();
    if (err instanceof Deno.errors.ConnectionRefused || err instanceof Deno.errors.TimedOut) return;
    throw err;
  }
  if (rest.length > 0) await writeAll(out, rest);
  await splice(conn, out);
}

/** Forwards 127.0.0.1:<OS-picked port> in this process to `target` through the gateway. */
export function forward(socket: string, target: string): { url: string; close: () => void } {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const header = new TextEncoder().encode(`${target}\n`);
  (async () => {
    for await (const conn of listener) {
      (async () => {
        const out = await Deno.connect({ transport: "unix", path: socket });
        await writeAll(out, header);
        await splice(conn, out);
      })().catch((err) => {
        if (!connectionEnded(err) && !(err instanceof Deno.errors.NotFound)) throw err;
        conn.close();
      });
    }
  })().catch((err) => {
    if (!(err instanceof Deno.errors.BadResource)) throw err;
  });
  return { url: `http://127.0.0.1:${listener.addr.port}`, close: () => listener.close() };
}

async function main(args: string[]): Promise<void> {
  if (args[0] === "gateway") {
    const listener = Deno.listen({ transport: "unix", path: args[1]! });
    console.log(`gateway listening on http://gateway`);
    for await (const conn of listener) gatewayConn(conn).catch((e) => console.error(e));
    return;
  }
  const [listen, target, delay] = [args[1]!, args[2]!, Number(args[3] ?? 0)];
  let slow = false;
  Deno.addSignalListener("SIGUSR1", () => slow = true);
  Deno.addSignalListener("SIGUSR2", () => slow = false);
  const listener = Deno.listen({ ...hostPort(listen), transport: "tcp" });
  console.log(`relay listening on http://${listen}`);
  for await (const conn of listener) {
    Deno.connect({ ...hostPort(target), transport: "tcp" }).then(
      (out) => splice(conn, out, () => slow ? delay : 0),
      (err) => {
        conn.close();
        if (!connectionEnded(err) && !(err instanceof Deno.errors.ConnectionRefused)) throw err;
      },
    );
  }
}

if (import.meta.main) await main(Deno.args);
