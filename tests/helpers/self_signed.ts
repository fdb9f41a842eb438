/**
 * A self-signed certificate made with openssl for tests that serve https.
 *
 * @module
 */
import { join } from "@std/path";

/** Certificate and key files (PEM). */
export interface CertFiles {
  cert: string;
  key: string;
}

/** A self-signed certificate for 127.0.0.1 and localhost in `dir`, or undefined without openssl. */
export async function selfSigned(dir: string): Promise<CertFiles | undefined> {
  const cert = join(dir, "cert.pem");
  const key = join(dir, "key.pem");
  try {
    const { code } = await new Deno.Command("openssl", {
      args: [
        ...["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1"],
        ...["-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1,DNS:localhost"],
        // rustls refuses a CA certificate as a server's own (CaUsedAsEndEntity).
        ...["-addext", "basicConstraints=critical,CA:FALSE"],
        ...["-keyout", key, "-out", cert],
      ],
      stdout: "null",
      stderr: "null",
    }).output();
    return code === 0 ? { cert, key } : undefined;
  } catch (err) {
    if (!(err instanceof Deno.errors.NotFound)) throw err;
    return undefined;
  }
}

/** An https server on 127.0.0.1 (OS-picked port) with a fresh self-signed certificate. */
export interface SelfSignedServer extends AsyncDisposable {
  port: number;
}

/**
 * Serves `handler` over https with a self-signed certificate no client trusts by default;
 * undefined without openssl. Stopped, and its files removed, by `await using`.
 */
export async function serveSelfSigned(
  handler: (req: Request) => Response | Promise<Response>,
): Promise<SelfSignedServer | undefined> {
  const dir = await Deno.makeTempDir({ prefix: "ringkv-tls-" });
  const files = await selfSigned(dir);
  if (files === undefined) {
    await Deno.remove(dir, { recursive: true });
    return undefined;
  }
  const server = Deno.serve({
    hostname: "127.0.0.1",
    port: 0,
    cert: await Deno.readTextFile(files.cert),
    key: await Deno.readTextFile(files.key),
    onListen: () => {},
  }, handler);
  return {
    port: server.addr.port,
    [Symbol.asyncDispose]: async () => {
      await server.shutdown();
      await Deno.remove(dir, { recursive: true });
    },
  };
}
