import { assert, assertEquals, assertThrows } from "@std/assert";
import { ConfigError } from "./config.ts";
import { checkExposure, isLoopback, listenHost, tlsFiles } from "./exposure.ts";

const TOKEN = { flag: "--admin-token", env: "RINGKV_ADMIN_TOKEN" };

Deno.test("isLoopback() knows 127/8, ::1 and localhost, and nothing else", () => {
  for (const h of ["127.0.0.1", "127.1.2.3", "::1", "[::1]", "localhost", "LOCALHOST"]) {
    assert(isLoopback(h), h);
  }
  for (const h of ["0.0.0.0", "::", "10.0.0.1", "192.168.1.2", "example.com", "128.0.0.1"]) {
    assert(!isLoopback(h), h);
  }
});

Deno.test("checkExposure() refuses a non-loopback host without the token and says what to set", () => {
  checkExposure("proxy", "127.0.0.1", [{ ...TOKEN, set: false }]);
  checkExposure("proxy", "0.0.0.0", [{ ...TOKEN, set: true }]);
  assertThrows(
    () => checkExposure("proxy", "0.0.0.0", [{ ...TOKEN, set: false }]),
    ConfigError,
    "Set --admin-token (or RINGKV_ADMIN_TOKEN)",
  );
});

Deno.test("tlsFiles() needs both --cert and --key, or neither", () => {
  assertEquals(tlsFiles(undefined, undefined), undefined);
  assertEquals(tlsFiles("", ""), undefined);
  assertEquals(tlsFiles("c.pem", "k.pem"), { cert: "c.pem", key: "k.pem" });
  assertThrows(() => tlsFiles("c.pem", undefined), ConfigError, "only --cert");
  assertThrows(() => tlsFiles(undefined, "k.pem"), ConfigError, "only --key");
});

Deno.test("listenHost() takes [::1] as ::1 and refuses an empty host or one with stray characters", () => {
  assertEquals(listenHost("127.0.0.1"), "127.0.0.1");
  assertEquals(listenHost("[::1]"), "::1");
  assertEquals(listenHost("::"), "::");
  assertEquals(listenHost("fe80::1%eth0"), "fe80::1%eth0");
  for (const h of ["", " 127.0.0.1", "127.0.0.1 ", "[]", "local host", "x!y", "a/b", "h?x"]) {
    assertThrows(() => listenHost(h), ConfigError, "Cannot listen on --host");
  }
});
