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
