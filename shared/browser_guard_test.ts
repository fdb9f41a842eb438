import { assert, assertEquals, assertThrows } from "@std/assert";
import { crossSiteOrigin, hostPolicy, parseAllowedHosts } from "./browser_guard.ts";
import { guard } from "./guard.ts";
import { DEFAULT_REQUEST_LIMITS } from "./limits.ts";

Deno.test("hostPolicy(): IP addresses, one-label names, *.localhost and the listed names pass; other names do not", () => {
  const local = hostPolicy([]);
  for (
    const host of [
      "127.0.0.1:8080",
      "10.1.2.3",
      "[::1]:8080",
      "localhost:8080",
      "LOCALHOST",
      "proxy:8080",
    ]
  ) {
    assert(local(host), host);
  }
  assert(local("app.localhost:8080") && local("localhost.:8080"), "*.localhost, a trailing dot");
  for (
    const host of ["rebind.attacker.example:8080", "localhost.attacker.example", "127.0.0.1.nip.io"]
  ) {
    assert(!local(host), host);
  }
  const listed = hostPolicy(parseAllowedHosts(" kv.internal , .example.com"));
  assert(listed("KV.internal:8080") && listed("kv.internal."), "names compare without case or dot");
  assert(listed("example.com") && listed("a.b.example.com:443"), "a leading dot: subdomains too");
  assert(!listed("kv.internal.attacker.example") && !listed("badexample.com"));
  assert(hostPolicy(parseAllowedHosts("*"))("anything.example:1"));
});

Deno.test("crossSiteOrigin(): only a page of the Host's own origin is not another site", () => {
  assert(!crossSiteOrigin("http://127.0.0.1:8080", "127.0.0.1:8080"));
  assert(!crossSiteOrigin("https://kv.example", "kv.example:443"), "default ports alike");
  assert(!crossSiteOrigin("http://KV.example", "kv.example"));
  assert(crossSiteOrigin("http://127.0.0.1:9999", "127.0.0.1:8080"), "another port");
  assert(crossSiteOrigin("http://evil.example", "127.0.0.1:8080"));
  assert(crossSiteOrigin("null", "127.0.0.1:8080"), "a sandboxed or file: page");
  assert(crossSiteOrigin("http://127.0.0.1:8080", null), "no Host to compare with");
  assert(crossSiteOrigin("chrome-extension://abc", "abc"));
});

const ok = () => new Response("ok");

async function answer(handler: ReturnType<typeof guard>, init: RequestInit & { url?: string }) {
  const res = await handler(new Request(init.url ?? "http://127.0.0.1:8080/kv", init), {});
  const body = res.status === 200 ? null : (await res.json()).error;
  return { status: res.status, code: body?.code, message: String(body?.message) };
}

Deno.test("guard() with a host policy: 403 for a Host it does not allow and for a write from a page of another site", async () => {
  const handler = guard(ok, DEFAULT_REQUEST_LIMITS, hostPolicy([]));
  const rebound = await answer(handler, { headers: { host: "rebind.attacker.example:8080" } });
  assertEquals([rebound.status, rebound.code], [403, "forbidden"]);
  assert(rebound.message.includes("--allowed-hosts"), rebound.message);
  const host = "127.0.0.1:8080";
  const csrf = await answer(handler, {
    method: "POST",
    body: '{"delete":["k"]}',
    headers: { host, origin: "http://evil.example", "content-type": "text/plain" },
  });
  assertEquals([csrf.status, csrf.code], [403, "forbidden"]);
  assert(csrf.message.includes("another site"), csrf.message);
  for (const method of ["PUT", "DELETE"]) {
    const res = await answer(handler, { method, headers: { host, origin: "null" } });
    assertEquals(res.status, 403, method);
  }
  // The proxy's own page, clients without Origin, and reads from anywhere are served.
  const own = await answer(handler, {
    method: "POST",
    headers: { host, origin: `http://${host}` },
  });
  const curl = await answer(handler, { method: "DELETE", headers: { host } });
  const read = await answer(handler, { headers: { host, origin: "http://evil.example" } });
  assertEquals([own.status, curl.status, read.status], [200, 200, 200]);
  // Without a policy (the nodes): neither check.
  const plain = guard(ok, DEFAULT_REQUEST_LIMITS);
  const any = await answer(plain, {
    method: "POST",
    headers: { host: "rebind.attacker.example", origin: "http://evil.example" },
  });
  assertEquals(any.status, 200);
});

Deno.test("parseAllowedHosts(): names, .suffixes or *; a port, a scheme, a * in a list or nothing is a usage error", () => {
  assertEquals(parseAllowedHosts("kv.example.com, .internal,proxy"), [
    "kv.example.com",
    ".internal",
    "proxy",
  ]);
  assertEquals(parseAllowedHosts(" * "), "*");
  for (const bad of ["kv.example:8080", "http://kv.example", "a,*", "", " , ", "kv/x"]) {
    assertThrows(() => parseAllowedHosts(bad), Error, "--allowed-hosts");
  }
});

Deno.test("guard() with a host policy: a write without Origin whose Sec-Fetch-Site names another site is 403", async () => {
  const handler = guard(ok, DEFAULT_REQUEST_LIMITS, hostPolicy([]));
  const host = "127.0.0.1:8080";
  for (const site of ["cross-site", "same-site"]) {
    const res = await answer(handler, {
      method: "POST",
      headers: { host, "sec-fetch-site": site },
    });
    assertEquals(res.status, 403, site);
  }
  for (const site of ["same-origin", "none"]) {
    const res = await answer(handler, {
      method: "POST",
      headers: { host, "sec-fetch-site": site },
    });
    assertEquals(res.status, 200, site);
  }
});
