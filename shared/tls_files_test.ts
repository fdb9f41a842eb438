import { assertEquals, assertMatch, assertRejects } from "@std/assert";
import { ConfigError } from "./config.ts";
import { readPem, readTlsFiles, tlsServeError } from "./tls_files.ts";

const CERT = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
const KEY = "-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----\n";
const RSA_KEY = "-----BEGIN RSA PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----\n";

function files(texts: Record<string, string>) {
  return (path: string) =>
    path in texts ? Promise.resolve(texts[path]!) : Promise.reject(new Deno.errors.NotFound(path));
}

Deno.test("readTlsFiles() returns the PEM texts of --cert and --key", async () => {
  const read = files({ "/c.pem": CERT, "/k.pem": KEY, "/rsa.pem": RSA_KEY });
  assertEquals(await readTlsFiles({ cert: "/c.pem", key: "/k.pem" }, read), {
    cert: CERT,
    key: KEY,
  });
  assertEquals((await readTlsFiles({ cert: "/c.pem", key: "/rsa.pem" }, read)).key, RSA_KEY);
});

Deno.test("readPem() names the flag, the file and what is wrong with it", async () => {
  const read = files({ "/c.pem": CERT, "/k.pem": KEY, "/junk": "hello" });
  const cases: [Parameters<typeof readPem>[0], string, string][] = [
    ["cert", "/k.pem", 'Cannot use --cert /k.pem: it holds no PEM certificate (no "-----BEGIN'],
    ["key", "/c.pem", "Cannot use --key /c.pem: it holds no PEM private key"],
    ["ca", "/junk", "Cannot use --ca /junk: it holds no PEM certificate"],
    ["ca", "/gone", "Cannot read --ca /gone: it does not exist"],
  ];
  for (const [flag, path, message] of cases) {
    const err = await assertRejects(() => readPem(flag, path, read), ConfigError);
    assertEquals(err.message.startsWith(message), true, err.message);
  }
  const denied = () => Promise.reject(new Deno.errors.PermissionDenied("EACCES"));
  await assertRejects(() => readPem("key", "/k", denied), ConfigError, "--key /k: permission");
  const dir = () => Promise.reject(new Deno.errors.IsADirectory("EISDIR"));
  await assertRejects(() => readPem("cert", "/etc", dir), ConfigError, "it is a directory");
});

Deno.test("readPem() lets NotCapable through for the task's own hint", async () => {
  const outside = () => Promise.reject(new Deno.errors.NotCapable("Requires read access"));
  await assertRejects(() => readPem("cert", "/etc/c.pem", outside), Deno.errors.NotCapable);
});

Deno.test("tlsServeError() explains Deno.serve's refusals of the TLS files, only those", () => {
  const tls = { cert: "/c.pem", key: "/k.pem" };
  const mismatch = tlsServeError(new Error("keys may not be consistent: KeyMismatch"), tls);
  assertEquals(
    mismatch?.message,
    "Cannot serve https: the --key /k.pem does not match the --cert /c.pem",
  );
  const bad = tlsServeError(new Deno.errors.InvalidData("No keys found in key data"), tls);
  assertMatch(bad!.message, /^Cannot serve https with --cert \/c\.pem and --key \/k\.pem: No keys/);
  assertEquals(tlsServeError(new Deno.errors.AddrInUse("in use"), tls), undefined);
  assertEquals(tlsServeError(new Error("KeyMismatch"), undefined), undefined);
});
